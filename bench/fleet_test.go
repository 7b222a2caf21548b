package bench

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// BenchmarkFleetTopology: the fleet on each Redis topology — one
// redis-server, Sentinel (a primary, a replica, three sentinels) and a
// Cluster (three primaries with a replica each), all on 127.0.0.1.
// ns/op and the percentiles are a ban's propagation: Bans.Add on one
// broker until the other's Bans has it. redis-cmds/s is what one broker
// asks of the primary that holds the fleet's keys while 1 000 devices
// (each its own user, the seed's per-user limit shared with the default
// lease) publish once a second for 3 s, counted by the primary
// (INFO stats) less the idle fleet's own.
func BenchmarkFleetTopology(b *testing.B) {
	for _, topo := range []string{"single", "sentinel", "cluster"} {
		b.Run("topology="+topo, func(b *testing.B) {
			var url, primary string
			switch topo {
			case "single":
				r := testenv.StartRedis(b)
				url, primary = r.URL(), r.URL()
			case "sentinel":
				rs := testenv.StartRedisSentinel(b)
				url, primary = rs.URL(), rs.Primary.Addr
			case "cluster":
				rc := testenv.StartRedisCluster(b)
				url, primary = rc.URL(), rc.PrimaryFor(b, "{mqttguard:}fleet").Addr
			}
			fleet := func(node string) (*redisstore.Client, *trust.Bans) {
				c, err := redisstore.New(redisstore.Options{URL: url, Node: node})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { c.Close() })
				bans := &trust.Bans{}
				f, err := c.NewFleet(redisstore.FleetConfig{Bans: bans})
				if err != nil {
					b.Fatal(err)
				}
				f.Start()
				b.Cleanup(f.Close)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := f.WaitSynced(ctx); err != nil {
					b.Fatal(err)
				}
				return c, bans
			}
			ca, a := fleet("a")
			_, other := fleet("b")

			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				id := trust.Identity{ClientID: fmt.Sprint("dev-", i), Addr: netip.MustParseAddr("192.0.2.1")}
				start := time.Now()
				if err := a.Add(trust.Ban{Kind: trust.BanClientID, Value: id.ClientID, Until: start.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
				for {
					if _, ok := other.Banned(id, time.Now()); ok {
						break
					}
					if time.Since(start) > 5*time.Second {
						b.Fatalf("ban %d did not reach the other broker in 5 s", i)
					}
					time.Sleep(20 * time.Microsecond)
				}
				lat[i] = time.Since(start)
			}
			b.StopTimer()
			reportLatency(b, lat)

			// One broker's load on the primary: idle first, then 1 000
			// devices at one message a second.
			const window = 3 * time.Second
			idle0 := commandsProcessed(b, primary)
			time.Sleep(window)
			idle := commandsProcessed(b, primary) - idle0
			s, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: ca, Prefix: "user:", Limit: 50, Burst: 100})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			busy0 := commandsProcessed(b, primary)
			for tick := 0; time.Since(start) < window; tick++ {
				next := start.Add(time.Duration(tick+1) * time.Second)
				for d := range 1000 {
					s.AllowN(fmt.Sprint("device-", d), time.Now(), 1)
				}
				time.Sleep(time.Until(next))
			}
			busy := commandsProcessed(b, primary) - busy0
			// Two fleets were idle in both windows; one broker's
			// devices were busy in the second.
			b.ReportMetric(float64(busy-idle)/window.Seconds(), "redis-cmds/s")
			b.ReportMetric(float64(idle)/2/window.Seconds(), "idle-cmds/s")
		})
	}
}

// quietRedis drops go-redis's own log lines (a sentinel's choice, a
// failed dial): they go to standard output, between the benchmark
// lines benchtable reads.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// commandsProcessed is the Redis server's total_commands_processed.
func commandsProcessed(b *testing.B, addr string) int64 {
	b.Helper()
	opts := &redis.Options{Addr: addr}
	if strings.HasPrefix(addr, "unix://") {
		opts = &redis.Options{Network: "unix", Addr: strings.TrimPrefix(addr, "unix://")}
	}
	c := redis.NewClient(opts)
	defer c.Close()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no total_commands_processed in INFO stats")
	return 0
}
