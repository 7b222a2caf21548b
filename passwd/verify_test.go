package passwd

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cheapFile has users u0…u(n-1) with passwords p0…, hashed at few
// iterations so tests can verify often.
func cheapFile(t testing.TB, n, iterations int) *File {
	t.Helper()
	f := New()
	f.Iterations = iterations
	for i := range n {
		require.NoError(t, f.Add(fmt.Sprintf("u%d", i), fmt.Sprintf("p%d", i)))
	}
	return f
}

// clock is a settable time for the cache.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func holderAt(f *File, lim VerifyLimits) (*Holder, *clock) {
	h := NewHolderWithLimits(f, lim)
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	h.now = c.now
	return h, c
}

func verify(t *testing.T, h *Holder, user, pass string) bool {
	t.Helper()
	ok, err := h.VerifyContext(context.Background(), user, pass)
	require.NoError(t, err)
	return ok
}

// A success is remembered: the same username and password again cost no
// hash until CacheFor has passed.
func TestCacheHitSkipsTheHash(t *testing.T) {
	h, clk := holderAt(cheapFile(t, 2, 1000), VerifyLimits{CacheFor: time.Minute})
	before := digests.Load()
	assert.True(t, verify(t, h, "u0", "p0"))
	assert.Equal(t, uint64(1), digests.Load()-before, "the first costs a hash")
	for range 10 {
		assert.True(t, verify(t, h, "u0", "p0"))
	}
	assert.Equal(t, uint64(1), digests.Load()-before, "the next ten none")
	st := h.VerifyStats()
	assert.Equal(t, uint64(10), st.CacheHits)
	assert.Equal(t, uint64(1), st.Hashes)
	assert.Equal(t, 1, st.CacheEntries)

	clk.t = clk.t.Add(time.Minute)
	assert.True(t, verify(t, h, "u0", "p0"))
	assert.Equal(t, uint64(2), digests.Load()-before, "expired: hashed again")
}

// Failures are never cached: a wrong password and an unknown user cost a
// hash every time, the same work, and a right password after them is a
// miss too.
func TestFailuresAreNeverCached(t *testing.T) {
	h, _ := holderAt(cheapFile(t, 1, 1000), VerifyLimits{})
	before := digests.Load()
	for range 5 {
		assert.False(t, verify(t, h, "u0", "wrong"))
		assert.False(t, verify(t, h, "nobody", "p0"))
	}
	assert.Equal(t, uint64(10), digests.Load()-before)
	assert.Zero(t, h.VerifyStats().CacheEntries)
	assert.Zero(t, h.VerifyStats().CacheHits)
	// A cached success answers only its own password.
	assert.True(t, verify(t, h, "u0", "p0"))
	assert.False(t, verify(t, h, "u0", "p0 "))
	assert.Equal(t, uint64(12), digests.Load()-before)
}

// Reload, Store, Add and Delete make every cached success stale: a
// changed password stops working at once.
func TestCacheInvalidation(t *testing.T) {
	f := cheapFile(t, 2, 1000)
	h, _ := holderAt(f, VerifyLimits{})
	assert.True(t, verify(t, h, "u0", "p0"))
	assert.True(t, verify(t, h, "u1", "p1"))

	// The operator changes u0's password in place.
	require.NoError(t, f.Add("u0", "new"))
	assert.False(t, verify(t, h, "u0", "p0"), "the old password is not remembered")
	assert.True(t, verify(t, h, "u0", "new"))
	f.Delete("u1")
	assert.False(t, verify(t, h, "u1", "p1"))

	// A reload (Store) of another file: nothing of the old one counts.
	g := cheapFile(t, 1, 1000)
	require.NoError(t, g.Add("u0", "newer"))
	h.Store(g)
	assert.Zero(t, h.VerifyStats().CacheEntries, "emptied")
	assert.False(t, verify(t, h, "u0", "new"))
	assert.True(t, verify(t, h, "u0", "newer"))

	// A verification that started on the old file and ends after the
	// swap remembers nothing that counts for the new one.
	h.verifier().remember(h.verifier().cacheKey("u0", "new"), f, f.version.Load(), h.now())
	before := digests.Load()
	assert.False(t, verify(t, h, "u0", "new"))
	assert.Equal(t, uint64(1), digests.Load()-before, "a stale entry is a miss")
}

