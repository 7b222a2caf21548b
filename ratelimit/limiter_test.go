package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// In any window of a sequence with monotonic time, no more than
// burst + limit·window events are allowed.
func TestNeverMoreThanBurstPlusRate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const burst = 7
	l := New(20, burst) // 50 ms per token
	type ev struct {
		at time.Time
		n  int
	}
	var allowed []ev
	now := time.Now()
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Duration(r.Int64N(int64(40 * time.Millisecond))))
		n := 1 + r.IntN(3)
		if l.AllowN("k", now, n) {
			allowed = append(allowed, ev{now, n})
		}
	}
	for i := range allowed {
		sum := 0
		for j := i; j < len(allowed); j++ {
			sum += allowed[j].n
			window := allowed[j].at.Sub(allowed[i].at).Seconds()
			if bound := float64(burst) + 20*window; float64(sum) > bound+1e-9 {
				t.Fatalf("window %d..%d: %d allowed, bound %.3f", i, j, sum, bound)
			}
		}
	}
}

// Arbitrary timestamps, forwards and backwards, never allow more than
// burst + limit·(latest − earliest).
func TestBackwardsTimeUpperBound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	l := New(10, 5)
	t0 := time.Now()
	latest := t0
	total := 0
	for i := 0; i < 20000; i++ {
		at := t0.Add(time.Duration(r.Int64N(int64(10 * time.Second))))
		if at.After(latest) {
			latest = at
		}
		if l.AllowN("k", at, 1) {
			total++
		}
	}
	bound := 5 + 10*latest.Sub(t0).Seconds()
	assert.LessOrEqual(t, float64(total), bound)
}

func TestRefusalWritesNothing(t *testing.T) {
	l := New(1, 3)
	now := time.Now()
	require.True(t, l.AllowN("k", now, 3))
	before := l.peek("k")
	for i := 0; i < 100; i++ {
		require.False(t, l.AllowN("k", now, 1))
		require.False(t, l.AllowN("k", now, 4))
	}
	assert.Equal(t, before, l.peek("k"))
	st := l.Stats()
	assert.Equal(t, uint64(1), st.Allowed)
	assert.Equal(t, uint64(200), st.Refused)
}

func TestTokensDelayReset(t *testing.T) {
	l := New(rate.Every(100*time.Millisecond), 10)
	now := time.Now()
	assert.Equal(t, 10.0, l.Tokens("k", now))
	require.True(t, l.AllowN("k", now, 10))
	assert.Equal(t, 0.0, l.Tokens("k", now))
	assert.InDelta(t, 2.5, l.Tokens("k", now.Add(250*time.Millisecond)), 1e-9)
	assert.Equal(t, 300*time.Millisecond, l.Delay("k", now, 3))
	assert.False(t, l.AllowN("k", now.Add(299*time.Millisecond), 3))
	assert.True(t, l.AllowN("k", now.Add(300*time.Millisecond), 3))
	l.Reset("k")
	assert.Equal(t, 10.0, l.Tokens("k", now))
	assert.Equal(t, time.Duration(0), l.Delay("k", now, 10))
	assert.Equal(t, 0, l.Len())
}

func TestKeysAreIndependentAndBytesMatchStrings(t *testing.T) {
	l := New(1, 2)
	now := time.Now()
	require.True(t, l.AllowN("a", now, 2))
	assert.False(t, l.AllowN("a", now, 1))
	assert.True(t, l.AllowN("b", now, 1))
	assert.False(t, l.AllowBytes([]byte("a"), now, 1), "the same key as bytes is the same bucket")
	assert.True(t, l.AllowBytes([]byte("b"), now, 1))
	assert.Equal(t, 2, l.Len())
}

func TestAllowScaled(t *testing.T) {
	l := New(10, 10)
	now := time.Now()
	assert.True(t, l.AllowScaled("k", now, 20, 2), "burst doubles at ×2")
	assert.False(t, l.AllowScaled("x", now, 6, 0.5), "burst halves at ×0.5")
	assert.True(t, l.AllowScaled("x", now, 5, 0.5))
	assert.False(t, l.AllowScaled("y", now, 1, 0), "×0 refuses")
	assert.False(t, l.AllowScaled("y", now, 1, -1))
}

func TestFanoutCost(t *testing.T) {
	for subs, want := range map[int]int{0: 1, 1: 1, 10: 1, 11: 2, 100: 2, 101: 5, 500: 5, 501: 10, 1000: 10, 1001: 20, 1 << 30: 20} {
		assert.Equal(t, want, FanoutCost(subs), "subscribers %d", subs)
	}
}

