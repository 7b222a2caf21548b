package wasmguard

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadGoGuest(t testing.TB, lim Limits, opts ...Option) *Plugin {
	t.Helper()
	opts = append(opts, WithCacheDir(wasmbuild.CacheDir()))
	p, err := Load(context.Background(), wasmbuild.Build(t, "testdata/goguest"), lim, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// A plugin built with the standard Go toolchain (wasip1, c-shared) and
// the guest package, through the whole ABI.
func TestGoGuest(t *testing.T) {
	rec := &recorder{}
	p := loadGoGuest(t, Limits{MaxInstances: 2}, WithLogger(slog.New(rec)), WithConfig([]byte("s3cret")),
		WithBreaker(1000, time.Hour), WithBreakerBudget(-1))
	ctx := context.Background()
	ask := func(topic string, payload string) (Verdict, error) {
		return p.OnPublish(ctx, &PublishEvent{ClientID: "c", Username: "u", Topic: topic, Payload: []byte(payload)})
	}
	for _, tc := range []struct {
		topic, payload string
		want           Verdict
	}{
		{"allow", "", Verdict{Action: Allow}},
		{"drop", "", Verdict{Action: Drop}},
		{"deny/x", "", Verdict{Action: Deny, Reason: 0x97}},
		{"other", "", Verdict{Action: Deny, Reason: 0x87}},
		{"config", "s3cret", Verdict{Action: Allow}},
		{"config", "guess", Verdict{Action: Deny, Reason: 0x87}},
		{"log", "hello from Go", Verdict{Action: Allow}},
	} {
		v, err := ask(tc.topic, tc.payload)
		require.NoError(t, err, tc.topic)
		assert.Equal(t, tc.want, v, tc.topic)
	}
	assert.Equal(t, []string{"hello from Go"}, rec.texts("plugin log"))

	v, err := p.OnConnect(ctx, &ConnectEvent{ClientID: "c", Username: "u", HasPassword: true, ProtocolVersion: 5})
	require.NoError(t, err)
	assert.Equal(t, Allow, v.Action)
	v, err = p.OnConnect(ctx, &ConnectEvent{ClientID: "c", ProtocolVersion: 4})
	require.NoError(t, err)
	assert.Equal(t, Verdict{Action: Deny, Reason: 0x87}, v)
	assert.False(t, p.Has(HookSubscribe))

	_, err = ask("panic", "")
	assert.ErrorIs(t, err, ErrTrap)
	assert.Contains(t, err.Error(), `the plugin trapped: the plugin wrote "panic: asked to"`)
	_, err = ask("spin", "")
	assert.ErrorIs(t, err, ErrFuel)
	v, err = ask("allow", "")
	require.NoError(t, err, "the pool replaced the broken instances")
	assert.Equal(t, Allow, v.Action)

	st := p.Stats()
	require.NotEmpty(t, st.Instances)
	for _, in := range st.Instances {
		assert.Greater(t, in.MemoryBytes, uint64(1<<20), "a Go guest's runtime takes a couple of MiB")
		assert.LessOrEqual(t, in.MemoryBytes, uint64(16<<20))
	}
}

// A Go guest that keeps allocating hits the 16 MiB limit, its runtime
// reports "out of memory" and traps; the host names it.
func TestGoGuestOutOfMemory(t *testing.T) {
	p := loadGoGuest(t, Limits{MaxInstances: 1, RecycleMemoryBytes: 16 << 20}, WithBreaker(1000, time.Hour), WithBreakerBudget(-1))
	var err error
	calls := 0
	for ; calls < 20; calls++ {
		if _, err = p.OnPublish(context.Background(), &PublishEvent{Topic: "leak"}); err != nil {
			break
		}
	}
	assert.ErrorIs(t, err, ErrMemoryLimit)
	assert.Less(t, calls, 16, "1 MiB a call within 16 MiB")
	st := p.Stats()
	assert.Equal(t, uint64(1), st.MemoryLimit)
	assert.LessOrEqual(t, st.PeakMemoryBytes, uint64(16<<20))
}

// With the default high-water mark (12 MiB) the leaking instance is
// recycled before it runs out of memory: no call fails.
func TestGoGuestLeakIsRecycled(t *testing.T) {
	p := loadGoGuest(t, Limits{MaxInstances: 1})
	for range 40 {
		v, err := p.OnPublish(context.Background(), &PublishEvent{Topic: "leak"})
		require.NoError(t, err)
		assert.Equal(t, Allow, v.Action)
	}
	st := p.Stats()
	assert.NotZero(t, st.InstancesRecycled)
	assert.Zero(t, st.Failures)
	assert.LessOrEqual(t, st.PeakMemoryBytes, uint64(14<<20))
}
