package wasmguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	require.NoError(t, err, "run go generate ./wasmguard to rebuild the test modules")
	return b
}

func load(t testing.TB, name string, lim Limits, opts ...Option) *Plugin {
	t.Helper()
	p, err := Load(context.Background(), module(t, name), lim, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	return p
}

// le is v as the last four payload bytes echo answers with.
func le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func publish(p *Plugin, payload []byte) (Verdict, error) {
	return p.OnPublish(context.Background(), &PublishEvent{ClientID: "c1", Username: "u", Topic: "t/1", Payload: payload})
}

func TestVerdictsFromThePlugin(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 2}, WithBreaker(1000, time.Second))
	for _, tc := range []struct {
		answer uint32
		want   Verdict
		kind   error
	}{
		{0, Verdict{Action: Allow}, nil},
		{1, Verdict{Action: Deny, Reason: 0x87}, nil},
		{0x8701, Verdict{Action: Deny, Reason: 0x87}, nil},
		{0x9701, Verdict{Action: Deny, Reason: 0x97}, nil},
		{0x9901, Verdict{Action: Deny, Reason: 0x99}, nil},
		{2, Verdict{Action: Drop}, nil},
		{0x8702, Verdict{Action: Drop}, nil},
		{0x8700, Verdict{Action: Allow}, nil},
		{0x1001, Verdict{}, ErrBadVerdict}, // a deny with a success code
		{3, Verdict{}, ErrBadVerdict},
		{0xff, Verdict{}, ErrBadVerdict},
		{0x10000, Verdict{}, ErrBadVerdict},
		{0xffffffff, Verdict{}, ErrBadVerdict},
	} {
		v, err := publish(p, le(tc.answer))
		if tc.kind == nil {
			require.NoError(t, err, "answer 0x%x", tc.answer)
			assert.Equal(t, tc.want, v, "answer 0x%x", tc.answer)
			continue
		}
		assert.ErrorIs(t, err, tc.kind, "answer 0x%x", tc.answer)
		assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v, "answer 0x%x", tc.answer)
	}
	st := p.Stats()
	assert.Equal(t, uint64(13), st.Calls)
	assert.Equal(t, uint64(2), st.Allowed)
	assert.Equal(t, uint64(4), st.Denied)
	assert.Equal(t, uint64(2), st.Dropped)
	assert.Equal(t, uint64(5), st.BadVerdicts)
	assert.Equal(t, uint64(5), st.Failures)
}

func TestFailurePolicy(t *testing.T) {
	closed := load(t, "trap", Limits{MaxInstances: 1})
	v, err := publish(closed, nil)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v)
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "on_publish", ce.Hook)
	assert.ErrorIs(t, err, ErrTrap)
	assert.NotContains(t, err.Error(), "\n", "the error is one line; the wasm stack trace stays in Err")

	open := load(t, "trap", Limits{MaxInstances: 1}, WithFailurePolicy(FailOpen), WithName("trapper"))
	v, err = publish(open, nil)
	assert.Equal(t, Verdict{Action: Allow, Failed: true}, v)
	assert.ErrorIs(t, err, ErrTrap)
	assert.Contains(t, err.Error(), "plugin trapper on_publish: the plugin trapped")
}

func TestAHookThePluginLacksAllows(t *testing.T) {
	p := load(t, "spin", Limits{MaxInstances: 1})
	assert.True(t, p.Has(HookPublish))
	assert.False(t, p.Has(HookConnect))
	v, err := p.OnConnect(context.Background(), &ConnectEvent{ClientID: "c"})
	require.NoError(t, err)
	assert.Equal(t, Verdict{Action: Allow}, v)
	v, err = p.OnSubscribe(context.Background(), &SubscribeEvent{ClientID: "c", Filter: "#"})
	require.NoError(t, err)
	assert.Equal(t, Verdict{Action: Allow}, v)
	assert.Zero(t, p.Stats().Calls, "the plugin did not run")
}

func TestDisableAndEnable(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 1})
	deny := le(0x8701)
	v, _ := publish(p, deny)
	assert.Equal(t, Deny, v.Action)

	p.Disable()
	assert.True(t, p.Disabled())
	v, err := publish(p, deny)
	require.NoError(t, err)
	assert.Equal(t, Verdict{Action: Allow}, v, "a disabled plugin takes no part")
	assert.Equal(t, uint64(1), p.Stats().Skipped)

	p.Enable()
	v, _ = publish(p, deny)
	assert.Equal(t, Deny, v.Action)
	assert.Equal(t, uint64(2), p.Stats().Calls)
}

