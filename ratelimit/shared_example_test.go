package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
)

// fleetStore stands in for Redis (package redisstore): one GCRA bucket
// per key, on one clock, shared by every broker that holds it.
type fleetStore struct {
	mu  sync.Mutex
	now time.Time
	tat map[string]time.Time
}

func (s *fleetStore) Take(_ context.Context, key string, tolerance, lo, hi time.Duration) (time.Duration, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := s.tat[key]
	if tat.Before(s.now) {
		tat = s.now
	}
	avail := s.now.Add(tolerance).Sub(tat)
	if avail < lo {
		return 0, lo - avail, nil
	}
	got := min(avail, hi)
	s.tat[key] = tat.Add(got)
	return got, 0, nil
}

// Two brokers share one user's limit of 5 messages a second, bursts of
// 10: together they let 10 through, not 10 each.
func ExampleShared() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &fleetStore{now: now, tat: map[string]time.Time{}}
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
