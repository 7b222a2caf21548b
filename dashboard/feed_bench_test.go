package dashboard_test

import (
	"testing"

	"github.com/mqttguard/mqttguard/dashboard"
)

// BenchmarkFeedAdd: what a refusal costs the Guard's decision path with
// the dashboard on — one goroutine, and every core at once on one Feed.
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
}
