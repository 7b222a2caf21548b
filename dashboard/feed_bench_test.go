package dashboard_test

import (
	"strconv"
	"testing"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/dashboard"
)

// BenchmarkFeedAdd: what a refusal costs the Guard's decision path with
// the dashboard on — one goroutine, and every core at once on one Feed;
// and a push-interval anomaly, of a device the devices page knows, and
// of a new device each time with the page's 512 full (the oldest is
// evicted: the worst case, bounded by CONNECTs, as each new client ID
// needs one).
func BenchmarkFeedAdd(b *testing.B) {
	r := refusal(1, "sensors/temperature/rogue-1")
	b.Run("serial", func(b *testing.B) {
		f := dashboard.NewFeed(0)
		b.ReportAllocs()
		for b.Loop() {
			f.Add(r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		f := dashboard.NewFeed(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f.Add(r)
			}
		})
	})
	anomaly := func(id string) mqttguard.Refusal {
		a := refusal(1, "sensors/temperature/x")
		a.Client.ID = id
		a.Decision = mqttguard.Decision{Verdict: mqttguard.Drop, Cause: mqttguard.Cause{Component: mqttguard.ByAnomaly, Detail: "too-early"}}
		return a
	}
	b.Run("anomaly-known-device", func(b *testing.B) {
		f := dashboard.NewFeed(0)
		a := anomaly("dev-1")
		b.ReportAllocs()
		for b.Loop() {
			f.Add(a)
		}
	})
	b.Run("anomaly-new-device", func(b *testing.B) {
		f := dashboard.NewFeed(0)
		devs := make([]mqttguard.Refusal, 4096)
		for i := range devs {
			devs[i] = anomaly("dev-" + strconv.Itoa(i))
		}
		for i := range 512 {
			f.Add(devs[i])
		}
		b.ReportAllocs()
		i := 512
		for b.Loop() {
			f.Add(devs[i%len(devs)])
			i++
		}
	})
}
