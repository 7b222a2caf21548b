package ratelimit

import (
	"math"
	"sync"
	"sync/atomic"
)

// The key table: shards of open-addressing hash tables. A table keeps
// the keys' hashes in one array and pointers to their entries in a
// parallel one, so probing reads only hashes, which are written once, and
// never the cache lines of other keys' buckets, which other cores are
// busy updating. Lookups are lock-free and write nothing shared; inserts,
// deletions and growth take the shard's mutex. An entry holds a key's
// hash (to confirm a match) and its bucket state (the theoretical
// arrival time, TAT).
//
// Deleting an entry first swaps its TAT to dead with a compare-and-swap
// from the value that made it deletable. An AllowN racing with the
// deletion either wins its own CAS first (and the deletion fails) or sees
// dead and retries through the locked path: no update is lost. Entries
// are never reused for another key, and a lookup confirms the entry's own
// hash, so a slot reused meanwhile cannot hand it another key's bucket.

const (
	shardBits = 6
	numShards = 1 << shardBits

	// dead marks a deleted entry; no real TAT reaches it (see maxHorizon).
	dead = math.MaxInt64
	// fresh is the TAT of a bucket that is full: any value below now.
	fresh = -1 << 62

	// Slot hashes 0 and 1 mean empty and deleted; keyHash moves real
	// hashes out of the way.
	emptyHash = 0
	tombHash  = 1
)

func keyHash(h uint64) uint64 {
	if h < 2 {
		h += 2
	}
	return h
}

type entry struct {
	hash uint64
	tat  atomic.Int64
	// The key's counters live beside its state: an allowed event already
	// writes this cache line, so counting costs no line shared between
	// keys, and a Limiter scales across cores.
	allowed, refused atomic.Uint64
}

type table struct {
	hashes  []atomic.Uint64
	entries []atomic.Pointer[entry]
	mask    uint64
}

func newTable(size int) *table {
	return &table{hashes: make([]atomic.Uint64, size), entries: make([]atomic.Pointer[entry], size), mask: uint64(size - 1)}
}

// find probes for hash without locking.
func (t *table) find(hash uint64) *entry {
	for i := hash & t.mask; ; i = (i + 1) & t.mask {
		switch t.hashes[i].Load() {
		case emptyHash:
			return nil
		case hash:
			if e := t.entries[i].Load(); e != nil && e.hash == hash && e.tat.Load() != dead {
				return e
			}
		}
	}
}

// store puts e into slot i: the entry first, then the hash that makes it
// visible to lock-free probes.
func (t *table) store(i uint64, e *entry) {
	t.entries[i].Store(e)
	t.hashes[i].Store(e.hash)
}

// bury turns slot i into a tombstone.
func (t *table) bury(i uint64) {
	t.hashes[i].Store(tombHash)
	t.entries[i].Store(nil)
}

type shard struct {
	// tab is read by every lookup; keep it off the lines the counters
	// below write on every call.
	tab atomic.Pointer[table]
	_   [56]byte

	mu        sync.Mutex
	live      int   // entries in tab (under mu)
	tombs     int   // tombstones in tab (under mu)
	maxLive   int   // cap on live entries
	nextSweep int64 // earliest time for another sweep when full (under mu)
	overflow  entry // shared bucket for new keys when full
	liveCount atomic.Int64

	// Counters of entries already dropped, and of the overflow and
	// cost-refusal paths (under mu or atomic).
	allowed, refused, overflowed, evicted atomic.Uint64
	_                                     [64]byte // keep shards on separate cache lines
}

// lookup returns the entry for hash, inserting a fresh one when absent.
// now decides which entries may be evicted to make room.
func (s *shard) lookup(hash uint64, now int64, l *Limiter) *entry {
	if t := s.tab.Load(); t != nil {
		if e := t.find(hash); e != nil {
			return e
		}
	}
	return s.insert(hash, now, l)
}

func (s *shard) insert(hash uint64, now int64, l *Limiter) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	if t == nil {
		t = newTable(8)
		s.tab.Store(t)
	} else if e := t.find(hash); e != nil {
		return e // inserted by a racing goroutine
	}
	if s.live >= s.maxLive {
		// Full: drop buckets that have refilled, at most once per sweep
		// interval so a flood of new keys cannot make every insert scan.
		if now >= s.nextSweep {
			s.sweepLocked(now, l)
			s.nextSweep = now + l.sweepInterval
		}
		if s.live >= s.maxLive && !s.evictLocked(hash, t) {
			s.overflowed.Add(1)
			return &s.overflow
		}
	}
	if (s.live+s.tombs+1)*4 > len(t.hashes)*3 {
		// Make room: first drop full buckets, then grow (or just rebuild
		// to clear tombstones).
		s.sweepLocked(now, l)
		size := len(t.hashes)
		for s.live*2 >= size {
			size *= 2
		}
		t = s.rebuild(t, size)
	}
	e := &entry{hash: hash}
	e.tat.Store(fresh)
	for i := hash & t.mask; ; i = (i + 1) & t.mask {
		if h := t.hashes[i].Load(); h == emptyHash || h == tombHash {
			if h == tombHash {
				s.tombs--
			}
			t.store(i, e)
			break
		}
	}
	s.live++
	s.liveCount.Store(int64(s.live))
	return e
}

