package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/internal/gcrastore"
	"github.com/mqttguard/mqttguard/ratelimit"
)

// Two brokers share one user's limit of 5 messages a second, bursts of
// 10: together they let 10 through, not 10 each. The store here is a
// GCRA in memory standing in for Redis; in a fleet it is a
// redisstore.Client, or any ratelimit.Store.
func ExampleShared() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := gcrastore.New(now)
	cfg := ratelimit.SharedConfig{Store: store, Prefix: "user:", Limit: 5, Burst: 10, Lease: 1}
	brokerA, _ := ratelimit.NewShared(cfg)
	brokerB, _ := ratelimit.NewShared(cfg)

	allowed := 0
	for i := 0; i < 10; i++ {
		for _, b := range []*ratelimit.Shared{brokerA, brokerB} {
			if b.AllowN("alice", now, 1) {
				allowed++
			}
		}
	}
	fmt.Println("allowed:", allowed)
	// Output: allowed: 10
}
