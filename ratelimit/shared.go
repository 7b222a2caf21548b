package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Store is a set of GCRA buckets that several brokers share (package
// redisstore keeps them in Redis, one Lua script per call). A bucket's
// whole state is its theoretical arrival time (TAT), as in this
// package's Limiter; a store knows nothing of rates or tokens, only of
// time.
type Store interface {
	// Take advances key's TAT by as much as it can, up to max and at
	// least min, without taking the TAT more than tolerance ahead of the
	// store's clock, and returns how far it advanced it. When not even
	// min fits it takes nothing and returns how long until min would
	// fit, so that a refused caller need not ask again before then. A
	// missing key has a TAT of now.
	Take(ctx context.Context, key string, tolerance, min, max time.Duration) (taken, wait time.Duration, err error)
}

// DownPolicy is what a Shared limiter does while its Store is
// unreachable.
type DownPolicy uint8

const (
	// DownLocal enforces the limit on this broker alone, from a local
	// Limiter with the same rate and burst: a fleet of N brokers admits
	// up to N times the limit while the store is down. The default.
	DownLocal DownPolicy = iota
	// DownAllow allows everything (fail open).
	DownAllow
	// DownRefuse refuses everything (fail closed).
	DownRefuse
)

// SharedConfig configures a Shared limiter. Store, Limit and Burst are
// required; every other zero field means its documented default.
type SharedConfig struct {
	Store Store
	// Prefix is put before every key in the store, so that several
	// limits share one store (for example "user:").
	Prefix string
	Limit  rate.Limit
	Burst  int
	// Lease is how many events' worth of tokens a broker takes from the
	// store beyond what the current event needs, to spend locally
	// without asking again (default Burst/10, at least 1; a negative
	// Lease takes none: every event asks the store). LeaseFor is how
	// long a lease may be spent (default 1 s); what is unspent by then
	// is given up.
	Lease    int
	LeaseFor time.Duration
	// Timeout bounds one call to the store (default 50 ms). A call that
	// fails or times out puts the limiter in the Down state: it stops
	// asking the store, decides by WhenDown, and tries again after a
	// backoff that doubles from RetryAfter (default 100 ms) up to
	// MaxRetryAfter (default 10 s).
	Timeout       time.Duration
	WhenDown      DownPolicy
	RetryAfter    time.Duration
	MaxRetryAfter time.Duration
	// MaxKeys bounds the leases kept (default DefaultMaxKeys). Keys
	// beyond it are decided by the store on every event (with NoWait, by
	// WhenDown).
	MaxKeys int
	// NoWait is for a caller that must never wait on the network (the
	// mosquitto plugin decides on the broker's one thread): when a key's
	// lease cannot pay, the event is decided by WhenDown, as while the
	// store is down, and one goroutine per key refills the lease (bounded
	// by Timeout) for the events after it. Wait joins the refills in
	// flight. Default false: the caller makes the round trip.
	NoWait bool
	// Logger hears once when the store goes down and once when it is back
	// (nil: no log).
	Logger *slog.Logger
}

// Shared is a keyed rate limit that holds across a fleet of brokers: a
// user allowed 50 messages a second gets 50 in all, not 50 on each
// broker. Each key's bucket lives in a Store; a broker takes tokens from
// it in leases and spends them locally, so most events cost an atomic
// decrement and only one in Lease+1 a round trip to the store.
//
// # Accuracy
//
// Leasing never admits more than the limit: every token spent was taken
// from the shared bucket first. It can admit less: a broker holds at
// most Lease events' worth of tokens that other brokers cannot use until
// it spends them or its lease ends (LeaseFor). With N brokers sharing a
// key, a client that needs the whole burst can be refused up to N×Lease
// events early; with traffic on one broker only, nothing is lost. A
// smaller Lease is more exact and asks the store more often; Lease -1
// asks it for every event. Under the limit a key costs one round trip per
// Lease+1 events; at the limit the bucket refills a token at a time, so
// about one per admitted event. A refusal is remembered until the store
// says a token is back, so a client flooding over its limit costs the
// store nothing more.
//
// While the store is down (see DownPolicy) the limit holds per broker.
// So it does with NoWait while a lease is being refilled: a broker can
// then admit, beyond the shared limit, what WhenDown admits during its
// refills' round trips.
//
// Shared is safe for concurrent use.
type Shared struct {
	cfg      SharedConfig
	interval int64 // ns per event
	tau      int64 // tolerance, ns: Burst events
	lease    int64 // ns of tokens taken beyond the event's cost
	local    *Limiter

	leases  sync.Map // key → *lease
	nleases atomic.Int64

	downUntil atomic.Int64 // unix ns; 0: healthy
	failures  atomic.Int32
	stateMu   sync.Mutex // serialises the up/down log lines

	storeCalls, storeErrors, downDecisions atomic.Uint64

	refills    sync.WaitGroup // NoWait's refills in flight
	stop       context.Context
	stopRefill context.CancelFunc
}

type lease struct {
	credit  atomic.Int64 // ns of GCRA time left to spend
	until   atomic.Int64 // unix ns after which credit is void
	refused atomic.Int64 // unix ns before which the store would refuse
	mu      sync.Mutex   // one store call per key at a time
	// refilling: a NoWait refill is in flight.
	refilling atomic.Bool
}

// NewShared returns a Shared limiter, or an error naming the
// SharedConfig field that is wrong.
func NewShared(cfg SharedConfig) (*Shared, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("ratelimit: SharedConfig.Store is nil")
	case !(cfg.Limit > 0) || cfg.Limit == rate.Inf:
		return nil, fmt.Errorf("ratelimit: SharedConfig.Limit %v: want a finite rate above 0", cfg.Limit)
	case cfg.Burst < 1:
		return nil, fmt.Errorf("ratelimit: SharedConfig.Burst %d: want at least 1", cfg.Burst)
	case cfg.WhenDown > DownRefuse:
		return nil, fmt.Errorf("ratelimit: SharedConfig.WhenDown %d: unknown policy", cfg.WhenDown)
	case cfg.LeaseFor < 0 || cfg.Timeout < 0 || cfg.RetryAfter < 0 || cfg.MaxRetryAfter < 0:
		return nil, errors.New("ratelimit: SharedConfig durations must not be negative")
	}
	if cfg.Lease == 0 {
		cfg.Lease = max(1, cfg.Burst/10)
	}
	cfg.Lease = max(cfg.Lease, 0)
	if cfg.LeaseFor == 0 {
		cfg.LeaseFor = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = 100 * time.Millisecond
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = 10 * time.Second
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	s := &Shared{cfg: cfg, local: New(cfg.Limit, cfg.Burst, WithMaxKeys(cfg.MaxKeys))}
	s.interval = s.local.interval
	s.tau = s.local.tau
	s.lease = satMul(int64(cfg.Lease), s.interval)
	s.stop, s.stopRefill = context.WithCancel(context.Background())
	return s, nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Shared) Config() SharedConfig { return s.cfg }

// AllowN reports whether n events for key may happen at time t across
// the fleet, and if so takes their tokens. It asks the store only when
// this broker's lease for key cannot pay, and never while the store is
// down. t is the broker's clock for leases and the down-state backoff;
// the buckets themselves run on the store's clock.
func (s *Shared) AllowN(key string, t time.Time, n int) bool {
	return s.AllowScaled(key, t, n, 1)
}

// AllowScaled is AllowN with the rate and burst multiplied by mult for
// this call, as Limiter.AllowScaled.
func (s *Shared) AllowScaled(key string, t time.Time, n int, mult float64) bool {
	return s.AllowScaledContext(context.Background(), key, t, n, mult)
}

// AllowScaledContext is AllowScaled for a caller with a context: a call
// to the store (at most one, bounded by SharedConfig.Timeout) ends when
// ctx does too. A caller that gives up is decided as if the store were
// down (WhenDown) without putting the limiter in the Down state: the
// store did nothing wrong.
func (s *Shared) AllowScaledContext(ctx context.Context, key string, t time.Time, n int, mult float64) bool {
	if n <= 0 {
		return true
	}
	cost, ok := s.cost(n, mult)
	if !ok {
		return false
	}
	now := t.UnixNano()
	v, found := s.leases.Load(key)
	if found {
		l := v.(*lease)
		if l.until.Load() > now && l.spend(cost) {
			return true
		}
		if now < l.refused.Load() {
			return false // the store said no, and would say it again
		}
	}
	if s.down(now) {
		return s.whenDown(key, t, n, mult)
	}
	var l *lease
	if found {
		l = v.(*lease)
	} else if s.nleases.Load() < int64(s.cfg.MaxKeys) {
		nl := &lease{}
		v, loaded := s.leases.LoadOrStore(key, nl)
		l = v.(*lease)
		if !loaded {
			s.nleases.Add(1)
		}
	}
	if l == nil && s.cfg.NoWait {
		return s.whenDown(key, t, n, mult) // no lease to refill for later
	}
	if l == nil {
		got, _, err := s.take(ctx, key, cost, cost)
		if err != nil {
			s.fail(ctx, now, err)
			return s.whenDown(key, t, n, mult)
		}
		s.ok()
		return got > 0
	}
	if s.cfg.NoWait {
		s.refill(key, l, cost, now)
		return s.whenDown(key, t, n, mult)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Another caller may have refilled the lease while this one waited.
	if l.until.Load() > now && l.spend(cost) {
		return true
	}
	if now < l.refused.Load() {
		return false
	}
	if s.down(now) {
		return s.whenDown(key, t, n, mult)
	}
	ok, err := s.fillLocked(ctx, key, l, cost, cost, now)
	if err != nil {
		return s.whenDown(key, t, n, mult)
	}
	return ok
}

// fillLocked takes at least minimum and at most minimum+lease from the
// store into l (l.mu held), spends spend of it, and reports whether the
// store had minimum.
func (s *Shared) fillLocked(ctx context.Context, key string, l *lease, minimum, spend, now int64) (bool, error) {
	got, wait, err := s.take(ctx, key, minimum, minimum+s.lease)
	if err != nil {
		s.fail(ctx, now, err)
		return false, err
	}
	s.ok()
	if got == 0 {
		l.refused.Store(now + wait)
		return false, nil
	}
	// A lease that ran out of time gives up its remaining credit: the
	// store's bucket has refilled meanwhile, and other brokers may use it.
	if l.until.Load() <= now {
		l.credit.Store(0)
	}
	l.credit.Add(got - spend)
	l.until.Store(now + int64(s.cfg.LeaseFor))
	return true, nil
}

// refill fills l in the background (NoWait) unless a refill is in
// flight already; the event that asked was decided without it.
func (s *Shared) refill(key string, l *lease, cost, now int64) {
	if s.stop.Err() != nil || !l.refilling.CompareAndSwap(false, true) {
		return
	}
	s.refills.Add(1)
	go func() {
		defer s.refills.Done()
		defer l.refilling.Store(false)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.until.Load() > now && l.credit.Load() >= cost || s.down(now) {
			return
		}
		s.fillLocked(s.stop, key, l, cost, 0, now)
	}()
}

// Wait returns when the NoWait refills in flight have ended (each within
// Timeout).
func (s *Shared) Wait() { s.refills.Wait() }

// Close ends the NoWait refills in flight and starts no more: every
// event that its lease cannot pay is decided by WhenDown after it.
func (s *Shared) Close() {
	s.stopRefill()
	s.refills.Wait()
}

// Refund gives back the tokens of n events that AllowScaled took with the
// same mult, to this broker's lease, for a caller whose other checks
// refused the event (all-or-nothing, as Multi).
func (s *Shared) Refund(key string, n int, mult float64) {
	cost, ok := s.cost(n, mult)
	if !ok || n <= 0 {
		return
	}
	if v, found := s.leases.Load(key); found {
		v.(*lease).credit.Add(cost)
	}
}

// cost is the GCRA time of n events at multiplier mult.
func (s *Shared) cost(n int, mult float64) (int64, bool) {
	if mult == 0 {
		mult = 1
	}
	if !(mult > 0) {
		return 0, false
	}
	if math.IsInf(mult, 1) {
		return 0, true
	}
	c := math.Round(float64(n) * float64(s.interval) / mult)
	if c > float64(s.tau) {
		return 0, false // more than the (scaled) burst: never
	}
	return int64(max(c, 1)), true
}

func (l *lease) spend(cost int64) bool {
	for {
		c := l.credit.Load()
		if c < cost {
			return false
		}
		if l.credit.CompareAndSwap(c, c-cost) {
			return true
		}
	}
}

func (s *Shared) take(ctx context.Context, key string, minimum, maximum int64) (got, wait int64, err error) {
	s.storeCalls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	g, w, err := s.cfg.Store.Take(ctx, s.cfg.Prefix+key, time.Duration(s.tau), time.Duration(minimum), time.Duration(maximum))
	if err != nil {
		s.storeErrors.Add(1)
		return 0, 0, err
	}
	got = int64(g)
	if got > 0 && got < minimum {
		got = minimum // a store may round to its clock's resolution
	}
	return min(got, maximum), max(int64(w), 0), nil
}

func (s *Shared) whenDown(key string, t time.Time, n int, mult float64) bool {
	s.downDecisions.Add(1)
	switch s.cfg.WhenDown {
	case DownAllow:
		return true
	case DownRefuse:
		return false
	}
	return s.local.AllowScaled(key, t, n, mult)
}

func (s *Shared) down(now int64) bool {
	d := s.downUntil.Load()
	return d != 0 && now < d
}

// fail puts the limiter in the down state and logs the first failure —
// unless the caller gave up (its ctx ended), which says nothing about
// the store.
func (s *Shared) fail(ctx context.Context, now int64, err error) {
	if ctx.Err() != nil {
		return
	}
	f := s.failures.Add(1)
	backoff := s.cfg.RetryAfter << min(f-1, 20)
	backoff = min(max(backoff, s.cfg.RetryAfter), s.cfg.MaxRetryAfter)
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	was := s.downUntil.Load()
	s.downUntil.Store(now + int64(backoff))
	if was == 0 && s.cfg.Logger != nil {
		s.cfg.Logger.Warn("ratelimit: shared store unreachable; deciding locally until it is back",
			"prefix", s.cfg.Prefix, "policy", s.cfg.WhenDown.String(), "retry_in", backoff, "error", err)
	}
}

// ok ends the down state after a successful call.
func (s *Shared) ok() {
	if s.downUntil.Load() == 0 {
		return
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.downUntil.Load() != 0 {
		s.downUntil.Store(0)
		s.failures.Store(0)
		if s.cfg.Logger != nil {
			s.cfg.Logger.Info("ratelimit: shared store reachable again", "prefix", s.cfg.Prefix)
		}
	}
}

// Healthy reports whether the last call to the store succeeded.
func (s *Shared) Healthy() bool { return s.downUntil.Load() == 0 }

// SharedStats count the work of a Shared limiter.
type SharedStats struct {
	StoreCalls, StoreErrors uint64
	// DownDecisions were made by the DownPolicy, without the store.
	DownDecisions uint64
	Leases        int
}

// Stats returns the counters.
func (s *Shared) Stats() SharedStats {
	return SharedStats{StoreCalls: s.storeCalls.Load(), StoreErrors: s.storeErrors.Load(),
		DownDecisions: s.downDecisions.Load(), Leases: int(s.nleases.Load())}
}

// Sweep drops the leases that ended before t and the local buckets that
// are full, and returns how many leases it dropped.
func (s *Shared) Sweep(t time.Time) int {
	now := t.UnixNano()
	n := 0
	s.leases.Range(func(k, v any) bool {
		l := v.(*lease)
		if l.mu.TryLock() {
			if l.until.Load() <= now {
				s.leases.Delete(k)
				s.nleases.Add(-1)
				n++
			}
			l.mu.Unlock()
		}
		return true
	})
	s.local.Sweep(t)
	return n
}

func (p DownPolicy) String() string {
	switch p {
	case DownLocal:
		return "local"
	case DownAllow:
		return "allow"
	case DownRefuse:
		return "refuse"
	}
	return fmt.Sprintf("DownPolicy(%d)", uint8(p))
}

// ParseDownPolicy reads the names String returns.
func ParseDownPolicy(s string) (DownPolicy, error) {
	for p := DownLocal; p <= DownRefuse; p++ {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown policy %q; want local, allow or refuse", s)
}