func TestQuarantine(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 1}, WithBreaker(3, time.Hour))
	for range 3 {
		_, err := publish(p, le(0xDEAD))
		require.ErrorIs(t, err, ErrTrap)
	}
	v, err := publish(p, le(0))
	assert.ErrorIs(t, err, ErrQuarantined)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v)
	st := p.Stats()
	assert.Equal(t, uint64(3), st.Calls, "a quarantined plugin is not called")
	assert.Equal(t, uint64(1), st.Quarantined)
	assert.Equal(t, uint64(1), st.Quarantines)
	assert.False(t, st.QuarantinedUntil.IsZero())

	p.Enable() // the operator lifts it
	v, err = publish(p, le(0))
	require.NoError(t, err)
	assert.Equal(t, Allow, v.Action)
	assert.True(t, p.Stats().QuarantinedUntil.IsZero())
}

func TestBreakerProbesAndBacksOff(t *testing.T) {
	b := newBreaker(breakerConfig{failures: 2, cooldown: time.Second})
	t0 := time.Unix(1000, 0)
	tripped, _ := b.failure(t0, 0)
	assert.False(t, tripped)
	b.success() // not consecutive
	tripped, _ = b.failure(t0, 0)
	assert.False(t, tripped)
	tripped, d := b.failure(t0, 0)
	assert.True(t, tripped)
	assert.Equal(t, time.Second, d)
	assert.True(t, b.open(t0.Add(999*time.Millisecond)))
	assert.False(t, b.open(t0.Add(time.Second)), "the first call after the cooldown is a probe")

	tripped, d = b.failure(t0.Add(time.Second), 0)
	assert.True(t, tripped, "a failed probe trips again at once")
	assert.Equal(t, 2*time.Second, d, "and for twice as long")
	t1 := t0.Add(3 * time.Second)
	for i := 0; i < 20; i++ {
		_, d = b.failure(t1, 0)
		t1 = t1.Add(d)
	}
	assert.Equal(t, maxCooldown, d)

	b.success()
	assert.False(t, b.open(t1))
	tripped, _ = b.failure(t1, 0)
	assert.False(t, tripped, "a success resets the count")
	tripped, d = b.failure(t1, 0)
	assert.True(t, tripped)
	assert.Equal(t, time.Second, d, "and the cooldown")
}

// Failed calls that take the budget in all trip the breaker however few
// they are; cheap failures need the full count.
func TestBreakerTimeBudget(t *testing.T) {
	b := newBreaker(breakerConfig{failures: 5, cooldown: time.Second, budget: 100 * time.Millisecond})
	t0 := time.Unix(1000, 0)
	tripped, _ := b.failure(t0, 60*time.Millisecond)
	assert.False(t, tripped)
	tripped, d := b.failure(t0.Add(60*time.Millisecond), 60*time.Millisecond)
	assert.True(t, tripped, "120 ms of failures: over the 100 ms budget after 2 of 5")
	assert.True(t, b.open(t0.Add(120*time.Millisecond+d-time.Millisecond)), "for the cooldown from the failure's end")

	b.success()
	for i := range 4 {
		tripped, _ = b.failure(t0.Add(time.Hour), time.Millisecond)
		assert.False(t, tripped, "cheap failure %d", i+1)
	}
	tripped, _ = b.failure(t0.Add(time.Hour), time.Millisecond)
	assert.True(t, tripped, "the fifth")
}

func TestEventTooLarge(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 1, MaxEventBytes: 100}, WithBreaker(1, time.Hour))
	v, err := publish(p, make([]byte, 200))
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v)
	v, err = publish(p, le(2))
	require.NoError(t, err, "an oversized event does not count against the plugin")
	assert.Equal(t, Drop, v.Action)
	st := p.Stats()
	assert.Equal(t, uint64(1), st.TooLarge)
	assert.Equal(t, uint64(1), st.Calls)
}

func TestBufferLargerThanTheGuestGives(t *testing.T) {
	// echo's buffer refuses more than 63 KiB: a host asking for more gets
	// 0, which is a bad buffer, not a crash.
	p := load(t, "echo", Limits{MaxInstances: 1}, WithBreaker(1000, time.Hour))
	_, err := publish(p, make([]byte, 70000))
	assert.ErrorIs(t, err, ErrBadBuffer)
	v, err := publish(p, le(0))
	require.NoError(t, err)
	assert.Equal(t, Allow, v.Action)
}

