package trust

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gate(t *testing.T, cfg AuthGateConfig) *AuthGate {
	t.Helper()
	g, err := NewAuthGate(cfg)
	require.NoError(t, err)
	return g
}

// A guesser's attempts are spaced out, turn by turn, however many
// connections it opens; past MaxDelay it is refused as busy; then it is
// banned.
func TestAuthGateSpacesOutThenBans(t *testing.T) {
	g := gate(t, AuthGateConfig{Free: 3, Delay: 100 * time.Millisecond, MaxDelay: time.Second, BanAfter: 10})
	guesser := netip.MustParseAddr("192.0.2.66")
	now := t0
	for i := range 3 {
		wait, ok := g.Reserve(guesser, "sensor1", now)
		require.True(t, ok)
		assert.Zero(t, wait, "attempt %d: the first failures are free", i)
		assert.False(t, g.Failed(guesser, "sensor1", now))
	}
	// Four attempts at once after the third failure: one turn each.
	var waits []time.Duration
	for range 4 {
		wait, ok := g.Reserve(guesser, "", now)
		require.True(t, ok)
		waits = append(waits, wait)
	}
	assert.Equal(t, []time.Duration{0, 0, 0, 0}, waits, "three failures: still free")
	g.Failed(guesser, "", now)
	waits = nil
	for range 12 {
		wait, ok := g.Reserve(guesser, "", now)
		if !ok {
			break
		}
		waits = append(waits, wait)
	}
	assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond,
		500 * time.Millisecond, 600 * time.Millisecond, 700 * time.Millisecond, 800 * time.Millisecond, 900 * time.Millisecond,
		1000 * time.Millisecond}, waits, "turns 100 ms apart, then busy: nothing waits more than MaxDelay")

	ban := false
	for i := 0; i < 20 && !ban; i++ {
		ban = g.Failed(guesser, "", now)
	}
	assert.True(t, ban)
	assert.False(t, g.Failed(guesser, "", now), "said once")
	assert.Equal(t, 11, g.Failures(guesser, now), "every failure counted, the one after the ban too")
}

// A NAT with devices authenticating behind it is never banned for one
// guesser among them, and the username the guesser tries is slowed, not
// locked: its right password gets in (Succeeded clears it).
func TestAuthGateSparesNATsAndAccounts(t *testing.T) {
	g := gate(t, AuthGateConfig{Free: 2, Delay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, BanAfter: 5})
	nat := netip.MustParseAddr("198.51.100.1")
	g.Succeeded(nat, "sensor7", t0)
	for range 100 {
		assert.False(t, g.Failed(nat, "sensor1", t0), "someone authenticated from here: no ban")
	}
	wait, ok := g.Reserve(netip.MustParseAddr("203.0.113.9"), "sensor1", t0)
	assert.True(t, ok, "another address trying sensor1 is never refused")
	assert.Equal(t, 50*time.Millisecond, wait, "only slowed, at most MaxDelay")
	g.Succeeded(netip.MustParseAddr("203.0.113.9"), "sensor1", t0)
	wait, _ = g.Reserve(netip.MustParseAddr("203.0.113.9"), "sensor1", t0)
	assert.Zero(t, wait, "sensor1 logged in: its failures are forgotten")

	later := t0.Add(time.Hour)
	assert.Zero(t, g.Failures(nat, later), "failures older than the window are forgotten")
	wait, _ = g.Reserve(nat, "", later)
	assert.Zero(t, wait)
}

func TestAuthGateIsBounded(t *testing.T) {
	g := gate(t, AuthGateConfig{MaxEntries: 100})
	for i := range 10000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Failed(addr, fmt.Sprint("user", i), t0.Add(time.Duration(i)))
	}
	assert.LessOrEqual(t, len(g.addrs), 100)
	assert.LessOrEqual(t, len(g.users), 100)
	_, err := NewAuthGate(AuthGateConfig{Free: 10, BanAfter: 5})
	assert.Error(t, err)
}
