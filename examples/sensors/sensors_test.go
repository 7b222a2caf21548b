package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The whole demo, as a user runs it: the sensors' readings all reach the
// aggregator while the rogue attacks, the alerts go out, and every attack
// is refused, dropped or ends in a disconnect.
func TestDemo(t *testing.T) {
	var out, logs bytes.Buffer
	d := &Demo{Dir: t.TempDir(), Devices: defaultDevices(), AlertAbove: 30, Every: time.Second, Out: &out,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), RogueAfter: time.Second, RogueDone: make(chan struct{}),
		Rogue: &Rogue{TooOften: 30, FloodFor: 2 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Long enough for every alert (temp-2 crosses 30 °C at its third
		// reading, at 4 s) and for the rogue to finish.
		start := time.Now()
		select {
		case <-d.RogueDone:
		case <-time.After(60 * time.Second):
			t.Error("the rogue did not finish within a minute")
		}
		time.Sleep(time.Until(start.Add(6 * time.Second)))
		cancel()
	}()
	require.NoError(t, d.Run(ctx))
	t.Log("\n" + out.String())
	defer func() {
		if t.Failed() {
			t.Log("the broker's log:\n" + logs.String())
		}
	}()

	for _, dev := range d.Devices {
		st := d.Stats[dev.ID]
		e, _ := st.Err.Load().(string)
		assert.Empty(t, e, dev.ID)
		assert.Positive(t, st.Sent.Load(), dev.ID)
		assert.Equal(t, st.Sent.Load(), st.Acked.Load(), "%s: every reading acknowledged", dev.ID)
		assert.Equal(t, int(st.Acked.Load()), d.Agg.Count(dev.ID), "%s: every acknowledged reading reached the aggregator", dev.ID)
	}
	alerts := d.Agg.Alerts()
	for _, want := range []string{"temp-2: temperature", "motion-1: motion detected", "door-1: door open"} {
		assert.True(t, hasPrefix(alerts, want), "an alert %q in %q", want, alerts)
	}
	assert.False(t, hasPrefix(alerts, "temp-1"), "temp-1 stays cool: %q", alerts)

	r := d.Rogue
	assert.Len(t, r.Forbidden, 3)
	for topic, code := range r.Forbidden {
		assert.Equal(t, byte(0x87), code, topic)
	}
	assert.Len(t, r.Wildcard, 2)
	for id, code := range r.Wildcard {
		assert.GreaterOrEqual(t, code, byte(0x80), "client ID %q", id)
	}
	assert.GreaterOrEqual(t, r.TooOftenSent, 5)
	assert.LessOrEqual(t, r.TooOftenReceived, 1, "only the first of the early readings is delivered")
	assert.NotZero(t, r.TooOftenEnd, "the broker ended the too-often device's connection")
	// A new client ID does not wipe the slate: the flood is refused at
	// CONNECT, its username shut out, or (had the too-often attack
	// stopped short) ended by the broker.
	assert.NotZero(t, r.FloodEnd, "the broker refused or ended the flood")
	if r.FloodSent == 0 {
		assert.Equal(t, byte(0x8A), r.FloodEnd, "refused at CONNECT: the account is banned")
	}
	assert.Less(t, r.FloodReceived, 50, "of %d flooded", r.FloodSent)
	assert.True(t, r.Comeback == 0x8A || (r.ComebackAcked == 3 && r.ComebackRecvd == 0),
		"back after all that, the rogue is refused (CONNACK %#x) or shadow-banned: %d of 3 acknowledged, %d delivered",
		r.Comeback, r.ComebackAcked, r.ComebackRecvd)
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// The demo's configuration is the example broker's with its edits, and
// it parses.
func TestDemoConfig(t *testing.T) {
	text, err := demoConfig()
	require.NoError(t, err)
	cfg, err := guardconf.ParseConfig(text, "demo", t.TempDir(), nil)
	require.NoError(t, err)
	assert.Equal(t, 0, cfg.MQTT.Port)
	assert.Equal(t, "covers", cfg.Security.SubscribeCheck)
	require.Len(t, cfg.Security.Devices, 1)
	assert.Equal(t, "sensors/temperature/+", cfg.Security.Devices[0].Topic)
	assert.Equal(t, 2*time.Second, cfg.Security.Devices[0].Interval)
}

// A second run keeps the accounts and the ACL as the first left them.
func TestProvisionTwice(t *testing.T) {
	dir := t.TempDir()
	text, err := demoConfig()
	require.NoError(t, err)
	_, err = guardstack.Setup(dir, text)
	require.NoError(t, err)
	first, err := provision(dir)
	require.NoError(t, err)
	require.Len(t, first, len(demoUsers))
	second, err := provision(dir)
	require.NoError(t, err)
	assert.Equal(t, first, second)
	acl, err := os.ReadFile(filepath.Join(dir, "acl"))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(acl), "# sensors demo"), "the demo's rules, once")
}
