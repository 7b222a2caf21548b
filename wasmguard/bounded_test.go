package wasmguard

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A plugin that asks the host to log 64 KiB in a loop: each call runs
// out of fuel after at most Fuel/200 log calls (a host call weighs 200
// units), and writes at most MaxLogBytesPerCall.
func TestLogFloodIsBoundedByFuel(t *testing.T) {
	const calls = 3
	lim := Limits{MaxInstances: 1, Fuel: 2_000_000}
	p := load(t, "logflood", lim, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithFailurePolicy(FailOpen), WithLogRate(1_000_000), WithBreakerBudget(-1), WithBreaker(1000, time.Hour))
	for range calls {
		v, err := publish(p, nil)
		assert.ErrorIs(t, err, ErrFuel)
		assert.Equal(t, Verdict{Action: Allow, Failed: true}, v, "fail-open")
	}
	st := p.Stats()
	hostCalls := st.LogLines + st.LogDropped
	assert.LessOrEqual(t, hostCalls, uint64(calls*(2_000_000/200+1)), "fuel bounds the host calls")
	assert.Greater(t, hostCalls, uint64(calls*2_000_000/400), "and the guest did make them")
	assert.Equal(t, uint64(calls*8), st.LogLines, "4 KiB a call: 8 lines cut to 512 bytes")
	assert.Equal(t, uint64(calls*4096), st.LogBytes)
}

// A plugin that logs 200 lines in one call and returns: what it writes
// stops at MaxLogBytesPerCall, the call itself succeeds, and the next
// call has its own budget.
func TestLogBytesPerCall(t *testing.T) {
	p := load(t, "logonce", Limits{MaxInstances: 1, MaxLogBytesPerCall: 1000},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithLogRate(1_000_000))
	payload := append(make([]byte, 40), 200) // the last byte: how many lines
	for range 2 {
		v, err := publish(p, payload)
		require.NoError(t, err)
		assert.Equal(t, Allow, v.Action)
	}
	st := p.Stats()
	line := eventSize(payload)
	perCall := 1000 / line
	assert.Equal(t, uint64(2*perCall), st.LogLines)
	assert.Equal(t, uint64(2*perCall*line), st.LogBytes)
	assert.Equal(t, uint64(2*(200-perCall)), st.LogDropped)
}

// eventSize is the size of the event publish makes with payload: what
// logonce logs per line.
func eventSize(payload []byte) int {
	ev := event{kind: kindPublish, p: &PublishEvent{ClientID: "c1", Username: "u", Topic: "t/1", Payload: payload}}
	return ev.size()
}

// A fail-open plugin whose every call runs out of fuel is quarantined
// once its failures have cost Timeout in all: with a Timeout shorter than
// any call, after the first failure; with a long one, after the count.
// (The time claim — how long that takes at the defaults — is in
// BenchmarkQuarantine.)
func TestFailingPluginIsQuarantinedWithinItsTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		calls   uint64
	}{{time.Nanosecond, 1}, {time.Hour, 5}} {
		p := load(t, "logflood", Limits{MaxInstances: 1, Timeout: tc.timeout, Fuel: 2_000_000}, WithFailurePolicy(FailOpen))
		for range 10 {
			v, _ := publish(p, nil)
			assert.Equal(t, Verdict{Action: Allow, Failed: true}, v)
		}
		st := p.Stats()
		assert.Equal(t, tc.calls, st.Calls, "timeout %v: calls that ran", tc.timeout)
		assert.Equal(t, uint64(1), st.Quarantines)
		assert.Equal(t, 10-tc.calls, st.Quarantined, "the rest did not run")
		assert.False(t, st.QuarantinedUntil.IsZero())
	}
}

func TestFuelIsCalibratedToTheTimeout(t *testing.T) {
	for timeout, fuel := range map[time.Duration]int64{
		0:                     20_000_000, // the default Timeout, 100 ms
		time.Second:           20_000_000,
		50 * time.Millisecond: 15_000_000,
		10 * time.Millisecond: 3_000_000,
		time.Nanosecond:       300_000,
	} {
		l, err := Limits{Timeout: timeout}.withDefaults()
		require.NoError(t, err)
		assert.Equal(t, fuel, l.Fuel, "Timeout %v", timeout)
	}
	l, _ := Limits{Timeout: time.Millisecond, Fuel: 7}.withDefaults()
	assert.Equal(t, int64(7), l.Fuel, "a Fuel given is kept")
}

// BenchmarkQuarantine is what a fail-open plugin whose every call runs
// out of fuel costs before it is quarantined, at the default limits
// (Timeout 100 ms, fuel calibrated to it, breaker 5 failures or 100 ms):
// the plugin time of the failed calls (ms-until-quarantine) and how many
// ran (calls).
func BenchmarkQuarantine(b *testing.B) {
	for _, module := range []string{"logflood", "spin", "fillbomb"} {
		b.Run(module, func(b *testing.B) {
			var spent time.Duration
			var calls uint64
			for b.Loop() {
				p := load(b, module, Limits{MaxInstances: 1}, WithFailurePolicy(FailOpen))
				t0 := time.Now()
				for p.Stats().Quarantines == 0 {
					publish(p, nil)
				}
				spent += time.Since(t0)
				calls += p.Stats().Calls
			}
			b.ReportMetric(float64(spent.Milliseconds())/float64(b.N), "ms-until-quarantine")
			b.ReportMetric(float64(calls)/float64(b.N), "calls")
		})
	}
}
