package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/redisstore"
	"github.com/mqttguard/mqttguard/trust"
)

// reportLatency adds the median and 99th percentile of per-call times.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}

func redisClient(b *testing.B) *redisstore.Client {
	r := testenv.StartRedis(b)
	c, err := redisstore.New(redisstore.Options{URL: r.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkSharedLimit: one per-user limit check at the seed's production
// values (50/s, burst 100), 10 000 users in turn, each well under its
// rate. In memory (ratelimit.Limiter, one broker) against the same limit
// shared through Redis (a redis-server on a Unix socket): with leases
// (the default, 10 tokens: one round trip per 11 checks of a user) and
// without (Lease -1: a round trip per check, the exact and slow end).
func BenchmarkSharedLimit(b *testing.B) {
	users := make([]string, 10_000)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	run := func(b *testing.B, allow func(string, time.Time) bool) {
		lat := make([]time.Duration, b.N)
		refused := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if !allow(users[i%len(users)], start) {
				refused++
			}
			lat[i] = time.Since(start)
		}
		b.StopTimer()
		reportLatency(b, lat)
		b.ReportMetric(float64(refused), "refused")
	}
	b.Run("impl=memory", func(b *testing.B) {
		l := ratelimit.New(50, 100)
		run(b, func(k string, t time.Time) bool { return l.AllowN(k, t, 1) })
	})
	for _, lease := range []int{0, -1} {
		name := "impl=redis-lease"
		if lease < 0 {
			name = "impl=redis-nolease"
		}
		b.Run(name, func(b *testing.B) {
			s, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: redisClient(b), Prefix: "user:",
				Limit: 50, Burst: 100, Lease: lease, Timeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			run(b, func(k string, t time.Time) bool { return s.AllowN(k, t, 1) })
			st := s.Stats()
			b.ReportMetric(float64(st.StoreCalls)/float64(b.N), "redis-calls/op")
			if st.StoreErrors > 0 {
				b.Fatalf("%d store errors", st.StoreErrors)
			}
		})
	}
}

// BenchmarkBanLookup: the CONNECT-time ban check with 10 000 bans (client
// IDs, usernames, addresses, networks), for a client that is not banned
// and one that is: a plain Bans against one kept in sync with Redis by a
// Fleet. Fleet mode changes nothing on this path; the benchmark is there
// to keep it so.
func BenchmarkBanLookup(b *testing.B) {
	fill := func(bans *trust.Bans) {
		for i := 0; i < 2500; i++ {
			bans.Add(trust.Ban{Kind: trust.BanClientID, Value: fmt.Sprintf("dev-%d", i)})
			bans.Add(trust.Ban{Kind: trust.BanUsername, Value: fmt.Sprintf("user-%d", i)})
			bans.Add(trust.Ban{Kind: trust.BanIP, Value: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()})
			bans.Add(trust.Ban{Kind: trust.BanCIDR, Value: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i >> 8), byte(i), 0}), 24).String()})
		}
	}
	clean := trust.Identity{ClientID: "sensor-1", Username: "sensor", Addr: netip.MustParseAddr("192.0.2.1")}
	banned := trust.Identity{ClientID: "sensor-2", Username: "sensor", Addr: netip.MustParseAddr("172.0.9.5")}
	for _, impl := range []string{"memory", "fleet"} {
		bans := &trust.Bans{}
		var setup func(b *testing.B)
		if impl == "memory" {
			fill(bans)
		} else {
			setup = func(b *testing.B) {
				// The bans come from Redis: made by another broker.
				c := redisClient(b)
				other := &trust.Bans{}
				f, err := c.NewFleet(redisstore.FleetConfig{Bans: other})
				if err != nil {
					b.Fatal(err)
				}
				f.Start()
				defer f.Close()
				fill(other)
				for f.Stats().Pending > 0 {
					time.Sleep(10 * time.Millisecond)
				}
				mine, err := c.NewFleet(redisstore.FleetConfig{Bans: bans})
				if err != nil {
					b.Fatal(err)
				}
				mine.Start()
				b.Cleanup(mine.Close)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := mine.WaitSynced(ctx); err != nil {
					b.Fatal(err)
				}
				if n := bans.Len(); n != 10_000 {
					b.Fatalf("synced %d bans, want 10000", n)
				}
			}
		}
		for _, c := range []struct {
			name string
			id   trust.Identity
			want bool
		}{{"clean", clean, false}, {"banned", banned, true}} {
			b.Run(c.name+"/impl="+impl, func(b *testing.B) {
				if setup != nil && bans.Len() == 0 {
					setup(b)
				}
				now := time.Now()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, ok := bans.Banned(c.id, now); ok != c.want {
						b.Fatal("wrong answer")
					}
				}
			})
		}
	}
}
