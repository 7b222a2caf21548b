package mochiguard_test

import (
	"log/slog"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/mochiguard"
	"github.com/mqttguard/mqttguard/trust"
)

// sizeCap is a user's hook that refuses large publishes in OnPublish.
type sizeCap struct{ mqtt.HookBase }

func (h *sizeCap) ID() string           { return "size-cap" }
func (h *sizeCap) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *sizeCap) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if len(pk.Payload) > 1024 {
		return pk, packets.ErrPacketTooLarge
	}
	return pk, nil
}

// Which hooks may sit beside the Guard's, and where.
func TestCheckStacking(t *testing.T) {
	newServer := func() (*mqtt.Server, *mochiguard.Hook) {
		g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull})
		require.NoError(t, err)
		srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
		return srv, mochiguard.New(g, srv, mochiguard.Options{})
	}

	srv, hook := newServer()
	require.NoError(t, srv.AddHook(hook, nil))
	require.NoError(t, srv.AddHook(new(sizeCap), nil))
	assert.NoError(t, hook.Check(), "a hook after the Guard's can only add refusals")

	srv, hook = newServer()
	require.NoError(t, srv.AddHook(new(sizeCap), nil))
	require.NoError(t, srv.AddHook(hook, nil))
	err := hook.Check()
	require.Error(t, err, "mochi stops at the first OnPublish error: one before the Guard's could end the chain before it decides")
	assert.Contains(t, err.Error(), "size-cap")
	assert.Contains(t, err.Error(), "add the Guard's hook first")

	srv, hook = newServer()
	require.NoError(t, srv.AddHook(hook, nil))
	require.NoError(t, srv.AddHook(new(auth.AllowHook), nil))
	err = hook.Check()
	require.Error(t, err, "OR-combined: an allow-all hook would lift the Guard's answers")
	assert.Contains(t, err.Error(), "allow-all-auth")
}