// rebuild copies live entries into a new table of the given size. Readers
// still probing the old table find the same entry objects there.
func (s *shard) rebuild(old *table, size int) *table {
	t := newTable(size)
	for i := range old.entries {
		e := old.entries[i].Load()
		if e == nil || old.hashes[i].Load() == tombHash || e.tat.Load() == dead {
			continue
		}
		for j := e.hash & t.mask; ; j = (j + 1) & t.mask {
			if t.hashes[j].Load() == emptyHash {
				t.store(j, e)
				break
			}
		}
	}
	s.tab.Store(t)
	s.tombs = 0
	return t
}

// sweepLocked removes entries whose bucket is full at now (with a grace
// period, so slightly out-of-order timestamps from other goroutines
// cannot turn a deletion into free tokens).
func (s *shard) sweepLocked(now int64, l *Limiter) int {
	t := s.tab.Load()
	if t == nil {
		return 0
	}
	removed := 0
	for i := range t.entries {
		e := t.entries[i].Load()
		if e == nil || t.hashes[i].Load() == tombHash {
			continue
		}
		tat := e.tat.Load()
		if !l.deletable(tat, now) || !e.tat.CompareAndSwap(tat, dead) {
			continue
		}
		t.bury(uint64(i))
		s.retire(e)
		removed++
	}
	s.liveCount.Store(int64(s.live))
	s.evicted.Add(uint64(removed))
	return removed
}

// evictLocked makes room in a full shard (under mu): of a sample of its
// entries, the one deepest out of debt goes (the lowest theoretical
// arrival time: the nearest to full). A newcomer always gets a bucket of
// its own, full; a key that sprays fresh keys evicts those fresh keys,
// which are barely in debt, before it evicts its own throttled one, and
// evicting a throttled key gives it back no more than a fresh key would
// have. It reports whether it evicted one.
func (s *shard) evictLocked(near uint64, t *table) bool {
	const sample = 32
	var victim *entry
	var at uint64
	var best int64
	seen := 0
	for i, n := near&t.mask, 0; n < len(t.hashes) && seen < sample; i, n = (i+1)&t.mask, n+1 {
		if h := t.hashes[i].Load(); h == emptyHash || h == tombHash {
			continue
		}
		e := t.entries[i].Load()
		if e == nil {
			continue
		}
		seen++
		if tat := e.tat.Load(); tat != dead && (victim == nil || tat < best) {
			victim, at, best = e, i, tat
		}
	}
	if victim == nil || !victim.tat.CompareAndSwap(best, dead) {
		return false
	}
	t.bury(at)
	s.retire(victim)
	s.evicted.Add(1)
	s.liveCount.Store(int64(s.live))
	return true
}

// remove deletes hash's entry whatever its state.
func (s *shard) remove(hash uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab.Load()
	if t == nil {
		return
	}
	for i := hash & t.mask; ; i = (i + 1) & t.mask {
		switch t.hashes[i].Load() {
		case emptyHash:
			return
		case hash:
			if e := t.entries[i].Load(); e != nil && e.hash == hash {
				e.tat.Store(dead)
				t.bury(i)
				s.retire(e)
				s.liveCount.Store(int64(s.live))
				return
			}
		}
	}
}

// retire accounts for an entry just replaced by a tombstone (under mu).
// Its counters move to the shard. An in-flight call increments them right
// after its own compare-and-swap, which leaves the bucket undeletable for
// the sweep grace period, so no count is lost unless a goroutine stalls
// for that long between the two.
func (s *shard) retire(e *entry) {
	s.live--
	s.tombs++
	s.allowed.Add(e.allowed.Load())
	s.refused.Add(e.refused.Load())
}

// counts sums the counters of the shard's live entries and its own.
func (s *shard) counts() (allowed, refused uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	allowed, refused = s.allowed.Load()+s.overflow.allowed.Load(), s.refused.Load()+s.overflow.refused.Load()
	if t := s.tab.Load(); t != nil {
		for i := range t.entries {
			if e := t.entries[i].Load(); e != nil {
				allowed += e.allowed.Load()
				refused += e.refused.Load()
			}
		}
	}
	return allowed, refused
}