func TestMultiAllOrNothing(t *testing.T) {
	user := New(1, 5)
	ip := New(1, 2)
	now := time.Now()
	m := Multi{{Limiter: user, Key: "alice", N: 1}, {Limiter: ip, Key: "10.0.0.1", N: 1}}
	assert.True(t, m.Allow(now))
	assert.True(t, m.Allow(now))
	// The IP bucket is empty: the user bucket must not be charged.
	userBefore := user.Tokens("alice", now)
	assert.False(t, m.Allow(now))
	assert.Equal(t, userBefore, user.Tokens("alice", now))
	assert.Equal(t, 3.0, userBefore)

	// A duplicate key is charged twice, and refused as a whole.
	d := New(1, 3)
	dup := Multi{{Limiter: d, Key: "k", N: 2}, {Limiter: d, Key: "k", N: 2}}
	assert.False(t, dup.Allow(now))
	assert.Equal(t, 3.0, d.Tokens("k", now), "a refused Multi leaves every bucket as it was")
	dup2 := Multi{{Limiter: d, Key: "k", N: 1}, {Limiter: d, Key: "k", N: 1}}
	assert.True(t, dup2.Allow(now))
	assert.Equal(t, 1.0, d.Tokens("k", now))

	// Multipliers and trivial checks.
	inf := New(rate.Inf, 0)
	assert.True(t, Multi{{Limiter: inf, Key: "x", N: 100}, {Limiter: user, Key: "bob", N: 10, Mult: 2}}.Allow(now))
	assert.False(t, Multi{{Limiter: user, Key: "carol", N: 6}}.Allow(now))
	var zero Limiter
	assert.False(t, Multi{{Limiter: &zero, Key: "x", N: 1}}.Allow(now))
	assert.False(t, make(Multi, 17).Allow(now), "more than 16 checks are refused")
}

// Multi equals the AND of single checks on identical copies.
func TestMultiEqualsConjunction(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	mk := func() [3]*Limiter { return [3]*Limiter{New(5, 4), New(2, 3), New(10, 2)} }
	a, b := mk(), mk()
	now := time.Now()
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Duration(r.Int64N(int64(300 * time.Millisecond))))
		ns := [3]int{r.IntN(3), r.IntN(3), r.IntN(3)}
		keys := [3]string{"u", "i", fmt.Sprint(r.IntN(2))}
		var m Multi
		single := true
		for j := range a {
			m = append(m, Check{Limiter: a[j], Key: keys[j], N: ns[j]})
			if b[j].Delay(keys[j], now, ns[j]) != 0 {
				single = false
			}
		}
		got := m.Allow(now)
		require.Equal(t, single, got, "step %d", i)
		if single {
			for j := range b {
				require.True(t, b[j].AllowN(keys[j], now, ns[j]))
			}
		}
	}
}

func TestZeroAllocations(t *testing.T) {
	l := New(1e9, 1<<30)
	ip := New(1e9, 1<<30)
	now := time.Now()
	buf := []byte("client-0123456789-abcdefghijklmnopqrstuvwxyz") // longer than 32 bytes
	l.AllowBytes(buf, now, 1)
	l.AllowN("alice", now, 1)
	ip.AllowN("10.0.0.1", now, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		l.AllowN("alice", now, 1)
		l.AllowBytes(buf, now, 1)
		l.AllowScaled("alice", now, 1, 1.5)
		Multi{{Limiter: l, Key: "alice", N: 1}, {Limiter: ip, Key: "10.0.0.1", N: 1}}.Allow(now)
	})
	assert.Zero(t, allocs)
}

// A flood of unique keys stays within the bound, and a newcomer after it
// still gets its whole burst: a full shard evicts the bucket nearest to
// full of a sample, never hands a newcomer a shared, drained one. (The
// sprayer gets a burst per fresh key, evicted or not: bound it with a
// limit on a key it cannot mint, as the Guard does with usernames.)
func TestUniqueKeyFloodIsBoundedAndNewcomersGetTheirBurst(t *testing.T) {
	const maxKeys = 1600
	l := New(1, 5, WithMaxKeys(maxKeys))
	now := time.Now()
	for i := 0; i < 100*maxKeys; i++ {
		l.AllowN(fmt.Sprintf("spoofed-%d", i), now.Add(time.Duration(i)*time.Microsecond), 5)
		if i%1000 == 0 {
			require.LessOrEqual(t, l.Len(), maxKeys+numShards, "after %d keys", i)
		}
	}
	later := now.Add(200 * time.Millisecond)
	for i := range 10 {
		newcomer := fmt.Sprint("legit-", i)
		assert.True(t, l.AllowN(newcomer, later, 5), "%s gets its whole burst", newcomer)
		assert.False(t, l.AllowN(newcomer, later, 1), "and no more")
	}
	st := l.Stats()
	assert.Zero(t, st.Overflowed, "nobody shared an overflow bucket")
	assert.Positive(t, st.Evicted)
	// Once every bucket has refilled (5 s) and the grace second passed,
	// a sweep gives everything back.
	removed := l.Sweep(now.Add(10 * time.Second))
	assert.Positive(t, removed)
	assert.Equal(t, 0, l.Len())
}

