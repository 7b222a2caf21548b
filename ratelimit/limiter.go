package ratelimit

import (
	"hash/maphash"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the number of keys a Limiter keeps unless
// WithMaxKeys says otherwise: enough for a large fleet, small enough that
// a flood of spoofed keys costs at most a few tens of megabytes.
const DefaultMaxKeys = 1 << 20

// maxHorizon bounds every time value (nanoseconds since the limiter was
// created) and the tolerance, so sums never overflow: about 146 years.
const maxHorizon = 1 << 62

// sweepGrace keeps a full bucket for one more second before it may be
// dropped, so that a goroutine passing a slightly older timestamp cannot
// find its debt forgotten.
const sweepGrace = int64(time.Second)

// Limiter is a set of token buckets, one per key, all with the same limit
// and burst. The zero value refuses every event, as a zero
// rate.Limiter does. A Limiter is safe for concurrent use.
type Limiter struct {
	limit rate.Limit
	burst int

	inf      bool  // rate.Inf: everything is allowed
	frozen   bool  // limit 0: time never refills a bucket
	interval int64 // ns per token (1 when frozen: TAT counts tokens)
	tau      int64 // burst × interval: the debt a bucket may carry

	epoch         time.Time
	seed          maphash.Seed
	sweepInterval int64
	shards        [numShards]shard
}

// Option configures a Limiter.
type Option func(*config)

type config struct {
	maxKeys int
}

// WithMaxKeys bounds the number of keys the Limiter keeps. Beyond it,
// full buckets are dropped to make room, and when none is full, the
// bucket nearest to full of a sample (see the package doc). n <= 0 means
// DefaultMaxKeys.
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxKeys = n
		}
	}
}

// New returns a Limiter whose buckets refill at limit events per second
// and hold at most burst events. A negative limit is treated as 0, a
// negative burst as 0.
func New(limit rate.Limit, burst int, opts ...Option) *Limiter {
	cfg := config{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(&cfg)
	}
	l := &Limiter{limit: limit, burst: max(burst, 0), epoch: time.Now(), seed: maphash.MakeSeed()}
	switch {
	case limit == rate.Inf:
		l.inf = true
	case limit <= 0 || math.IsNaN(float64(limit)):
		l.limit, l.frozen, l.interval = 0, true, 1
	default:
		iv := math.Round(1e9 / float64(limit))
		l.interval = int64(min(max(iv, 1), maxHorizon))
	}
	l.tau = satMul(int64(l.burst), l.interval)
	// A full shard may sweep again once a bucket could have refilled
	// meanwhile, but not more often than every 100 ms.
	l.sweepInterval = max(min(l.tau, int64(time.Second)), int64(100*time.Millisecond))
	perShard := (cfg.maxKeys + numShards - 1) / numShards
	for i := range l.shards {
		l.shards[i].maxLive = perShard
	}
	return l
}

// satMul multiplies non-negative numbers, saturating at maxHorizon/2.
func satMul(a, b int64) int64 {
	const limit = maxHorizon / 2
	if a == 0 || b == 0 {
		return 0
	}
	if a > limit/b {
		return limit
	}
	return a * b
}

// Limit is the refill rate, events per second.
func (l *Limiter) Limit() rate.Limit { return l.limit }

// Burst is the bucket size.
func (l *Limiter) Burst() int { return l.burst }

// Interval is the emission interval the limiter works with: the integer
// number of nanoseconds per token (0 for rate.Inf and for a limit of 0).
// rate.NewLimiter(rate.Every(l.Interval()), l.Burst()) decides exactly
// as one bucket of l does.
func (l *Limiter) Interval() time.Duration {
	if l.inf || l.frozen {
		return 0
	}
	return time.Duration(l.interval)
}

// now converts t to the limiter's clock: nanoseconds since creation, or
// 0 when time does not matter (limit 0).
func (l *Limiter) now(t time.Time) int64 {
	if l.frozen {
		return 0
	}
	d := int64(t.Sub(l.epoch))
	return min(max(d, -maxHorizon), maxHorizon)
}

func (l *Limiter) deletable(tat, now int64) bool {
	if l.frozen {
		return tat == fresh // a spent bucket never refills
	}
	return tat != dead && tat <= now-sweepGrace
}

func (l *Limiter) shardFor(h uint64) *shard { return &l.shards[h>>(64-shardBits)] }

// Allow reports whether one event for key may happen now.
func (l *Limiter) Allow(key string) bool { return l.AllowN(key, time.Now(), 1) }

// AllowN reports whether n events for key may happen at time t, and if
// so takes n tokens from its bucket. A refused call changes nothing.
// n <= 0 is always allowed and takes nothing.
func (l *Limiter) AllowN(key string, t time.Time, n int) bool {
	if l.trivial(n) {
		return n <= 0 || l.inf
	}
	return l.allow(keyHash(maphash.String(l.seed, key)), t, n, 1)
}

// trivial reports calls decided without a bucket: n <= 0, rate.Inf, and
// a limiter with burst 0 (including the zero Limiter, whose hash seed is
// not set).
func (l *Limiter) trivial(n int) bool { return n <= 0 || l.inf || l.burst == 0 }

// AllowBytes is AllowN for a key held in a byte slice (a reused packet
// buffer): the key is hashed, never stored, so nothing is allocated.
func (l *Limiter) AllowBytes(key []byte, t time.Time, n int) bool {
	if l.trivial(n) {
		return n <= 0 || l.inf
	}
	return l.allow(keyHash(maphash.Bytes(l.seed, key)), t, n, 1)
}

