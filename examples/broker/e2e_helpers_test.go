package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/examples/internal/mochibroker"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/stretchr/testify/require"
)

var passwords = e2e.Passwords

type dialOpts = e2e.DialOpts

type testBroker struct {
	*e2e.Node
	b *mochibroker.Broker
}

// startBroker runs the example broker from a fresh data directory made
// by Setup (with e2e's accounts), on free loopback ports.
func startBroker(t *testing.T, edit func(*guardconf.Config)) *testBroker {
	t.Helper()
	return startBrokerIn(t, e2e.PrepareDir(t), edit)
}

// startBrokerIn is startBroker on a data directory the test prepared
// (with its own ACL, say).
func startBrokerIn(t *testing.T, dir string, edit func(*guardconf.Config)) *testBroker {
	t.Helper()
	_, err := guardstack.Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	cfg, err := guardconf.LoadConfig(filepath.Join(dir, guardstack.ConfigFile), nil)
	require.NoError(t, err)
	cfg.MQTT.Port, cfg.MQTT.TLSPort, cfg.Admin.Listen = 0, 0, "127.0.0.1:0"
	if edit != nil {
		edit(cfg)
	}
	logs := &e2e.LogBuffer{}
	b, err := mochibroker.Start(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: logLevel()})))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return &testBroker{Node: &e2e.Node{Addr: b.Addr, Dir: dir, Logs: logs}, b: b}
}

func TestPrintConfig(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-print-config"}, &out, &out))
	require.Equal(t, string(guardconf.DefaultConfig), out.String())
}

// logLevel is debug, or what MQTTGUARD_TEST_LOG says (PROF runs want
// less).
func logLevel() slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(os.Getenv("MQTTGUARD_TEST_LOG"))) != nil {
		return slog.LevelDebug
	}
	return l
}