// Buckets that refilled are dropped when a shard needs room, without a
// janitor: memory follows the active keys.
func TestFullBucketsAreDroppedOnDemand(t *testing.T) {
	l := New(100, 1, WithMaxKeys(64*40)) // 40 per shard
	t0 := time.Now()
	for round := 0; round < 50; round++ {
		at := t0.Add(time.Duration(round) * 3 * time.Second)
		for k := 0; k < 500; k++ {
			require.True(t, l.AllowN(fmt.Sprintf("r%d-k%d", round, k), at, 1), "round %d key %d must get its own full bucket", round, k)
		}
		require.LessOrEqual(t, l.Len(), 64*40)
	}
}

// Concurrent AllowN, Multi in opposite orders, Sweep and Reset on shared
// keys: no race, no deadlock, and the shared bucket never gives more than
// burst + rate·elapsed.
func TestConcurrentUse(t *testing.T) {
	const burst = 50
	l := New(1000, burst, WithMaxKeys(256))
	other := New(1000, burst)
	var allowedShared atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := time.Now()
				if l.AllowN("shared", now, 1) {
					allowedShared.Add(1)
				}
				l.AllowN(fmt.Sprintf("g%d-%d", g, i%500), now, 1)
				if g%2 == 0 {
					Multi{{Limiter: l, Key: "a", N: 1}, {Limiter: other, Key: "b", N: 1}}.Allow(now)
				} else {
					Multi{{Limiter: other, Key: "b", N: 1}, {Limiter: l, Key: "a", N: 1}}.Allow(now)
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.Sweep(time.Now())
			l.Reset("g0-1")
			runtime.Gosched()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	bound := burst + 1000*elapsed
	assert.LessOrEqual(t, float64(allowedShared.Load()), bound)
	assert.Positive(t, allowedShared.Load())
}

// A sweep racing with AllowN on the same key never loses the AllowN's
// charge: the total stays within burst + rate·elapsed although the key is
// deleted and re-created over and over.
func TestSweepRaceLosesNoUpdate(t *testing.T) {
	const burst = 3
	l := New(rate.Every(10*time.Millisecond), burst)
	t0 := time.Now()
	var allowed atomic.Int64
	var clock atomic.Int64 // shared logical time in ns
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				at := t0.Add(time.Duration(clock.Add(int64(2 * time.Microsecond))))
				if l.AllowN("k", at, 1) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			// Sweeping with a time well ahead deletes the key whenever it
			// is deletable then; racing charges must survive.
			l.Sweep(t0.Add(time.Duration(clock.Load())))
		}
	}()
	wg.Wait()
	elapsed := time.Duration(clock.Load())
	bound := float64(burst) + elapsed.Seconds()*100
	assert.LessOrEqual(t, float64(allowed.Load()), bound+1)
}

// The heap a million keys cost, measured as a test with a budget well
// under the goal (half of map[string]*rate.Limiter's ~152 B/key).
func TestHeapPerKey(t *testing.T) {
	if testing.Short() || testenv.RaceEnabled {
		t.Skip("allocates a million keys; heap figures mean nothing under -race")
	}
	const n = 1_000_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-%09d", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l := New(1, 10, WithMaxKeys(2*n))
	now := time.Now()
	for _, k := range keys {
		l.AllowN(k, now, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per key: %.1f B", perKey)
	assert.Equal(t, n, l.Len())
	assert.Less(t, perKey, 76.0)
	runtime.KeepAlive(l)
	runtime.KeepAlive(keys)
}

// A scope gives each scope its own bucket for one key: the flooder of a
// topic spends its own share.
func TestMultiScope(t *testing.T) {
	t0 := time.Unix(1000, 0)
	topic := New(1, 2)
	bob := Check{Limiter: topic, Key: "alerts/critical", Scope: "bob", N: 1}
	dash := Check{Limiter: topic, Key: "alerts/critical", Scope: "dashboard", N: 1}
	for range 2 {
		require.True(t, Multi{bob}.Allow(t0))
	}
	assert.False(t, Multi{bob}.Allow(t0), "bob's share is spent")
	assert.True(t, Multi{dash}.Allow(t0), "the dashboard's is not")
	assert.Zero(t, testing.AllocsPerRun(100, func() { Multi{bob, dash}.Allow(t0) }))
}

func TestMultiTrySaysWhichRefused(t *testing.T) {
	t0 := time.Unix(1000, 0)
	perClient := New(10, 5)
	perTopic := New(1, 1)
	m := Multi{{Limiter: perClient, Key: "c", N: 1, Mult: 1}, {Limiter: perTopic, Key: "t", N: 1, Mult: 1}}
	assert.Equal(t, -1, m.Try(t0))
	assert.Equal(t, 1, m.Try(t0), "the topic's bucket is empty")
	assert.InDelta(t, 4, perClient.Tokens("c", t0), 1e-9, "and the client's gave nothing for the refusal")
	assert.Equal(t, 0, Multi{{Limiter: perClient, Key: "c", N: 9, Mult: 1}}.Try(t0))
	assert.Equal(t, 0, make(Multi, 17).Try(t0))
}
