package ratelimit

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/gcrastore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests' store is gcrastore.Store: in memory, with a clock the test
// sets, running the same GCRA a shared store runs, so tests can check
// what leasing does to it.
var _ Store = (*gcrastore.Store)(nil)

func shared(t *testing.T, cfg SharedConfig) *Shared {
	t.Helper()
	s, err := NewShared(cfg)
	require.NoError(t, err)
	return s
}

func TestSharedHoldsAcrossBrokers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := gcrastore.New(t0)
	cfg := SharedConfig{Store: st, Limit: 10, Burst: 20, Lease: 2}
	a, b := shared(t, cfg), shared(t, cfg)

	// At one instant, both brokers together get the burst and not one
	// event more; what leasing strands is at most one lease per broker.
	allowed := 0
	for i := 0; i < 100; i++ {
		for _, s := range []*Shared{a, b} {
			if s.AllowN("user-1", t0, 1) {
				allowed++
			}
		}
	}
	assert.LessOrEqual(t, allowed, 20)
	assert.GreaterOrEqual(t, allowed, 20-2*2)
	assert.Less(t, st.Calls(), 20, "leases keep most events off the store, and refusals too")

	// Over ten seconds at 10/s the pair admits about 100 more.
	total := 0
	for ms := 1; ms <= 10_000; ms += 10 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		st.SetNow(now)
		for _, s := range []*Shared{a, b} {
			if s.AllowN("user-1", now, 1) {
				total++
			}
		}
	}
	assert.InDelta(t, 100, total, 5)
	// Another key is another bucket.
	assert.True(t, a.AllowN("user-2", t0.Add(10*time.Second), 20))
	assert.False(t, a.AllowN("user-3", t0, 21), "more than the burst is never allowed")
}

func TestSharedWithoutLeaseIsExact(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := gcrastore.New(t0)
	cfg := SharedConfig{Store: st, Limit: 1, Burst: 5, Lease: -1}
	a, b := shared(t, cfg), shared(t, cfg)
	got := 0
	for i := 0; i < 10; i++ {
		if a.AllowN("k", t0, 1) {
			got++
		}
		if b.AllowN("k", t0, 1) {
			got++
		}
	}
	assert.Equal(t, 5, got)
	// One call per granted event, and one refusal per broker: the store
	// said how long until the next token, so neither asks again sooner.
	assert.Equal(t, 7, st.Calls())
	assert.False(t, a.AllowN("k", t0.Add(999*time.Millisecond), 1))
	assert.Equal(t, 7, st.Calls())
	st.SetNow(t0.Add(time.Second))
	assert.True(t, a.AllowN("k", t0.Add(time.Second), 1))
	assert.False(t, b.AllowN("k", t0.Add(time.Second), 1))
	assert.Equal(t, 9, st.Calls())
}

func TestSharedScaledAndRefund(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := gcrastore.New(t0)
	s := shared(t, SharedConfig{Store: st, Limit: 1, Burst: 4, Lease: -1})
	// A multiplier of 2 doubles the burst: 8 events.
	n := 0
	for s.AllowScaled("k", t0, 1, 2) {
		n++
	}
	assert.Equal(t, 8, n)
	assert.False(t, s.AllowScaled("k", t0, 1, 0.5))
	assert.False(t, s.AllowScaled("x", t0, 1, -1), "a multiplier of nothing refuses")

	l := shared(t, SharedConfig{Store: gcrastore.New(t0), Limit: 1, Burst: 4, Lease: 3})
	require.True(t, l.AllowN("k", t0, 1)) // takes 1 + a lease of 3
	l.Refund("k", 1, 1)
	for i := 0; i < 4; i++ {
		assert.True(t, l.AllowN("k", t0, 1), "event %d: the refunded token is spent again", i)
	}
	assert.False(t, l.AllowN("k", t0, 1))
}

func TestSharedStoreDown(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		policy DownPolicy
		want   int // allowed of 10 at one instant with burst 3
	}{{DownLocal, 3}, {DownAllow, 10}, {DownRefuse, 0}} {
		t.Run(c.policy.String(), func(t *testing.T) {
			st := gcrastore.New(t0)
			st.Fail(errors.New("connection refused"))
			s := shared(t, SharedConfig{Store: st, Limit: 1, Burst: 3, WhenDown: c.policy, RetryAfter: time.Second})
			got := 0
			for i := 0; i < 10; i++ {
				if s.AllowN("k", t0, 1) {
					got++
				}
			}
			assert.Equal(t, c.want, got)
			assert.False(t, s.Healthy())
			assert.Equal(t, 1, st.Calls(), "a down store is not asked again before the backoff ends")
			assert.Equal(t, uint64(10), s.Stats().DownDecisions)

			// Back after the backoff: the store decides again.
			st.Fail(nil)
			later := t0.Add(1100 * time.Millisecond)
			assert.True(t, s.AllowN("k2", later, 1))
			assert.True(t, s.Healthy())
			assert.Equal(t, 2, st.Calls())
		})
	}
}

