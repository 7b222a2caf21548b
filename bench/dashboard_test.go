package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/trust"
)

// floodRate is the refusals a second BenchmarkDashboardFlood's attacker
// causes.
const floodRate = 10_000

// BenchmarkDashboardFlood: what the dashboard's live view costs the
// Guard under a flood of refusals. Two goroutines publish allowed
// messages (ns/op: the Guard's publish throughput) while an attacker's
// publishes are refused at 10,000 a second; with the dashboard on
// (impl=dashboard) every refusal goes into the Feed, a live view
// streams them and the overview is fetched five times a second, as an
// operator's browser would; off (impl=off), none of that. The ratio of
// the two is the dashboard's cost; overview-ms is how long the page
// took to render mid-flood (the median), streamed/s what the live view
// sent.
func BenchmarkDashboardFlood(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "impl=off"
		if on {
			name = "impl=dashboard"
		}
		b.Run("op=publish-under-flood/"+name, func(b *testing.B) { dashboardFlood(b, on) })
	}
}

func dashboardFlood(b *testing.B, on bool) {
	pol, err := acl.ParseMosquitto(strings.NewReader("pattern readwrite sensors/%u/#\n"))
	if err != nil {
		b.Fatal(err)
	}
	bans := &trust.Bans{}
	cfg := mqttguard.Config{Mode: trust.EnforceFull, ACL: acl.NewHolder(pol), Bans: bans}
	var feed *dashboard.Feed
	if on {
		feed = dashboard.NewFeed(0)
		cfg.OnRefusal = feed.Add
	}
	g, err := mqttguard.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()

	// The attacker: publishes where it may not, paced to floodRate.
	var refused atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &mqttguard.Client{ID: "rogue-1", Username: "rogue", Addr: netip.MustParseAddr("203.0.113.9")}
		m := &mqttguard.Message{Topic: "sensors/victim/temperature", Payload: []byte("99"), Subscribers: -1}
		start := time.Now()
		for ctx.Err() == nil {
			want := int64(time.Since(start).Seconds() * floodRate)
			for refused.Load() < want {
				if d := g.Publish(ctx, c, m, time.Now()); d.Allowed() {
					panic("the attacker's publish was allowed")
				}
				refused.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()

	var streamed atomic.Int64
	var pageTimes []time.Duration
	var pageMu sync.Mutex
	if on {
		d, err := dashboard.New(dashboard.Config{Admin: &adminapi.Handler{Guard: g, Bans: bans}, Feed: feed})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(d)
		defer func() {
			d.Close()
			srv.Close()
		}()
		// A live view, read as fast as it comes.
		res, err := http.Get(srv.URL + "/events")
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(res.Body)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "data: ") {
					streamed.Add(int64(strings.Count(line, `"seq":`)))
				}
			}
		}()
		// The overview, five times a second.
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				start := time.Now()
				res, err := http.Get(srv.URL + "/")
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				pageMu.Lock()
				pageTimes = append(pageTimes, time.Since(start))
				pageMu.Unlock()
			}
		}()
	}

	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	refused0 := refused.Load()
	b.RunParallel(func(pb *testing.PB) {
		i := n.Add(1)
		c := &mqttguard.Client{ID: fmt.Sprintf("sensor-%d", i), Username: fmt.Sprintf("s%d", i), Addr: netip.MustParseAddr("192.0.2.1")}
		m := &mqttguard.Message{Topic: fmt.Sprintf("sensors/s%d/temperature", i), Payload: []byte("21.5"), Subscribers: 1}
		for pb.Next() {
			if d := g.Publish(context.Background(), c, m, time.Now()); !d.Allowed() {
				panic(fmt.Sprint("a sensor's publish was refused: ", d))
			}
		}
	})
	b.StopTimer()
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(refused.Load()-refused0)/secs, "refused/s")
	if on {
		b.ReportMetric(float64(streamed.Load())/secs, "streamed/s")
		pageMu.Lock()
		if len(pageTimes) > 0 {
			slices.Sort(pageTimes)
			b.ReportMetric(float64(pageTimes[len(pageTimes)/2].Microseconds())/1000, "overview-ms")
		}
		pageMu.Unlock()
	}
}
