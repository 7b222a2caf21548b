package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/loadgen"
	"github.com/mqttguard/mqttguard/internal/testenv"
)

// loadScenario is one shape of traffic; b.N counts deliveries.
type loadScenario struct {
	name       string
	pubs, subs int
	qos        byte
	rate       float64 // per publisher; 0: as fast as it goes
	// most caps the deliveries of a paced scenario below b.N: at a fixed
	// rate more samples only take longer (30,000 give 300 above p99).
	most   int
	filter string
	topic  func(i int) string
}

var loadScenarios = []loadScenario{
	{name: "fanin-100to1/qos0", pubs: 100, subs: 1, qos: 0, filter: "load/#", topic: func(i int) string { return fmt.Sprintf("load/%d", i) }},
	{name: "fanin-100to1/qos1", pubs: 100, subs: 1, qos: 1, filter: "load/#", topic: func(i int) string { return fmt.Sprintf("load/%d", i) }},
	{name: "fanout-1to100/qos0", pubs: 1, subs: 100, qos: 0, filter: "load/all", topic: func(int) string { return "load/all" }},
	{name: "fanout-1to100/qos1", pubs: 1, subs: 100, qos: 1, filter: "load/all", topic: func(int) string { return "load/all" }},
	// Latency at a load well below saturation: 10 publishers × 500/s.
	{name: "latency-5000msgs/qos0", pubs: 10, subs: 1, qos: 0, rate: 500, most: 30_000, filter: "load/#", topic: func(i int) string { return fmt.Sprintf("load/%d", i) }},
}

