package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var passwords = e2e.Passwords

type dialOpts = e2e.DialOpts

type testProxy struct {
	*e2e.Node
	p   *Proxy
	mq  *mqtttest.Mosquitto
	raw func(t *testing.T, id string) *e2e.V5 // a client straight to mosquitto, behind the proxy's back
}

// startProxy starts a real mosquitto (anonymous, on loopback: only the
// proxy and the test reach it) and the proxy in front of it.
func startProxy(t *testing.T, edit func(*guardconf.Config)) *testProxy {
	t.Helper()
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	mq := mqtttest.RunMosquitto(t, bin, t.TempDir(), "allow_anonymous true", "log_type all")
	dir := e2e.PrepareDir(t)
	_, err := guardstack.Setup(dir, defaultConfig)
	require.NoError(t, err)
	cfg, err := guardconf.LoadConfig(filepath.Join(dir, guardstack.ConfigFile), &proxyConfig{})
	require.NoError(t, err)
	cfg.MQTT.Port, cfg.MQTT.TLSPort, cfg.Admin.Listen = 0, 0, "127.0.0.1:0"
	upstreamOf(cfg).Addr = mq.Addr
	if edit != nil {
		edit(cfg)
	}
	logs := &e2e.LogBuffer{}
	p, err := Start(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	tp := &testProxy{Node: &e2e.Node{Addr: p.Addr, Dir: dir, Logs: logs}, p: p, mq: mq}
	direct := &e2e.Node{Addr: func(string) string { return mq.Addr }, Dir: dir}
	tp.raw = func(t *testing.T, id string) *e2e.V5 { return direct.Login(t, id, "") }
	return tp
}

func TestProxyCredentialsAndACL(t *testing.T) {
	tp := startProxy(t, nil)
	_, ca, err := tp.Dial5(t, dialOpts{ID: "s1", User: "sensor1", Pass: "wrong"})
	require.Error(t, err)
	assert.Equal(t, byte(0x86), ca.ReasonCode, "the proxy refuses; mosquitto (anonymous) would have let it in")
	_, ca, err = tp.Dial5(t, dialOpts{ID: "anon"})
	require.Error(t, err)
	assert.Equal(t, byte(0x87), ca.ReasonCode)

	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "#")
	s1 := tp.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0x00), s1.Pub(t, "sensors/sensor1/temperature", "21.5", 1))
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor2/temperature", "99", 1))
	assert.Equal(t, byte(0x00), s1.Pub(t, "sensors/sensor1/t2", "x", 2), "QoS 2 through the proxy")
	assert.Equal(t, byte(0x87), s1.Pub(t, "commands/x", "y", 2), "a refused QoS 2 ends at the PUBREC")
	got := watcher.Received(500 * time.Millisecond)
	assert.ElementsMatch(t, []string{"sensors/sensor1/temperature 21.5", "sensors/sensor1/t2 x"}, got, "mosquitto saw only what passed")

	// The proxy's dashboard shows the refusals.
	dash := mqtttest.Dashboard(t, tp.Addr("admin"), filepath.Join(tp.Dir, "admin.token"))
	assert.Equal(t, []string{"reject 0x87 sensors/sensor2/temperature acl"}, mqtttest.LiveRefusals(t, dash, tp.Addr("admin"), "sensors/sensor2"))
}

// mosquitto (anonymous here) would deliver everything to '#'; the proxy
// delivers what the client may read.
func TestProxyReceiveCheck(t *testing.T) {
	tp := startProxy(t, nil)
	dash := tp.Login(t, "dash", "dashboard")
	assert.Less(t, dash.Sub(t, "#"), byte(0x80))
	feeder := tp.raw(t, "feeder") // publishes straight into mosquitto
	feeder.Pub(t, "sensors/sensor1/temperature", "21.5", 1)
	feeder.Pub(t, "billing/invoices", "secret", 1)
	feeder.Pub(t, "billing/invoices", "secret2", 2)
	feeder.Pub(t, "sensors/sensor2/temperature", "19", 2)
	assert.Equal(t, []string{"sensors/sensor1/temperature 21.5", "sensors/sensor2/temperature 19"}, dash.Received(time.Second))
	assert.Equal(t, byte(0x87), dash.Pub(t, "sensors/x", "nope", 1), "the dashboard has no write rule")
}
