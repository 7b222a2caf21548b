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

// Behind a NAT, a guesser's turns are its own: the devices that
// authenticated from the address keep lanes of their own and wait for
// nobody, while new usernames from there (and the guesser's) queue on
// the address's turns. A guess at a device's username from there
// slows only that device's lane.
func TestAuthGateLanesKeepNATDevicesOutOfTheGuessersQueue(t *testing.T) {
	g := gate(t, AuthGateConfig{Free: 2, Delay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond, BanAfter: 10})
	nat := netip.MustParseAddr("198.51.100.1")
	for i := range 100 {
		g.Succeeded(nat, fmt.Sprint("device-", i), t0)
	}
	now := t0.Add(time.Second)
	for range 20 {
		g.Reserve(nat, "admin", now)
		assert.False(t, g.Failed(nat, "admin", now), "a NAT is never banned")
	}
	for {
		if _, ok := g.Reserve(nat, "root", now); !ok {
			break // the guesser has filled the address's queue
		}
	}
	for i := range 100 {
		wait, ok := g.Reserve(nat, fmt.Sprint("device-", i), now)
		require.True(t, ok, "device-%d", i)
		assert.Zero(t, wait, "device-%d waits for nobody", i)
	}
	_, ok := g.Reserve(nat, "new-device", now)
	assert.False(t, ok, "a username nobody used from here queues with the guesser")

	// The guesser turns to device-7's name: device-7's lane is spaced
	// out, the other devices' are not.
	for range 3 {
		g.Reserve(nat, "device-7", now)
		g.Failed(nat, "device-7", now)
	}
	g.Reserve(nat, "device-7", now) // the guesser's next try takes the lane's turn
	wait7, ok := g.Reserve(nat, "device-7", now)
	assert.True(t, ok)
	assert.Equal(t, 100*time.Millisecond, wait7, "device-7 is slowed: the next turn on its lane")
	wait8, _ := g.Reserve(nat, "device-8", now)
	assert.Zero(t, wait8, "device-8 is not")
	g.Succeeded(nat, "device-7", now) // its owner logs in: the lane is clear again
	wait7, _ = g.Reserve(nat, "device-7", now)
	assert.Zero(t, wait7)

	assert.Equal(t, 20+3, g.Failures(nat, now), "every failure counts against the address too")

	// A lane lasts a Window after its last success: device-1, quiet
	// for 20 minutes, queues with the guesser like a stranger.
	later := now.Add(20 * time.Minute)
	for range 3 {
		g.Failed(nat, "root", later)
	}
	for {
		if _, ok := g.Reserve(nat, "root", later); !ok {
			break
		}
	}
	_, ok = g.Reserve(nat, "device-1", later)
	assert.False(t, ok)
}

// A flood of fresh addresses fills the table, and evicts its own kind:
// the NAT devices authenticate from keeps its mark (and is not banned
// for its guesser), and the devices keep their lanes.
func TestAuthGateEvictionSparesWhereDevicesLogIn(t *testing.T) {
	g := gate(t, AuthGateConfig{MaxEntries: 100, BanAfter: 10})
	nat := netip.MustParseAddr("198.51.100.1")
	g.Succeeded(nat, "device-1", t0)
	for i := range 10000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Failed(addr, "", t0.Add(time.Duration(i)))
	}
	assert.LessOrEqual(t, len(g.addrs), 100)
	for range 20 {
		assert.False(t, g.Failed(nat, "root", t0.Add(time.Second)), "still known as a NAT")
	}
	assert.Contains(t, g.lanes, lane{nat, "device-1"})
}