// AllowScaled is AllowN with the key's rate and burst multiplied by mult
// for this call: a trust multiplier of 0.5 halves both, 2 doubles them.
// The bucket's state is shared across multipliers, so a client whose
// multiplier changes keeps its debt. mult <= 0 refuses (a rate of
// nothing); mult is applied by scaling the event's cost, rounded to the
// nanosecond.
func (l *Limiter) AllowScaled(key string, t time.Time, n int, mult float64) bool {
	if l.trivial(n) {
		return n <= 0 || l.inf
	}
	return l.allow(keyHash(maphash.String(l.seed, key)), t, n, mult)
}

// cost returns the GCRA increment of n events at multiplier mult, and
// whether the event can ever be allowed.
func (l *Limiter) cost(n int, mult float64) (int64, bool) {
	if mult == 1 {
		if n > l.burst {
			return 0, false
		}
		return satMul(int64(n), l.interval), true
	}
	if !(mult > 0) || math.IsInf(mult, 1) {
		return 0, mult > 0 // +Inf allows everything, <= 0 or NaN nothing
	}
	inc := math.Round(float64(n) * float64(l.interval) / mult)
	if inc > float64(l.tau) {
		return 0, false // more than the scaled burst
	}
	return int64(inc), true
}

func (l *Limiter) allow(h uint64, t time.Time, n int, mult float64) bool {
	inc, ok := l.cost(n, mult)
	s := l.shardFor(h)
	if !ok {
		s.refused.Add(1)
		return false
	}
	if inc == 0 {
		return true // an infinite multiplier
	}
	now := l.now(t)
	for {
		e := s.lookup(h, now, l)
		for {
			old := e.tat.Load()
			if old == dead {
				break // deleted under us: look it up again
			}
			base := max(old, now)
			next := base + inc
			if next-l.tau > now {
				e.refused.Add(1)
				return false
			}
			if e.tat.CompareAndSwap(old, next) {
				e.allowed.Add(1)
				return true
			}
		}
	}
}

// peek returns the key's TAT without inserting it.
func (l *Limiter) peek(key string) int64 {
	if l.burst == 0 || l.inf {
		return fresh
	}
	h := keyHash(maphash.String(l.seed, key))
	if tab := l.shardFor(h).tab.Load(); tab != nil {
		if e := tab.find(h); e != nil {
			if tat := e.tat.Load(); tat != dead {
				return tat
			}
		}
	}
	return fresh
}

// Tokens returns how many tokens key's bucket holds at time t; like
// x/time/rate's TokensAt it may be fractional. For rate.Inf it is the
// burst.
func (l *Limiter) Tokens(key string, t time.Time) float64 {
	if l.inf {
		return float64(l.burst)
	}
	if l.burst == 0 {
		return 0
	}
	debt := l.peek(key) - l.now(t)
	if debt <= 0 {
		return float64(l.burst)
	}
	return float64(l.burst) - float64(debt)/float64(l.interval)
}

// Delay returns how long from t until n events for key would be allowed:
// 0 when they would be now, rate.InfDuration when never (n above the
// burst, or a limit of 0 with the bucket spent). It takes nothing; it is
// the "when may I" that a broker puts in a retry hint.
func (l *Limiter) Delay(key string, t time.Time, n int) time.Duration {
	if n <= 0 || l.inf {
		return 0
	}
	if n > l.burst {
		return rate.InfDuration
	}
	inc := satMul(int64(n), l.interval)
	now := l.now(t)
	wait := max(l.peek(key), now) + inc - l.tau - now
	switch {
	case wait <= 0:
		return 0
	case l.frozen:
		return rate.InfDuration
	}
	return time.Duration(wait)
}

// Reset forgets key: its bucket is full again.
func (l *Limiter) Reset(key string) {
	if l.burst == 0 || l.inf {
		return // no buckets
	}
	h := keyHash(maphash.String(l.seed, key))
	l.shardFor(h).remove(h)
}

// Len is the number of keys the limiter keeps a bucket for. Keys whose
// bucket is full are not counted once they have been dropped.
func (l *Limiter) Len() int {
	n := int64(0)
	for i := range l.shards {
		n += l.shards[i].liveCount.Load()
	}
	return int(n)
}

// Sweep drops every bucket that is full at t (and has been for a second)
// and returns how many it dropped. The limiter sweeps a shard by itself
// when the shard needs room; call Sweep from a janitor to give memory
// back sooner.
func (l *Limiter) Sweep(t time.Time) int {
	now := l.now(t)
	removed := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		removed += s.sweepLocked(now, l)
		s.mu.Unlock()
	}
	return removed
}

// Stats are a limiter's counters since it was created.
type Stats struct {
	Allowed    uint64 // calls allowed (rate.Inf, n <= 0 and an infinite multiplier are not counted)
	Refused    uint64 // calls refused
	Overflowed uint64 // times a new key had to share an overflow bucket (no room could be made)
	Evicted    uint64 // buckets dropped to make room (full ones first) or by Sweep
	Keys       int    // keys kept now
}

// Stats returns the counters. Each key counts its own events beside its
// bucket, so counting shares no memory between keys and costs the hot
// path one uncontended atomic add; Stats pays instead, walking every key.
// Call it from a metrics scrape, not per packet.
func (l *Limiter) Stats() Stats {
	var st Stats
	for i := range l.shards {
		s := &l.shards[i]
		a, r := s.counts()
		st.Allowed += a
		st.Refused += r
		st.Overflowed += s.overflowed.Load()
		st.Evicted += s.evicted.Load()
	}
	st.Keys = l.Len()
	return st
}