type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) texts(msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "text" {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

func TestLogIsBoundedAndRateLimited(t *testing.T) {
	rec := &recorder{}
	p := load(t, "echo", Limits{MaxInstances: 1}, WithLogger(slog.New(rec)), WithLogRate(3))
	ctx := context.Background()
	long := strings.Repeat("x", 2000)
	for _, id := range []string{"first", "bad\xffutf8", long, "dropped", "dropped"} {
		v, err := p.OnConnect(ctx, &ConnectEvent{ClientID: id})
		require.NoError(t, err)
		assert.Equal(t, Allow, v.Action)
	}
	texts := rec.texts("plugin log")
	require.Len(t, texts, 3)
	assert.Equal(t, "first", texts[0])
	assert.Equal(t, "bad\uFFFDutf8", texts[1])
	assert.Equal(t, strings.Repeat("x", maxLogBytes)+"…", texts[2])
	st := p.Stats()
	assert.Equal(t, uint64(3), st.LogLines)
	assert.Equal(t, uint64(2), st.LogDropped)
}

func TestLogWithAPointerOutsideMemoryTraps(t *testing.T) {
	p := load(t, "logoob", Limits{MaxInstances: 1})
	_, err := publish(p, nil)
	assert.ErrorIs(t, err, ErrTrap)
	assert.Contains(t, err.Error(), "100000 bytes at 65000 lie outside the plugin's memory")
	assert.Equal(t, uint64(1), p.Stats().LogRejected)
}

func TestConfig(t *testing.T) {
	p := load(t, "config", Limits{MaxInstances: 1}, WithConfig([]byte{2, 0, 0, 0}))
	v, err := publish(p, nil)
	require.NoError(t, err)
	assert.Equal(t, Drop, v.Action)

	none := load(t, "config", Limits{MaxInstances: 1})
	_, err = publish(none, nil)
	assert.ErrorIs(t, err, ErrTrap, "config returned 0 bytes and the guest gave up")
}

func TestCallIndirectGoesThroughTheWrappers(t *testing.T) {
	p := load(t, "indirect", Limits{MaxInstances: 1})
	ask := func(topic string) (Verdict, error) {
		return p.OnPublish(context.Background(), &PublishEvent{Topic: topic})
	}
	v, err := ask("0")
	require.NoError(t, err)
	assert.Equal(t, Allow, v.Action)
	v, err = ask("1")
	require.NoError(t, err)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x97}, v)
	_, err = ask("7")
	assert.ErrorIs(t, err, ErrTrap, "outside the table")
}

func TestRecycling(t *testing.T) {
	p := load(t, "trivial", Limits{MaxInstances: 1, RecycleAfter: 3})
	for range 10 {
		v, err := publish(p, nil)
		require.NoError(t, err)
		assert.Equal(t, Allow, v.Action)
	}
	st := p.Stats()
	assert.Equal(t, uint64(3), st.InstancesRecycled)
	assert.Zero(t, st.InstancesReplaced)

	leak := load(t, "leak", Limits{MaxInstances: 1, RecycleMemoryBytes: 4 * pageSize})
	for range 10 {
		_, err := publish(leak, nil)
		require.NoError(t, err)
	}
	st = leak.Stats()
	assert.Equal(t, uint64(2), st.InstancesRecycled, "recycled on reaching 5 pages, twice in 10 calls")
	assert.Equal(t, uint64(5*pageSize), st.PeakMemoryBytes)
}

func TestPreemptStopsALoopAtTimeout(t *testing.T) {
	p := load(t, "spin", Limits{MaxInstances: 1, Fuel: 1 << 60, Preempt: true, Timeout: 20 * time.Millisecond})
	v, err := publish(p, nil)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.True(t, v.Failed)
	assert.Equal(t, uint64(1), p.Stats().Timeouts)
}

func TestACallThatFinishesLateFailsAllTheSame(t *testing.T) {
	p := load(t, "echo", Limits{MaxInstances: 1, Fuel: 1 << 40, Timeout: time.Millisecond})
	_, err := publish(p, le(0x510)) // 100 million iterations
	assert.ErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "the limit is 1ms")
}

func TestBusyPoolWaitsWithTheCallersContext(t *testing.T) {
	p := load(t, "trivial", Limits{MaxInstances: 1}, WithBreaker(1, time.Hour))
	inst, err := p.acquire(context.Background()) // the only instance
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	v, err := p.OnPublish(ctx, &PublishEvent{Topic: "t"})
	assert.ErrorIs(t, err, ErrBusy)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, v.Failed)
	p.release(inst)

	v, err = publish(p, nil)
	require.NoError(t, err, "waiting is not the plugin's failure: no quarantine")
	assert.Equal(t, Allow, v.Action)
	assert.Equal(t, uint64(1), p.Stats().Waits)
}