func runLoad(b *testing.B, addr string, sc loadScenario, auth bool) {
	n := b.N
	if sc.most > 0 {
		n = min(n, sc.most)
	}
	perPub := max(1, n/(sc.pubs*sc.subs))
	cfg := loadgen.Config{Addr: addr, Publishers: sc.pubs, Subscribers: sc.subs, QoS: sc.qos, Payload: 1024,
		Messages: perPub, Rate: sc.rate, Filter: sc.filter, Topic: sc.topic, Settle: 3 * time.Second}
	if auth {
		cfg.Auth = func(string) (string, string) { return "load", loadUsers["load"] }
	}
	b.ResetTimer()
	res, err := loadgen.Run(context.Background(), cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	// ns/op is the time per delivery, from the first publish to the last
	// delivery.
	b.ReportMetric(float64(res.Elapsed.Nanoseconds())/float64(max(res.Delivered, 1)), "ns/op")
	b.ReportMetric(res.Throughput(), "msgs/s")
	b.ReportMetric(float64(res.Percentile(50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.Percentile(99).Microseconds()), "p99-µs")
	b.ReportMetric(float64(res.Lost()), "lost")
}

// BenchmarkBrokerLoad: the example broker with the full Guard, against
// bare mochi-mqtt (allow-all, no hooks), bare mochi behind the packet
// validator alone, mosquitto 2.0 with the same passwords and ACL, and
// mosquitto with the Guard inside it as a plugin (mosquittoguard).
// 1 KiB payloads.
func BenchmarkBrokerLoad(b *testing.B) {
	servers := []struct {
		impl  string
		start func(testing.TB) *process
		auth  bool
	}{
		{"mqttguard", func(b testing.TB) *process { return guardServer(b, false, "") }, true},
		{"mochi", func(b testing.TB) *process { return bareMochi(b, false) }, false},
		{"mochi-validator", func(b testing.TB) *process { return bareMochi(b, true) }, false},
		{"mosquitto", func(b testing.TB) *process { return mosquittoServer(b, false) }, true},
		{"mosquitto-plugin", mosquittoPlugin, true},
	}
	for _, sc := range loadScenarios {
		for _, s := range servers {
			b.Run(sc.name+"/impl="+s.impl, func(b *testing.B) {
				p := s.start(b)
				runLoad(b, p.addr, sc, s.auth)
			})
		}
	}
}

// BenchmarkFleetLoad: the example broker with fleet mode on (bans,
// trust records and the per-user and per-IP limits shared through a
// redis-server on a Unix socket) against the same broker alone, at
// guardConfig's far-away limits. The load's clients share one user whose
// leases are large, so this measures what fleet mode adds to every
// publish (a lease spent instead of a local bucket, the fleet's
// goroutines); the round trips a lease costs when it runs out are
// BenchmarkSharedLimit's.
func BenchmarkFleetLoad(b *testing.B) {
	for _, sc := range loadScenarios {
		if sc.qos == 0 && sc.rate == 0 {
			continue // QoS 0 throughput measures mochi's drops more than the Guard
		}
		for _, fleet := range []bool{false, true} {
			name := "off"
			if fleet {
				name = "on"
			}
			b.Run(sc.name+"/fleet="+name, func(b *testing.B) {
				extra := []string{"[cluster]\nredis_url = \"\""}
				if fleet {
					extra[0] = fmt.Sprintf("[cluster]\nredis_url = %q", testenv.StartRedis(b).URL())
				}
				p := guardServer(b, false, "", extra...)
				runLoad(b, p.addr, sc, true)
			})
		}
	}
}

// BenchmarkProxyLoad: the example proxy in front of mosquitto against
// mosquitto alone, and against a plain TCP relay in front of mosquitto —
// the floor of any proxy: two more hops and a process (mosquitto is
// anonymous in all three; the proxy checks passwords and the ACL).
func BenchmarkProxyLoad(b *testing.B) {
	for _, sc := range loadScenarios {
		b.Run(sc.name+"/impl=mqttguard", func(b *testing.B) {
			up := mosquittoServer(b, true)
			p := guardServer(b, false, up.addr)
			runLoad(b, p.addr, sc, true)
		})
		b.Run(sc.name+"/impl=tcp-relay", func(b *testing.B) {
			up := mosquittoServer(b, true)
			relay := start(b, "", buildBinary(b, "./internal/tcprelay"), "-upstream", up.addr)
			runLoad(b, relay.addr, sc, false)
		})
		b.Run(sc.name+"/impl=mosquitto", func(b *testing.B) {
			up := mosquittoServer(b, true)
			runLoad(b, up.addr, sc, false)
		})
	}
}

// BenchmarkNoisyNeighbour: 100 well-behaved sensors (QoS 1, 2 messages a
// second each, 5 s; each its own account) and an aggregator on
// sensors/#, while 10 compromised devices with valid credentials flood
// their own topics as fast as they can. With the Guard at
// the seed's production limits against bare mochi: are the sensors'
// messages all delivered, how late at p99, and how much memory does the
// broker take?
func BenchmarkNoisyNeighbour(b *testing.B) {
	for _, impl := range []string{"mqttguard", "mochi"} {
		b.Run("impl="+impl, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var p *process
				if impl == "mqttguard" {
					p = guardServer(b, true, "")
				} else {
					p = bareMochi(b, false)
				}
				noisyNeighbour(b, p)
			}
		})
	}
}

func noisyNeighbour(b *testing.B, p *process) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var peak int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the broker's memory, every 100 ms
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				peak = max(peak, p.rssKiB())
			}
		}
	}()
	var flooded [10]int
	for i := range flooded {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rogue := fmt.Sprintf("rogue-%d", i)
			flooded[i] = loadgen.Flood(ctx, p.addr, rogue, rogue, loadUsers[rogue], "sensors/"+rogue+"/t", 256)
		}()
	}
	time.Sleep(500 * time.Millisecond) // the flood is on
	good := []byte("sensors/good-")
	res, err := loadgen.Run(ctx, loadgen.Config{Addr: p.addr, Publishers: 100, Subscribers: 1, QoS: 1, Payload: 64,
		Messages: 10, Rate: 2, Filter: "sensors/#", Topic: func(i int) string { return fmt.Sprintf("sensors/good-%d/t", i) },
		Count: func(topic []byte) bool { return bytes.HasPrefix(topic, good) }, Settle: 5 * time.Second,
		Auth: func(id string) (string, string) {
			if id == "sub-0" {
				return "aggregator", loadUsers["aggregator"]
			}
			user := "good-" + strings.TrimPrefix(id, "pub-")
			return user, loadUsers[user]
		}})
	cancel()
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, n := range flooded {
		total += n
	}
	b.ReportMetric(float64(res.Lost()), "lost-of-1000")
	b.ReportMetric(float64(res.Percentile(50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.Percentile(99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(peak)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(total), "flood-msgs")
}
