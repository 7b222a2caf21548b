package wasmguard

import (
	"sync"
	"sync/atomic"
	"time"
)

type breakerConfig struct {
	failures int
	cooldown time.Duration
	// budget is the time consecutive failed calls may take in all
	// before the breaker trips (Limits.Timeout), whatever their number.
	budget time.Duration
}

const maxCooldown = 10 * time.Minute

// breaker quarantines a plugin that keeps failing: after failures
// consecutive failed calls, or consecutive failed calls that took budget
// in all, no call reaches it for cooldown. The time budget is what keeps
// a plugin whose every call runs to its limit (spins until fuel runs
// out, or past its Timeout) from costing the clients behind it five
// such calls each before it is quarantined: at the default Timeout of
// 100 ms, the failures a fail-open plugin may cost before quarantine
// add up to about one Timeout, plus the calls already running when it
// trips. The first call after the cooldown is a probe: if it fails too,
// the next quarantine is twice as long (up to ten minutes); a success
// closes the breaker and resets the cooldown.
//
// The hot path (a healthy plugin) reads two atomics and writes nothing.
type breaker struct {
	cfg   breakerConfig
	until atomic.Int64 // Unix nanoseconds the quarantine lasts until; 0 = closed
	fails atomic.Int32 // consecutive failures
	spent atomic.Int64 // nanoseconds they took

	mu    sync.Mutex
	next  time.Duration // the cooldown the next trip uses
	trips atomic.Uint64
}

func newBreaker(cfg breakerConfig) *breaker {
	if cfg.failures <= 0 {
		cfg.failures = 5
	}
	if cfg.cooldown <= 0 {
		cfg.cooldown = 30 * time.Second
	}
	return &breaker{cfg: cfg, next: cfg.cooldown}
}

// open reports whether calls are refused at now.
func (b *breaker) open(now time.Time) bool {
	u := b.until.Load()
	return u != 0 && now.UnixNano() < u
}

func (b *breaker) success() {
	if b.fails.Load() != 0 || b.until.Load() != 0 {
		b.mu.Lock()
		b.fails.Store(0)
		b.spent.Store(0)
		b.until.Store(0)
		b.next = b.cfg.cooldown
		b.mu.Unlock()
	}
}

// failure records a failed call that started at start and took took,
// and reports whether it tripped the breaker, and for how long.
func (b *breaker) failure(start time.Time, took time.Duration) (tripped bool, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open(start) {
		return false, 0 // a call that started before the trip
	}
	n := b.fails.Add(1)
	spent := time.Duration(b.spent.Add(int64(took)))
	// A failed probe after a quarantine trips again at once.
	if int(n) < b.cfg.failures && (b.cfg.budget <= 0 || spent < b.cfg.budget) && b.until.Load() == 0 {
		return false, 0
	}
	now := start.Add(took)
	cooldown = b.next
	b.until.Store(now.Add(cooldown).UnixNano())
	b.next = min(2*b.next, maxCooldown)
	b.trips.Add(1)
	return true, cooldown
}

// reset closes the breaker (Enable does it).
func (b *breaker) reset() {
	b.mu.Lock()
	b.fails.Store(0)
	b.spent.Store(0)
	b.until.Store(0)
	b.next = b.cfg.cooldown
	b.mu.Unlock()
}
