package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/anomaly"
)

// BenchmarkAnomaly: a known device's report. EMQX has no push-interval
// check to compare with; the goal is <= 100 ns and 0 allocs.
func BenchmarkAnomaly(b *testing.B) {
	profiles, _ := anomaly.NewResolver([]anomaly.ProfileRule{
		{TopicFilter: "sensors/+/temperature", Profile: anomaly.Profile{Interval: time.Minute, Tolerance: 5 * time.Second}},
	})
	d := anomaly.NewIntervalDetector(anomaly.Config{Resolver: profiles})
	subjects := make([]anomaly.Subject, 10_000)
	ids := make([]string, len(subjects))
	now := time.Now()
	for i := range subjects {
		ids[i] = fmt.Sprintf("t%05d", i)
		subjects[i] = anomaly.Subject{ClientID: ids[i], Topic: "sensors/" + ids[i] + "/temperature"}
		d.ObserveMessage(subjects[i], now)
		d.Observe(ids[i], now)
	}
	p := anomaly.Profile{Interval: time.Minute, Tolerance: 5 * time.Second}
	b.Run("op=ObserveWith/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		at := now
		for i := 0; i < b.N; i++ {
			at = at.Add(time.Millisecond)
			d.ObserveWith(ids[i%len(ids)], p, at)
		}
	})
	b.Run("op=ObserveMessage/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		at := now
		for i := 0; i < b.N; i++ {
			at = at.Add(time.Millisecond)
			d.ObserveMessage(subjects[i%len(subjects)], at)
		}
	})
	f := anomaly.NewFlappingDetector(anomaly.FlappingConfig{})
	b.Run("op=FlappingConnect/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.Connect(ids[i%len(ids)], now)
		}
	})
}
