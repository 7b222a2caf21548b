package anomaly_test

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/anomaly"
)

func Example() {
	// Temperature sensors report every minute, give or take 5 s.
	profiles, err := anomaly.NewResolver([]anomaly.ProfileRule{
		{TopicFilter: "sensors/+/temperature", Profile: anomaly.Profile{Interval: time.Minute, Tolerance: 5 * time.Second}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := anomaly.NewIntervalDetector(anomaly.Config{Resolver: profiles})
	s := anomaly.Subject{ClientID: "t1", Topic: "sensors/t1/temperature"}
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, gap := range []time.Duration{0, 65 * time.Second, time.Second, 2 * time.Hour} {
		at = at.Add(gap)
		v := d.ObserveMessage(s, at)
		fmt.Println(v.Result, v.Gap, v.Action)
	}
	// Output:
	// first 0s keep
	// normal 1m5s keep
	// too-early 1s drop
	// too-late 2h0m0s keep
}

func ExampleFlappingDetector() {
	f := anomaly.NewFlappingDetector(anomaly.FlappingConfig{}) // EMQX's 15 per minute
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 15; i++ {
		if v := f.Connect("reconnect-loop", at.Add(time.Duration(i)*time.Second)); v.Ban {
			fmt.Println("ban until", v.BanUntil.Format(time.TimeOnly), "after", v.Count, "connects")
		}
	}
	// Output:
	// ban until 10:05:14 after 15 connects
}
