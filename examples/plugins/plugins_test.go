// Package plugins_test builds each example plugin with the Go toolchain
// (GOOS=wasip1, -buildmode=c-shared) and runs it through wasmguard.Load,
// as a broker would.
package plugins_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func load(t *testing.T, dir, config string, lim wasmguard.Limits, opts ...wasmguard.Option) *wasmguard.Plugin {
	t.Helper()
	opts = append(opts, wasmguard.WithConfig([]byte(config)), wasmguard.WithName(dir), wasmguard.WithCacheDir(wasmbuild.CacheDir()))
	p, err := wasmguard.Load(context.Background(), wasmbuild.Build(t, dir), lim, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func publish(t *testing.T, p *wasmguard.Plugin, client, topic, payload string) wasmguard.Verdict {
	t.Helper()
	v, err := p.OnPublish(context.Background(), &wasmguard.PublishEvent{ClientID: client, Topic: topic, Payload: []byte(payload)})
	require.NoError(t, err)
	return v
}

var (
	allow = wasmguard.Verdict{Action: wasmguard.Allow}
	deny  = func(code reason.Code) wasmguard.Verdict {
		return wasmguard.Verdict{Action: wasmguard.Deny, Reason: code}
	}
)

func TestDenyListPlugin(t *testing.T) {
	p := load(t, "denylist", `{"deny": ["admin/#", "$SYS/#"]}`, wasmguard.Limits{MaxInstances: 2})
	assert.Equal(t, deny(0x87), publish(t, p, "c", "admin/users", "x"))
	assert.Equal(t, allow, publish(t, p, "c", "sensors/1/t", "x"))
	assert.False(t, p.Has(wasmguard.HookConnect))

	sub := func(filter string) wasmguard.Verdict {
		v, err := p.OnSubscribe(context.Background(), &wasmguard.SubscribeEvent{ClientID: "c", Filter: filter})
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, deny(0x87), sub("#"))
	assert.Equal(t, deny(0x87), sub("$SYS/broker/+"))
	assert.Equal(t, allow, sub("sensors/#"))
}

func TestDenyListPluginRefusesABadConfiguration(t *testing.T) {
	_, err := wasmguard.Load(context.Background(), wasmbuild.Build(t, "denylist"), wasmguard.Limits{MaxInstances: 1},
		wasmguard.WithConfig([]byte(`{"deny": ["a/#/b"]}`)), wasmguard.WithCacheDir(wasmbuild.CacheDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not instantiate")
	assert.Contains(t, err.Error(), "denylist: configuration: deny[0]", "the plugin's own words reach the operator")
}

type lines struct {
	mu sync.Mutex
	s  []string
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "text" {
			l.mu.Lock()
			l.s = append(l.s, a.Value.String())
			l.mu.Unlock()
		}
		return true
	})
	return nil
}
func (l *lines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lines) WithGroup(string) slog.Handler      { return l }

func TestSensorJSONPlugin(t *testing.T) {
	log := &lines{}
	p := load(t, "sensorjson", "", wasmguard.Limits{MaxInstances: 2}, wasmguard.WithLogger(slog.New(log)))
	assert.Equal(t, allow, publish(t, p, "dev1", "sensors/dev1/env", `{"temperature": 21.5, "humidity": 40}`))
	assert.Equal(t, deny(0x99), publish(t, p, "dev1", "sensors/dev1/env", `{"temperature": 412}`))
	assert.Equal(t, deny(0x99), publish(t, p, "dev1", "sensors/dev1/env", `garbage`))
	assert.Equal(t, allow, publish(t, p, "dev1", "lights/1", `on`))
	assert.Equal(t, []string{
		"refused sensors/dev1/env from dev1: temperature 412 is outside -40…85",
		"refused sensors/dev1/env from dev1: not a JSON object",
	}, log.s)
}

func TestBudgetPlugin(t *testing.T) {
	p := load(t, "budget", `{"publishes": 5, "window": "1m"}`, wasmguard.Limits{MaxInstances: 1})
	t0 := time.Unix(1_800_000_000, 0)
	send := func(dev string, at time.Duration) wasmguard.Verdict {
		v, err := p.OnPublish(context.Background(), &wasmguard.PublishEvent{Time: t0.Add(at), ClientID: dev, Topic: "sensors/" + dev})
		require.NoError(t, err)
		return v
	}
	// A device reporting every second gets 5 a minute.
	var got []string
	for s := range 8 {
		got = append(got, send("chatty", time.Duration(s)*time.Second).Action.String())
	}
	assert.Equal(t, "allow allow allow allow allow deny deny deny", strings.Join(got, " "))
	assert.Equal(t, deny(0x97), send("chatty", 30*time.Second))
	assert.Equal(t, allow, send("quiet", 30*time.Second), "its neighbour is not affected")
	assert.Equal(t, allow, send("chatty", 61*time.Second), "a new window")
}

// The plugins' per-call cost through the whole pipeline.
func BenchmarkPlugins(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct{ dir, topic, payload string }{
		{"denylist", "sensors/1/t", "21.5"},
		{"sensorjson", "sensors/1/env", `{"temperature": 21.5, "humidity": 40}`},
		{"budget", "sensors/1/t", "21.5"},
	} {
		b.Run(tc.dir, func(b *testing.B) {
			config := ""
			if tc.dir == "denylist" {
				config = `{"deny": ["admin/#"]}`
			}
			p, err := wasmguard.Load(ctx, wasmbuild.Build(b, tc.dir), wasmguard.Limits{MaxInstances: 1},
				wasmguard.WithConfig([]byte(config)), wasmguard.WithCacheDir(wasmbuild.CacheDir()))
			require.NoError(b, err)
			defer p.Close(ctx)
			ev := &wasmguard.PublishEvent{ClientID: "dev1", Topic: tc.topic, Payload: []byte(tc.payload)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.OnPublish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
