package passwd

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Password verification is the one thing a broker does for a client that
// has proven nothing which costs a core for tens of milliseconds (a $7$
// hash at 210,000 iterations: ~90 ms). A Holder therefore treats it as a
// bounded resource:
//
//   - A pool: at most Concurrency hashes run at once (default GOMAXPROCS),
//     so a CONNECT flood cannot take every core, and the rest of the
//     broker (publishes, keep-alives, legitimate clients' other work)
//     keeps running. Callers beyond it wait in a queue, for as long as
//     their context allows: VerifyContext returns ErrBusy when the
//     context ends before a slot frees, and the broker refuses the client
//     with "server busy" (MQTT 5.0 CONNACK 0x89, 3.1.1 return code 3)
//     instead of answering it seconds late.
//   - A success cache: a correct username and password are remembered for
//     CacheFor (default 5 minutes), so a device that reconnects in a loop
//     costs a hash once, not every time. The key is an HMAC-SHA-256 of
//     the username and password under a random key made at start, never
//     the password; failures are never cached, so only someone who has
//     the password ever hits the cache, and a wrong password — for a user
//     who exists or one who does not — always costs a full hash, the same
//     time either way. Store, Reload, File.Add and File.Delete make every
//     entry stale at once. The cache is bounded (CacheEntries, default
//     10,000; ~100 bytes each).
//
// What the cache trades: an entry is a fast (HMAC) verifier of a
// password, kept in memory for CacheFor. Someone who can read the
// broker's memory could test guesses against it at HMAC speed instead of
// PBKDF2 speed — but could as well read the passwords themselves out of
// the CONNECT packets that arrive. Set CacheFor negative to turn it off.

// ErrBusy is VerifyContext's error when its context ended before a
// verification slot freed: every slot was busy hashing for others. Refuse
// the client with "server busy" (MQTT 5.0 CONNACK 0x89, 3.1.1 return code
// 3); it may try again later.
var ErrBusy = errors.New("passwd: every verification slot stayed busy until the caller's deadline")

// VerifyLimits bound what verification through a Holder may cost. Zero
// fields take the defaults in their comments.
type VerifyLimits struct {
	// Concurrency is how many password hashes may run at once (default
	// GOMAXPROCS at the Holder's first verification).
	Concurrency int
	// CacheFor is how long a successful verification is remembered
	// (default 5 minutes; negative: no cache).
	CacheFor time.Duration
	// CacheEntries bounds the success cache (default 10,000). When it is
	// full, an expired entry, or else an arbitrary one, makes room.
	CacheEntries int
}

// DefaultCacheFor and DefaultCacheEntries are VerifyLimits' defaults.
const (
	DefaultCacheFor     = 5 * time.Minute
	DefaultCacheEntries = 10_000
)

func (l VerifyLimits) withDefaults() VerifyLimits {
	if l.Concurrency <= 0 {
		l.Concurrency = runtime.GOMAXPROCS(0)
	}
	if l.CacheFor == 0 {
		l.CacheFor = DefaultCacheFor
	}
	if l.CacheEntries <= 0 {
		l.CacheEntries = DefaultCacheEntries
	}
	return l
}

// VerifyStats count a Holder's verifications.
type VerifyStats struct {
	// Hashes counts verifications that computed a hash (cache misses,
	// wrong passwords and unknown users); CacheHits those the cache
	// answered; Busy those refused with ErrBusy.
	Hashes, CacheHits, Busy uint64
	// Running and Waiting are the verifications hashing and queued now;
	// CacheEntries the cache's size now.
	Running, Waiting, CacheEntries int
}

// verifier is a Holder's pool and cache, made at its first verification.
type verifier struct {
	lim   VerifyLimits
	slots chan struct{}
	key   [32]byte
	macs  sync.Pool // hash.Hash under key

	mu    sync.Mutex
	cache map[[32]byte]cached

	hashes, hits, busy atomic.Uint64
	waiting            atomic.Int64
}

