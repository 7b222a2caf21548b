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
// connections it opens (those in progress count as failures until they
// are decided); past MaxDelay it is refused as busy; then it is banned.
func TestAuthGateSpacesOutThenBans(t *testing.T) {
	g := gate(t, AuthGateConfig{Free: 3, Delay: 100 * time.Millisecond, MaxDelay: time.Second, BanAfter: 12})
	guesser := netip.MustParseAddr("192.0.2.66")
	now := t0
	for i := range 3 {
		wait, ok := g.Reserve(guesser, "sensor1", now)
		require.True(t, ok)
		assert.Zero(t, wait, "attempt %d: the first failures are free", i)
		assert.False(t, g.Failed(guesser, "sensor1", now))
	}
	// Four attempts at once: three are verified side by side (Free),
	// the fourth is told busy. They take turns, 100 ms apart: the
	// fourth failure is past Free.
	var waits []time.Duration
	for range 4 {
		wait, ok := g.Reserve(guesser, "", now)
		if !ok {
			break
		}
		waits = append(waits, wait)
	}
	assert.Equal(t, []time.Duration{0, 0, 0}, waits, "three in progress at most")
	g.Failed(guesser, "", now) // 4: past Free, turns begin
	waits = nil
	for range 3 {
		wait, ok := g.Reserve(guesser, "", now)
		require.True(t, ok)
		waits = append(waits, wait)
		g.Failed(guesser, "", now) // 5, 6, 7
	}
	assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}, waits, "turns 100, then 200 ms apart")
	g.Abandon(guesser, "", now)
	g.Abandon(guesser, "", now)
	// Seven failures: the turns are 800 ms apart (doubling past Free),
	// and an attempt whose turn is more than MaxDelay away is refused.
	later := now.Add(time.Second)
	waits = nil
	for range 5 {
		wait, ok := g.Reserve(guesser, "", later)
		if !ok {
			break
		}
		waits = append(waits, wait)
	}
	assert.Equal(t, []time.Duration{0, 800 * time.Millisecond}, waits, "turns 800 ms apart, then busy: nothing waits more than MaxDelay")

	for i := 8; i < 12; i++ { // the refusal was not a failure: 7 so far
		assert.False(t, g.Failed(guesser, "", later), "failure %d", i)
	}
	assert.True(t, g.Failed(guesser, "", later), "12: banned")
	assert.False(t, g.Failed(guesser, "", later), "said once")
	assert.Equal(t, 13, g.Failures(guesser, later), "every failure counted, the one after the ban too")
}

// A broker that lost track of an attempt (or a client that went away
// while it waited: Abandon) does not slow its address down for good.
func TestAuthGateAttemptsInProgressEnd(t *testing.T) {
	g := gate(t, AuthGateConfig{Free: 2, Delay: 100 * time.Millisecond, MaxDelay: time.Second})
	a := netip.MustParseAddr("192.0.2.7")
	g.Reserve(a, "", t0)
	g.Failed(a, "", t0) // a failing address
	for range 2 {
		_, ok := g.Reserve(a, "", t0)
		require.True(t, ok)
	}
	_, ok := g.Reserve(a, "", t0)
	assert.False(t, ok, "two in progress (Free): busy")
	g.Abandon(a, "", t0)
	_, ok = g.Reserve(a, "", t0)
	assert.True(t, ok, "an abandoned attempt is no longer in progress, nor a failure")
	assert.Equal(t, 1, g.Failures(a, t0))
	_, ok = g.Reserve(a, "", t0.Add(time.Hour)) // two were never decided
	assert.True(t, ok, "attempts left in progress are forgotten after Window")

	nat := netip.MustParseAddr("198.51.100.1") // no failures: 50 devices at once after a restart
	for i := range 50 {
		wait, ok := g.Reserve(nat, fmt.Sprint("device-", i), t0)
		require.True(t, ok, "device-%d", i)
		assert.Zero(t, wait)
	}
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
		g.Succeeded(nat, fmt.Sprint("device-", i), now)
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
