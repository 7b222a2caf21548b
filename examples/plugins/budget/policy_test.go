package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBudget(t *testing.T) {
	b, err := parseConfig([]byte(`{"publishes": 3, "window": "1m", "max_devices": 2}`))
	require.NoError(t, err)
	t0 := time.Unix(1000, 0)
	spend := func(dev string, at time.Duration) bool {
		ok, tracked := b.spend(dev, t0.Add(at))
		require.True(t, tracked)
		return ok
	}
	assert.True(t, spend("a", 0))
	assert.True(t, spend("a", time.Second))
	assert.True(t, spend("a", 2*time.Second))
	assert.False(t, spend("a", 3*time.Second), "fourth in the window")
	assert.True(t, spend("b", 3*time.Second), "budgets are per device")
	assert.False(t, spend("a", 59*time.Second))
	assert.True(t, spend("a", 60*time.Second), "a new window")

	// Full table: finished windows are dropped to make room …
	assert.True(t, spend("c", 2*time.Minute))
	assert.Len(t, b.devices, 1)
	// … and when none has finished, a new device passes untracked.
	assert.True(t, spend("d", 2*time.Minute))
	ok, tracked := b.spend("e", t0.Add(2*time.Minute))
	assert.True(t, ok)
	assert.False(t, tracked)

	// A clock that goes back starts a new window rather than lock a
	// device out.
	assert.True(t, spend("c", time.Minute))
}

func TestBudgetConfig(t *testing.T) {
	b, err := parseConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, 60, b.limit)
	assert.Equal(t, time.Minute, b.window)
	for cfg, says := range map[string]string{
		`{"window": "soon"}`:   "window",
		`{"window": "-1s"}`:    "must be positive",
		`{"publishes": 0}`:     "publishes 0",
		`{"max_devices": -1}`:  "max_devices",
		`{"publishes_per": 1}`: "unknown field",
	} {
		_, err := parseConfig([]byte(cfg))
		assert.ErrorContains(t, err, says, cfg)
	}
}
