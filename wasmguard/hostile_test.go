package wasmguard

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var hostileCases = []struct {
	module  string
	payload []byte
	kind    error
}{
	{"spin", nil, ErrFuel},
	{"fanout", nil, ErrFuel},
	{"recurse", nil, ErrCallDepth},
	{"growbomb", nil, ErrMemoryLimit},
	{"fillbomb", nil, ErrFuel},
	{"trap", nil, ErrTrap},
	{"logoob", nil, ErrTrap},
	{"badbuffer", nil, ErrBadBuffer},
	{"garbage", nil, ErrBadVerdict},
	{"logflood", nil, ErrFuel},         // 64 KiB log calls in a loop: each weighs a host call
	{"randflood", nil, ErrFuel},        // 64 KiB random_get calls: a budget of randomness per call
	{"writeflood", nil, ErrFuel},       // 64 KiB stdout writes: the host keeps 2.5 KiB of them
	{"echo", le(0xF00D), ErrFuel},      // spins
	{"echo", le(0xB0B0), ErrCallDepth}, // recurses
}

// BenchmarkHostileCall is how long a call to each hostile guest takes
// until fuel, the call depth or a limit stops it (ns/op), and the
// longest a garbage collection took meanwhile (gc-max-ns).
func BenchmarkHostileCall(b *testing.B) {
	for _, tc := range hostileCases {
		b.Run(tc.module, func(b *testing.B) {
			p := load(b, tc.module, Limits{MaxInstances: 2}, WithBreaker(1<<30, time.Hour), WithBreakerBudget(-1))
			w := watchGC()
			for b.Loop() {
				publish(p, tc.payload)
			}
			longest, _ := w.finish()
			b.ReportMetric(float64(longest.Nanoseconds()), "gc-max-ns")
		})
	}
}

// gcWatch allocates and collects garbage in a loop while hostile calls
// run, and reports the longest a runtime.GC took and how many finished.
// A guest that cannot be stopped would hold the collector off (it waits
// for every goroutine to reach a safe point, and compiled Wasm has none).
type gcWatch struct {
	stop    chan struct{}
	done    chan struct{}
	longest time.Duration
	cycles  int
	allocs  atomic.Int64
}

func watchGC() *gcWatch {
	w := &gcWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var keep [][]byte
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			for range 64 {
				keep = append(keep, make([]byte, 4096))
				w.allocs.Add(1)
			}
			if len(keep) > 4096 {
				keep = nil
			}
			t0 := time.Now()
			runtime.GC()
			w.longest = max(w.longest, time.Since(t0))
			w.cycles++
		}
	}()
	return w
}

func (w *gcWatch) finish() (time.Duration, int) {
	close(w.stop)
	<-w.done
	return w.longest, w.cycles
}

// The hostile suite: each guest misbehaves on every call. For each, the
// host keeps running, every call returns within the bound with the
// failure policy's verdict and the right kind of error, the garbage
// collector keeps running, and the pool is back to full strength after.
//
// Fuel stops these guests in 1–60 ms on a quiet 2-core machine (see
// BenchmarkHostileCall); without it they run for hours (fanout: 2^40
// calls) and stall the collector. The bound here only tells "stopped"
// from "runs for hours": it leaves a loaded CI machine under -race two
// orders of magnitude of headroom, and the speed claim lives in the
// benchmark.
func TestHostileGuests(t *testing.T) {
	const bound = time.Minute
	for _, tc := range hostileCases {
		t.Run(tc.module, func(t *testing.T) {
			const instances, calls = 2, 6
			p := load(t, tc.module, Limits{MaxInstances: instances}, WithBreaker(1000, time.Hour), WithBreakerBudget(-1))
			w := watchGC()
			var slowest time.Duration
			for range calls {
				t0 := time.Now()
				v, err := publish(p, tc.payload)
				took := time.Since(t0)
				slowest = max(slowest, took)
				assert.Less(t, took, bound)
				assert.ErrorIs(t, err, tc.kind)
				assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v)
			}
			longest, cycles := w.finish()
			t.Logf("slowest call %v, longest GC %v over %d cycles", slowest, longest, cycles)
			assert.Less(t, longest, bound, "a garbage collection waited on the guest")
			assert.NotZero(t, cycles)
			assert.NotZero(t, w.allocs.Load())

			st := p.Stats()
			assert.Equal(t, uint64(calls), st.Failures)
			// garbage verdicts leave the instance usable, but it is
			// replaced all the same: any failure closes the instance.
			assert.Equal(t, uint64(calls), st.InstancesReplaced)
			assert.Eventually(t, func() bool {
				st := p.Stats()
				return len(st.Instances) == instances && len(p.pool) == instances && st.InstancesCreated == instances+calls
			}, 10*time.Second, time.Millisecond, "the pool recovers")
			if tc.module == "growbomb" {
				assert.Equal(t, uint64(16<<20), st.PeakMemoryBytes, "memory stops at the limit")
				assert.NotZero(t, st.MemoryLimitHits)
			}
		})
	}
}

// A plugin that fails sometimes keeps answering correctly the rest of the
// time, even with every instance replaced along the way.
func TestPoolRecoversBetweenGoodCalls(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 2}, WithBreaker(1000, time.Hour), WithBreakerBudget(-1))
	for i := range 30 {
		answer := uint32(0x9701)
		if i%3 == 0 {
			answer = 0xDEAD
		}
		v, err := publish(p, le(answer))
		if answer == 0xDEAD {
			assert.ErrorIs(t, err, ErrTrap)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, Verdict{Action: Deny, Reason: 0x97}, v)
	}
	assert.Equal(t, uint64(10), p.Stats().Traps)
}

// 100 goroutines share 10 instances; run with -race.
func TestConcurrentCalls(t *testing.T) {
	const goroutines, each = 100, 60
	p := load(t, "echo", Limits{MaxInstances: 10}, WithBreaker(1<<30, time.Hour), WithBreakerBudget(-1))
	var wg sync.WaitGroup
	var wrong, traps atomic.Int64
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range each {
				answer, want := uint32(0), Verdict{Action: Allow}
				switch (g + i) % 4 {
				case 1:
					answer, want = 0x9701, Verdict{Action: Deny, Reason: 0x97}
				case 2:
					answer, want = 2, Verdict{Action: Drop}
				}
				if (g*each+i)%97 == 0 {
					answer, want = 0xDEAD, Verdict{Action: Deny, Reason: 0x80, Failed: true}
					traps.Add(1)
				}
				v, err := p.OnPublish(ctx, &PublishEvent{ClientID: "c", Topic: "t", Payload: le(answer)})
				if v != want || (err != nil) != want.Failed {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
	st := p.Stats()
	assert.Equal(t, uint64(goroutines*each), st.Calls)
	assert.Equal(t, uint64(traps.Load()), st.Traps)
	assert.Equal(t, st.Calls, st.Allowed+st.Denied+st.Dropped+st.Failures)
	assert.LessOrEqual(t, len(st.Instances), 10)
}
