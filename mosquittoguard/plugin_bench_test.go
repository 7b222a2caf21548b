package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/guardstack"
)

// What the plugin's callbacks cost mosquitto's broker thread per message,
// without cgo: the example broker's configuration with every component
// on and the rate limits far above the load (what the Guard costs, not
// what it refuses). A fan-in message is one MOSQ_ACL_WRITE (Publish) and one
// MOSQ_ACL_READ (Deliver) per subscriber.
func BenchmarkCallbacks(b *testing.B) {
	dir, pw := dataDir(b, "")
	conf := filepath.Join(dir, guardstack.ConfigFile)
	text, err := os.ReadFile(conf)
	if err != nil {
		b.Fatal(err)
	}
	text = regexp.MustCompile(`(?m)^((user|channel|client)_\w+ = )[0-9.]+`).ReplaceAll(text, []byte("${1}1e12"))
	if err := os.WriteFile(conf, text, 0o600); err != nil {
		b.Fatal(err)
	}
	p, err := newPlugin(conf, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.close() })
	now := time.Now()
	const sensor, dash = 1, 2
	if p.basicAuth(sensor, connect("s1", "sensor1", []byte(pw["sensor1"]), true, 5), false, now) != mosqErrSuccess ||
		p.basicAuth(dash, connect("d1", "dashboard", []byte(pw["dashboard"]), true, 5), false, now) != mosqErrSuccess {
		b.Fatal("CONNECT refused")
	}
	payload := make([]byte, 1024)
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/temp", payload, 1, false, now) != mosqErrSuccess {
				b.Fatal("refused")
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p.aclCheck(dash, "d1", aclRead, "sensors/sensor1/temp", nil, 1, false, now) != mosqErrSuccess {
				b.Fatal("refused")
			}
		}
	})
}