func TestSharedBackoffDoubles(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := gcrastore.New(t0)
	st.Fail(errors.New("down"))
	s := shared(t, SharedConfig{Store: st, Limit: 1, Burst: 1, RetryAfter: 100 * time.Millisecond, MaxRetryAfter: 300 * time.Millisecond})
	at := t0
	var calls []int
	for i := 0; i < 40; i++ {
		s.AllowN("k", at, 1)
		calls = append(calls, st.Calls())
		at = at.Add(25 * time.Millisecond)
	}
	// Calls at 0, 100 ms, 300 ms (+200), 600 ms (+300, the cap), 900 ms.
	assert.Equal(t, 5, st.Calls(), "%v", calls)
}

func TestSharedSlowStoreTimesOut(t *testing.T) {
	st := gcrastore.New(time.Now())
	st.Block(true)
	s := shared(t, SharedConfig{Store: st, Limit: 1, Burst: 1, Timeout: 20 * time.Millisecond, WhenDown: DownAllow})
	now := time.Now()
	assert.True(t, s.AllowN("k", now, 1), "a timed-out store call decides by the policy")
	assert.False(t, s.Healthy())
	// While down, no call waits on the store at all.
	assert.True(t, s.AllowN("k", now.Add(time.Millisecond), 1))
	assert.Equal(t, 1, st.Calls())
}

func TestSharedConfigErrors(t *testing.T) {
	st := gcrastore.New(time.Now())
	for _, cfg := range []SharedConfig{
		{Limit: 1, Burst: 1},
		{Store: st, Limit: 0, Burst: 1},
		{Store: st, Limit: 1, Burst: 0},
		{Store: st, Limit: 1, Burst: 1, WhenDown: 7},
		{Store: st, Limit: 1, Burst: 1, Timeout: -1},
	} {
		_, err := NewShared(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	p, err := ParseDownPolicy("refuse")
	require.NoError(t, err)
	assert.Equal(t, DownRefuse, p)
	_, err = ParseDownPolicy("open")
	assert.ErrorContains(t, err, "want local, allow or refuse")
}

func TestSharedSweepAndMaxKeys(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := gcrastore.New(t0)
	s := shared(t, SharedConfig{Store: st, Limit: 100, Burst: 100, MaxKeys: 2})
	for _, k := range []string{"a", "b", "c", "d"} {
		assert.True(t, s.AllowN(k, t0, 1))
	}
	assert.Equal(t, 2, s.Stats().Leases, "keys beyond MaxKeys are decided by the store")
	assert.Equal(t, 0, s.Sweep(t0))
	assert.Equal(t, 2, s.Sweep(t0.Add(2*time.Second)))
	assert.Equal(t, 0, s.Stats().Leases)
}

func TestSharedConcurrent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := gcrastore.New(t0)
	cfg := SharedConfig{Store: st, Limit: 1, Burst: 1000, Lease: 7}
	a, b := shared(t, cfg), shared(t, cfg)
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < 500; i++ {
				if s.AllowN("k", t0, 1) {
					n++
				}
			}
			mu.Lock()
			got += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, got, 1000)
	assert.GreaterOrEqual(t, got, 1000-2*7)
}

// NoWait: the caller never waits on the store, even one that hangs; the
// event is decided by WhenDown and the lease fills in the background.
func TestSharedNoWaitNeverWaits(t *testing.T) {
	st := gcrastore.New(time.Now())
	st.Block(true)
	s := shared(t, SharedConfig{Store: st, Limit: 10, Burst: 20, Timeout: time.Hour, WhenDown: DownRefuse, NoWait: true})
	done := make(chan bool)
	go func() { done <- s.AllowN("k", time.Now(), 1) }()
	select {
	case allowed := <-done:
		assert.False(t, allowed, "decided by WhenDown (refuse) while the lease is filled")
	case <-time.After(5 * time.Second):
		t.Fatal("AllowN waited on a hanging store")
	}
	s.Close() // ends the refill the hanging store holds
	assert.False(t, s.AllowN("k", time.Now(), 1))
	assert.Equal(t, 1, st.Calls(), "no refill after Close")
}

func TestSharedNoWaitRefillsInBackground(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := gcrastore.New(t0)
	cfg := SharedConfig{Store: st, Limit: 10, Burst: 20, Lease: 5, WhenDown: DownRefuse, NoWait: true}
	s := shared(t, cfg)
	assert.False(t, s.AllowN("k", t0, 1), "no lease yet: WhenDown decides")
	s.Wait()
	allowed := 0
	for range 10 {
		if s.AllowN("k", t0, 1) {
			allowed++
		}
	}
	assert.Equal(t, 6, allowed, "the refill took one event's worth and a lease of 5")
	s.Wait()
	assert.Equal(t, 2, st.Calls(), "one refill per spent lease, not one per event")

	// Two brokers at one instant never get more than the burst from the
	// store (with DownRefuse, nothing else admits).
	a, b := shared(t, cfg), shared(t, cfg)
	total := 0
	for range 50 {
		for _, x := range []*Shared{a, b} {
			if x.AllowN("user-1", t0, 1) {
				total++
			}
			x.Wait()
		}
	}
	assert.LessOrEqual(t, total, 20)
	assert.GreaterOrEqual(t, total, 20-2*5)
}