func TestCacheIsBounded(t *testing.T) {
	h, clk := holderAt(cheapFile(t, 20, 100), VerifyLimits{CacheEntries: 5, CacheFor: time.Minute})
	for i := range 20 {
		assert.True(t, verify(t, h, fmt.Sprintf("u%d", i), fmt.Sprintf("p%d", i)))
		assert.LessOrEqual(t, h.VerifyStats().CacheEntries, 5)
		clk.t = clk.t.Add(10 * time.Second)
	}
	assert.Equal(t, 5, h.VerifyStats().CacheEntries)
}

func TestCacheKeySeparatesUsernameFromPassword(t *testing.T) {
	v := newVerifier(VerifyLimits{})
	assert.NotEqual(t, v.cacheKey("ab", "c"), v.cacheKey("a", "bc"))
	assert.Equal(t, v.cacheKey("a", "bc"), v.cacheKey("a", "bc"))
	assert.NotEqual(t, newVerifier(VerifyLimits{}).cacheKey("a", "bc"), v.cacheKey("a", "bc"), "a key per process (per Holder)")
}

// 50 callers at once, 1 slot: never more than one hash runs, and every
// caller gets its answer. (Without the pool, the scheduler preempting
// hashes would have several inside one at once, even on one core.)
func TestPoolBoundsConcurrentHashes(t *testing.T) {
	const callers, slots = 50, 1
	h, _ := holderAt(cheapFile(t, callers, 20_000), VerifyLimits{Concurrency: slots, CacheFor: -1})
	peakHashing.Store(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := 0
	var peakWaiting int
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := h.VerifyContext(context.Background(), fmt.Sprintf("u%d", i), fmt.Sprintf("p%d", i))
			mu.Lock()
			defer mu.Unlock()
			if !ok || err != nil {
				wrong++
			}
			peakWaiting = max(peakWaiting, h.VerifyStats().Waiting)
		}()
	}
	wg.Wait()
	assert.Zero(t, wrong)
	assert.Equal(t, int64(slots), peakHashing.Load(), "%d hash at once", slots)
	assert.Greater(t, peakWaiting, 0, "callers queued")
	st := h.VerifyStats()
	assert.Equal(t, uint64(callers), st.Hashes)
	assert.Zero(t, st.Running)
	assert.Zero(t, st.Waiting)
}

// With every slot held, a caller whose deadline passes gets ErrBusy
// without hashing; a cached success is still answered.
func TestBusyAfterTheDeadline(t *testing.T) {
	h, _ := holderAt(cheapFile(t, 2, 1000), VerifyLimits{Concurrency: 1})
	assert.True(t, verify(t, h, "u0", "p0")) // cached
	v := h.verifier()
	v.slots <- struct{}{} // a verification that does not end
	before := digests.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ok, err := h.VerifyContext(ctx, "u1", "p1")
	assert.False(t, ok)
	require.ErrorIs(t, err, ErrBusy)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "1 verifications at once")
	assert.Equal(t, uint64(0), digests.Load()-before, "no hash")
	assert.Equal(t, uint64(1), h.VerifyStats().Busy)

	ok, err = h.VerifyContext(ctx, "u0", "p0")
	assert.True(t, ok, "a cached success needs no slot")
	assert.NoError(t, err)

	<-v.slots
	assert.True(t, verify(t, h, "u1", "p1"), "a slot freed: verified")
}

func TestHolderWithoutAFile(t *testing.T) {
	var h Holder
	ok, err := h.VerifyContext(context.Background(), "u0", "p0")
	assert.False(t, ok)
	assert.NoError(t, err)
	assert.False(t, h.Verify("u0", "p0"))
}

// BenchmarkHolderVerify is a reconnecting device's verification: a
// cache hit against a $7$ hash of mosquitto 2.1's 210,000 iterations.
func BenchmarkHolderVerify(b *testing.B) {
	f := cheapFile(b, 1, DefaultIterations)
	b.Run("cached", func(b *testing.B) {
		h := NewHolder(f)
		h.Verify("u0", "p0")
		for b.Loop() {
			if !h.Verify("u0", "p0") {
				b.Fatal("refused")
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		h := NewHolderWithLimits(f, VerifyLimits{CacheFor: -1})
		for b.Loop() {
			if !h.Verify("u0", "p0") {
				b.Fatal("refused")
			}
		}
	})
}