func TestClose(t *testing.T) {
	p, err := Load(context.Background(), module(t, "trivial"), Limits{MaxInstances: 3})
	require.NoError(t, err)
	require.NoError(t, p.Close(context.Background()))
	require.NoError(t, p.Close(context.Background()), "twice is fine")
	v, err := publish(p, nil)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x80, Failed: true}, v)
	assert.Empty(t, p.Stats().Instances)
}

func TestCloseWithACallInProgress(t *testing.T) {
	p, err := Load(context.Background(), module(t, "trivial"), Limits{MaxInstances: 2})
	require.NoError(t, err)
	inst, err := p.acquire(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.Close(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, p.Stats().Instances, 1, "the running call's instance is left alone")
	p.release(inst) // the call returns; the finisher closes the rest
	assert.Eventually(t, func() bool { return len(p.Stats().Instances) == 0 }, 5*time.Second, time.Millisecond)
}

func TestLimitsThatCannotBeHonoured(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		lim   Limits
		limit string
	}{
		{Limits{MaxTables: 2}, "MaxTables"},
		{Limits{MaxMemories: 2}, "MaxMemories"},
		{Limits{MaxMemoryBytes: 100}, "MaxMemoryBytes"},
		{Limits{MaxCallDepth: 2_000_000}, "MaxCallDepth"},
	} {
		_, err := Load(ctx, module(t, "trivial"), tc.lim)
		var le *LimitError
		require.ErrorAs(t, err, &le, "%+v", tc.lim)
		assert.Equal(t, tc.limit, le.Limit)
	}
}

func TestLoadRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		module string
		lim    Limits
		limit  string // "" for errors that are not a LimitError
		says   []string
	}{
		{"bigtable", Limits{}, "MaxTableElements", []string{"10000000 elements", "limit is 10000"}},
		{"twomemories", Limits{}, "MaxMemories", []string{"2 memories", "limit is 1"}},
		{"bigmemory", Limits{}, "MaxMemoryBytes", []string{"67108864 bytes", "limit is 16777216"}},
		{"badimport", Limits{}, "imports", []string{"wasi_snapshot_preview1.path_open", "mqttguard.log"}},
		{"nomarker", Limits{}, "ABI", []string{`"mqttguard_abi_v1"`}},
		{"trivial", Limits{MaxModuleBytes: 100}, "MaxModuleBytes", []string{"151 bytes", "limit is 100"}},
		{"trivial", Limits{MaxMemoryBytes: pageSize - 1 + pageSize}, "", nil}, // one page: loads
		{"tablegrow", Limits{}, "", []string{"reference types are refused"}},
		{"startspin", Limits{InitFuel: 1_000_000}, "", []string{"does not instantiate"}},
	} {
		p, err := Load(ctx, module(t, tc.module), tc.lim)
		if tc.says == nil {
			require.NoError(t, err, tc.module)
			p.Close(ctx)
			continue
		}
		require.Error(t, err, tc.module)
		for _, s := range tc.says {
			assert.Contains(t, err.Error(), s, tc.module)
		}
		var le *LimitError
		if tc.limit != "" {
			require.ErrorAs(t, err, &le, tc.module)
			assert.Equal(t, tc.limit, le.Limit, tc.module)
		}
	}
	_, err := Load(ctx, []byte("not wasm"), Limits{})
	assert.ErrorContains(t, err, "not a WebAssembly 1.0 binary")
}

func TestNoPluginCanSleep(t *testing.T) {
	// poll_oneoff with an hour's timeout returns at once: wazero is given
	// no nanosleep. A blocking host call would be beyond fuel's reach.
	p := load(t, "sleep", Limits{MaxInstances: 1})
	done := make(chan error, 1)
	go func() {
		_, err := publish(p, nil)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the plugin slept")
	}
}

func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	p := load(t, "echo", Limits{MaxInstances: 1}, WithCacheDir(dir))
	v, err := publish(p, le(2))
	require.NoError(t, err)
	assert.Equal(t, Drop, v.Action)
	var files int
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	assert.NotZero(t, files, "compiled code is kept in the directory")

	_, err = Load(context.Background(), module(t, "echo"), Limits{}, WithCacheDir(filepath.Join(dir, "\x00bad")))
	assert.ErrorContains(t, err, "cache directory")
}

func TestNamesDefaultToTheModuleHash(t *testing.T) {
	p := load(t, "trivial", Limits{MaxInstances: 1})
	assert.Len(t, p.Name(), 12)
	assert.Equal(t, "deny", Deny.String())
	assert.Equal(t, "on_subscribe", HookSubscribe.String())
	assert.True(t, bytes.HasPrefix(module(t, "trivial"), []byte("\x00asm")))
	assert.False(t, errors.Is(ErrTrap, ErrFuel))
}
