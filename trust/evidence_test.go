package trust

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client ID is chosen, a username is proven: bob's violations under
// sensor2's client ID are bob's.
func TestClientRecordsBelongToTheirUsername(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	bob := Identity{ClientID: "sensor2-device", Username: "bob"}
	for range 3 {
		tr.Violation(bob, Malformed, t0)
	}
	require.Equal(t, Disconnected, tr.State(bob, t0))
	assert.Equal(t, Normal, tr.State(Identity{ClientID: "sensor2-device", Username: "sensor2"}, t0),
		"the real device, authenticated as sensor2, is untouched")
}

// The punished cannot walk out by changing client IDs: the username
// carries the state (UsernameFactor defaults to 1).
func TestANewClientIDDoesNotEscape(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	rogue := Identity{ClientID: "rogue-1", Username: "rogue"}
	for tr.State(rogue, t0) < ShadowBanned {
		tr.Violation(rogue, ACLDenied, t0)
	}
	assert.Equal(t, ShadowBanned, tr.State(Identity{ClientID: "rogue-2", Username: "rogue"}, t0))
}

// A client without a username has proven only its address.
func TestAnonymousClientsCountAgainstTheirAddress(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	addr := netip.MustParseAddr("192.0.2.9")
	for range 3 {
		tr.Violation(Identity{ClientID: "anon-1", Addr: addr}, Malformed, t0)
	}
	assert.Equal(t, Disconnected, tr.State(Identity{ClientID: "anon-2", Addr: addr}, t0))
	assert.Equal(t, Normal, tr.State(Identity{ClientID: "anon-2", Username: "u", Addr: addr}, t0),
		"a client that authenticated is judged by its username, not its neighbours")
}

// A flood of fresh client IDs under one username fills only that
// username's share: another user's punishment stays, and a newcomer's
// violations are tracked.
func TestAFloodOfClientIDsCannotBlindTheTracker(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, MaxRecords: 640, MaxClientsPerUser: 100})
	victim := Identity{ClientID: "punished", Username: "victim"}
	for range 3 {
		tr.Violation(victim, Malformed, t0)
	}
	require.Equal(t, Disconnected, tr.State(victim, t0))
	for i := range 5000 {
		flood := Identity{ClientID: fmt.Sprint("flood-", i), Username: "flooder"}
		for range 3 {
			tr.Violation(flood, Malformed, t0)
		}
	}
	st := tr.Stats(t0)
	assert.LessOrEqual(t, st.Records, 640, "bounded")
	assert.Equal(t, Disconnected, tr.State(victim, t0), "the flood evicted no one else's punishment")
	assert.NotZero(t, st.Untracked, "the flooder's share ran out")
	assert.Equal(t, Disconnected, tr.State(Identity{ClientID: "flood-new", Username: "flooder"}, t0), "its username carries it")

	evil := Identity{ClientID: "evil", Username: "evil"}
	for range 3 {
		tr.Violation(evil, Malformed, t0)
	}
	assert.Equal(t, Disconnected, tr.State(evil, t0), "a newcomer is tracked")
}

// A Tracker full of punished records still tracks a newcomer: the least
// punished record makes room.
func TestAFullTrackerStillTracks(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, MaxRecords: 64})
	for i := range 200 {
		u := fmt.Sprint("user-", i)
		tr.Violation(Identity{ClientID: u, Username: u}, RateLimited, t0.Add(time.Duration(i)*time.Millisecond))
	}
	evil := Identity{ClientID: "evil", Username: "evil"}
	for range 3 {
		tr.Violation(evil, Malformed, t0.Add(time.Second))
	}
	assert.Equal(t, Disconnected, tr.State(evil, t0.Add(time.Second)))
	assert.LessOrEqual(t, tr.Stats(t0).Records, 64)
}

// An operator lists the punished and pardons one: at once Normal, at the
// initial score; the pardon is reported like a transition.
func TestRecordsAndPardon(t *testing.T) {
	var seen []Transition
	tr := tracker(t, Config{Mode: EnforceFull, OnTransition: func(x Transition) { seen = append(seen, x) }})
	rogue := Identity{ClientID: "r1", Username: "rogue"}
	for range 3 {
		tr.Violation(rogue, Malformed, t0)
	}
	tr.Violation(Identity{ClientID: "s1", Username: "sensor1"}, RateLimited, t0)

	list := tr.Records(Throttled, t0)
	require.Len(t, list, 2, "%+v", list)
	for i := range list {
		require.True(t, list[i].Since.Equal(t0))
		list[i].Since = t0
	}
	assert.Equal(t, Record{Dimension: ByClientID, Key: "r1", Username: "rogue", State: Disconnected, Since: t0,
		Score: list[0].Score, At: t0, Reason: "malformed"}, list[0])
	assert.Equal(t, Record{Dimension: ByUsername, Key: "rogue", State: Disconnected, Since: t0,
		Score: list[1].Score, At: t0, Reason: "malformed"}, list[1])

	seen = nil
	assert.True(t, tr.Pardon(ByUsername, "rogue", "", t0))
	assert.True(t, tr.Pardon(ByClientID, "r1", "rogue", t0))
	assert.False(t, tr.Pardon(ByClientID, "r1", "someone-else", t0), "that client has no record")
	v := tr.Verdict(rogue, t0)
	assert.Equal(t, Normal, v.State)
	assert.Equal(t, 300, v.Score)
	require.Len(t, seen, 2)
	assert.Equal(t, "pardoned", seen[1].Reason)
	require.True(t, seen[1].At.Equal(t0))
	seen[1].At = t0
	assert.Equal(t, Transition{Dimension: ByClientID, Key: "r1", Username: "rogue", From: Disconnected, To: Normal,
		At: t0, Reason: "pardoned", Score: 300}, seen[1])
	assert.Empty(t, tr.Records(Throttled, t0))
}

// What Records saves, Restore puts back in a new Tracker: a punishment
// outlives a restart and ends when it would have.
func TestRestoreKeepsPunishmentsOverARestart(t *testing.T) {
	cfg := Config{Mode: EnforceFull}
	a := tracker(t, cfg)
	rogue := Identity{ClientID: "r1", Username: "rogue"}
	for range 3 {
		a.Violation(rogue, Malformed, t0)
	}
	saved := a.Records(Throttled, t0.Add(time.Minute))
	b := tracker(t, cfg)
	for _, r := range saved {
		require.NoError(t, b.Restore(r, t0.Add(2*time.Minute)))
	}
	later := t0.Add(2 * time.Minute)
	assert.Equal(t, Disconnected, b.State(rogue, later))
	assert.Equal(t, Disconnected, b.State(Identity{ClientID: "r2", Username: "rogue"}, later), "the username too")
	end := t0.Add(cfg.withDefaults().BanDuration)
	assert.Equal(t, ShadowBanned, b.State(rogue, end), "the ban period counts from the first run")
}
