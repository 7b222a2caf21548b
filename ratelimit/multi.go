package ratelimit

import (
	"hash/maphash"
	"time"
)

// Check is one bucket of a Multi: Limiter's bucket for Key, charged N
// events at multiplier Mult (0 means 1; see AllowScaled).
type Check struct {
	Limiter *Limiter
	Key     string
	N       int
	Mult    float64
	// Scope, if set, gives each scope its own bucket for Key: a topic's
	// limit scoped by publisher charges the one who floods the topic, not
	// everyone who publishes there. The pair is hashed as it is, with no
	// allocation.
	Scope string
}

// hash is the bucket's key hash.
func (c *Check) hash(seed maphash.Seed) uint64 {
	if c.Scope == "" {
		return keyHash(maphash.String(seed, c.Key))
	}
	return keyHash(maphash.Comparable(seed, [2]string{c.Scope, c.Key}))
}

// Multi is several buckets checked as one, such as a client's, its
// user's, its IP's and the topic's for one PUBLISH. Allow charges all of
// them or none: when a later bucket refuses, no token is taken from the
// earlier ones. A key that appears twice is charged twice.
//
// A Multi literal built at the call site does not escape, so
//
//	ratelimit.Multi{{Limiter: perClient, Key: id, N: 1, Mult: m}, {Limiter: perIP, Key: ip, N: 1}}.Allow(now)
//
// costs no allocation.
type Multi []Check

// multiMax is how many checks a Multi keeps on the stack.
const multiMax = 16

// pending is one bucket between the two passes of Multi.Allow.
type pending struct {
	e   *entry
	h   uint64
	inc int64
	now int64
	s   *shard
}

// Allow decides every check at time t and charges them all, or none.
// More than 16 checks are refused outright.
func (m Multi) Allow(t time.Time) bool { return m.Try(t) < 0 }

// Try is Allow that says which check refused: -1 when all were charged,
// else the index of the first check that refused (0 for more than 16
// checks), so that a broker can tell a client's limit from its topic's.
func (m Multi) Try(t time.Time) int {
	if len(m) > multiMax {
		return 0
	}
	var st [multiMax]pending
	// Pass 1: look every bucket up and refuse, writing nothing, if one
	// would refuse on its own.
	for i, c := range m {
		l := c.Limiter
		if c.N <= 0 || l.inf {
			continue
		}
		if l.burst == 0 {
			return i
		}
		mult := c.Mult
		if mult == 0 {
			mult = 1
		}
		h := c.hash(l.seed)
		s := l.shardFor(h)
		inc, ok := l.cost(c.N, mult)
		if !ok {
			s.refused.Add(1)
			return i
		}
		if inc == 0 {
			continue
		}
		now := l.now(t)
		e := s.lookup(h, now, l)
		if tat := e.tat.Load(); tat != dead && max(tat, now)+inc-l.tau > now {
			e.refused.Add(1)
			return i
		}
		st[i].e, st[i].h, st[i].inc, st[i].now, st[i].s = e, h, inc, now, s
	}
	// Pass 2: charge in order; if a bucket now refuses (another caller
	// got there first, or the same key twice), give back what was taken.
	for i, c := range m {
		x := &st[i]
		if x.e == nil {
			continue
		}
		if !x.charge(c.Limiter) {
			for j := 0; j < i; j++ {
				if y := &st[j]; y.e != nil {
					y.e.tat.Add(-y.inc)
					y.e.allowed.Add(^uint64(0))
				}
			}
			x.e.refused.Add(1)
			return i
		}
		x.e.allowed.Add(1)
	}
	return -1
}

// charge takes inc from the bucket if it allows it now.
func (x *pending) charge(l *Limiter) bool {
	for {
		old := x.e.tat.Load()
		if old == dead {
			// Swept between the passes (it was full): charge the key's
			// new bucket instead.
			x.e = x.s.lookup(x.h, x.now, l)
			continue
		}
		next := max(old, x.now) + x.inc
		if next-l.tau > x.now {
			return false
		}
		if x.e.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}