// cached is a successful verification: of which file, at which version,
// until when.
type cached struct {
	file    *File
	version uint64
	until   int64 // Unix nanoseconds
}

func newVerifier(lim VerifyLimits) *verifier {
	lim = lim.withDefaults()
	v := &verifier{lim: lim, slots: make(chan struct{}, lim.Concurrency), cache: map[[32]byte]cached{}}
	if _, err := rand.Read(v.key[:]); err != nil {
		// No randomness for the key: no cache, rather than a
		// predictable one.
		v.lim.CacheFor = -1
	}
	v.macs.New = func() any { return hmac.New(sha256.New, v.key[:]) }
	return v
}

// cacheKey is HMAC-SHA-256(key, len(username) || username || password):
// the length keeps "ab"+"c" apart from "a"+"bc".
func (v *verifier) cacheKey(username, password string) (k [32]byte) {
	m := v.macs.Get().(hash.Hash)
	m.Reset()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(username)))
	m.Write(n[:])
	m.Write([]byte(username))
	m.Write([]byte(password))
	m.Sum(k[:0])
	v.macs.Put(m)
	return k
}

// hit reports whether k is a success of f, as it is now, still fresh.
func (v *verifier) hit(k [32]byte, f *File, now time.Time) bool {
	v.mu.Lock()
	c, ok := v.cache[k]
	v.mu.Unlock()
	return ok && c.file == f && c.version == f.version.Load() && now.UnixNano() < c.until
}

// remember records a success of f at version (read before the hash, so
// that a change during it leaves the entry stale).
func (v *verifier) remember(k [32]byte, f *File, version uint64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.cache[k]; !ok && len(v.cache) >= v.lim.CacheEntries {
		v.makeRoom(now)
	}
	v.cache[k] = cached{file: f, version: version, until: now.Add(v.lim.CacheFor).UnixNano()}
}

// makeRoom drops expired entries, or one arbitrary entry if none has
// expired; v.mu is held. Scanning is amortised: a full sweep frees every
// expired entry at once, and a cache with none expired loses one entry
// per new one.
func (v *verifier) makeRoom(now time.Time) {
	t := now.UnixNano()
	freed := false
	for k, c := range v.cache {
		if t >= c.until {
			delete(v.cache, k)
			freed = true
		}
	}
	if !freed {
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
}

// forget empties the cache (the file in force changed).
func (v *verifier) forget() {
	v.mu.Lock()
	clear(v.cache)
	v.mu.Unlock()
}

// acquire takes a hashing slot, waiting as long as ctx allows.
func (v *verifier) acquire(ctx context.Context) error {
	select {
	case v.slots <- struct{}{}:
		return nil
	default:
	}
	v.waiting.Add(1)
	defer v.waiting.Add(-1)
	select {
	case v.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		v.busy.Add(1)
		return fmt.Errorf("%w (%d verifications at once, %d waiting): %w", ErrBusy, v.lim.Concurrency, v.waiting.Load()-1, ctx.Err())
	}
}

func (v *verifier) release() { <-v.slots }

func (v *verifier) stats() VerifyStats {
	v.mu.Lock()
	n := len(v.cache)
	v.mu.Unlock()
	return VerifyStats{Hashes: v.hashes.Load(), CacheHits: v.hits.Load(), Busy: v.busy.Load(),
		Running: len(v.slots), Waiting: int(v.waiting.Load()), CacheEntries: n}
}

// verify is VerifyContext on f at now.
func (v *verifier) verify(ctx context.Context, f *File, username, password string, now time.Time) (bool, error) {
	caching := v.lim.CacheFor > 0
	var k [32]byte
	if caching {
		k = v.cacheKey(username, password)
		if v.hit(k, f, now) {
			v.hits.Add(1)
			return true, nil
		}
	}
	if err := v.acquire(ctx); err != nil {
		return false, err
	}
	version := f.version.Load()
	v.hashes.Add(1)
	ok := f.Verify(username, password)
	v.release()
	if ok && caching {
		v.remember(k, f, version, now)
	}
	return ok, nil
}
