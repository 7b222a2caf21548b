package mqttguard_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// The allow path of a publish through every component: trust state, ACL,
// four rate limits, the push-interval detector (no profile for the
// topic), with and without a trivial Wasm plugin, and with the user limit
// shared (fleet: a lease spent, the store a stub that grants everything,
// so this is the local path's cost; BenchmarkSharedLimit in bench/ has
// Redis's).
func BenchmarkPublish(b *testing.B) {
	wasm, err := os.ReadFile("wasmguard/testdata/trivial.wasm")
	if err != nil {
		b.Fatal(err)
	}
	p, err := wasmguard.Load(context.Background(), wasm, wasmguard.Limits{MaxInstances: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, tc := range []struct {
		name    string
		plugins []*wasmguard.Plugin
		store   ratelimit.Store
	}{{"builtin", nil, nil}, {"plugin", []*wasmguard.Plugin{p}, nil}, {"fleet", nil, grantAll{}}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newGuard(b, trust.EnforceFull, func(c *mqttguard.Config) {
				c.Plugins = tc.plugins
				c.Logger = nil
				c.RateLimits = mqttguard.RateLimits{MessagesPerClient: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9},
					BytesPerClient: mqttguard.Rate{PerSecond: 1e12, Burst: 1e12}, MessagesPerUser: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9},
					MessagesPerTopic: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9}, Store: tc.store}
			})
			c, _ := f.connect(b, "a1", "admin", "admin-pw", t0)
			m := &mqttguard.Message{Topic: "plant/line1/temp", Payload: []byte("21.5"), Subscribers: 3}
			ctx := context.Background()
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if d := f.g.Publish(ctx, &c, m, now); d.Verdict != mqttguard.Allow {
					b.Fatal(d)
				}
			}
		})
	}
}

// grantAll is a ratelimit.Store that grants everything asked.
type grantAll struct{}

func (grantAll) Take(_ context.Context, _ string, _, _, hi time.Duration) (time.Duration, time.Duration, error) {
	return hi, 0, nil
}
