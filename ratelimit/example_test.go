package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"golang.org/x/time/rate"
)

func Example() {
	// One message a second per client, bursts of 3.
	perClient := ratelimit.New(1, 3)
	now := time.Now()
	for i := 0; i < 4; i++ {
		fmt.Println(perClient.AllowN("sensor-7", now, 1))
	}
	// Another client has its own bucket.
	fmt.Println(perClient.AllowN("sensor-8", now, 1))
	// A second later one token is back.
	fmt.Println(perClient.AllowN("sensor-7", now.Add(time.Second), 1))
	// Output:
	// true
	// true
	// true
	// false
	// true
	// true
}

// A byte budget: n is the payload size. 64 KiB/s per client with bursts
// of 256 KiB, the EMQX model of message and byte limits per client.
func ExampleLimiter_AllowN_bytes() {
	bytesPerClient := ratelimit.New(64<<10, 256<<10)
	now := time.Now()
	payload := make([]byte, 200<<10)
	fmt.Println(bytesPerClient.AllowN("camera-1", now, len(payload)))
	fmt.Println(bytesPerClient.AllowN("camera-1", now, len(payload)))
	fmt.Println(bytesPerClient.Delay("camera-1", now, len(payload)).Round(time.Millisecond))
	// Output:
	// true
	// false
	// 2.25s
}

func ExampleLimiter_AllowScaled() {
	l := ratelimit.New(10, 10)
	now := time.Now()
	// A trusted client (multiplier 2) may burst to 20; a suspicious one
	// (0.5) only to 5.
	fmt.Println(l.AllowScaled("trusted", now, 20, 2.0))
	fmt.Println(l.AllowScaled("suspect", now, 6, 0.5))
	// Output:
	// true
	// false
}

func ExampleMulti() {
	perUser := ratelimit.New(50, 100)
	perIP := ratelimit.New(rate.Every(100*time.Millisecond), 2)
	now := time.Now()
	check := ratelimit.Multi{
		{Limiter: perUser, Key: "alice", N: 1},
		{Limiter: perIP, Key: "192.0.2.7", N: 1},
	}
	fmt.Println(check.Allow(now), check.Allow(now), check.Allow(now))
	// The refused third call charged alice nothing.
	fmt.Println(perUser.Tokens("alice", now))
	// Output:
	// true true false
	// 98
}

func ExampleFanoutCost() {
	perTopic := ratelimit.New(3, 20) // 3 messages a second per topic
	now := time.Now()
	// A message to 750 subscribers weighs 10.
	fmt.Println(ratelimit.FanoutCost(750), perTopic.AllowN("alerts/all", now, ratelimit.FanoutCost(750)))
	// Output:
	// 10 true
}

func ExampleLimiter_Sweep() {
	l := ratelimit.New(10, 1, ratelimit.WithMaxKeys(100_000))
	now := time.Now()
	l.AllowN("a", now, 1)
	l.AllowN("b", now, 1)
	fmt.Println(l.Len())
	// Once their buckets have refilled, the keys carry no information.
	fmt.Println(l.Sweep(now.Add(5*time.Second)), l.Len())
	// Output:
	// 2
	// 2 0
}
