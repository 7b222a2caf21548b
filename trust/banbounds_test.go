package trust

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client ban scoped to a username bans that user's use of the client
// ID, not the device that owns it.
func TestScopedClientBan(t *testing.T) {
	var b Bans
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "sensor2-device", Username: "bob", Automatic: true, By: "flapping"}))
	_, banned := b.Banned(Identity{ClientID: "sensor2-device", Username: "bob"}, t0)
	assert.True(t, banned)
	_, banned = b.Banned(Identity{ClientID: "sensor2-device", Username: "sensor2"}, t0)
	assert.False(t, banned, "the real device")
	assert.False(t, b.Remove(BanClientID, "sensor2-device"), "Remove lifts the unscoped ban, which there is not")
	assert.True(t, b.Lift(Ban{Kind: BanClientID, Value: "sensor2-device", Username: "bob"}))
	assert.Zero(t, b.Len())
	assert.Error(t, b.Add(Ban{Kind: BanUsername, Value: "x", Username: "bob"}), "only client bans are scoped")

	allocs := testing.AllocsPerRun(100, func() { b.Banned(Identity{ClientID: "c", Username: "u"}, t0) })
	assert.Zero(t, allocs)
}

// A flood of automatic bans (a client dodging bans with new client IDs,
// guessers on many addresses) keeps the list within its bounds and never
// drops an operator's ban.
func TestBanListBounds(t *testing.T) {
	b := Bans{MaxAutomatic: 100, MaxScopedPerUser: 4}
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "keep-me", By: "admin"}))
	for i := range 10 {
		require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: fmt.Sprint("c", i), Username: "dodger", Automatic: true,
			Until: t0.Add(time.Hour), By: "flapping"}))
	}
	ban, banned := b.Banned(Identity{ClientID: "brand-new", Username: "dodger"}, t0)
	require.True(t, banned, "past 4 client bans, the username is banned")
	assert.Equal(t, BanUsername, ban.Kind)
	assert.Contains(t, ban.Reason, "more than 4 automatic client bans")

	for i := range 1000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		require.NoError(t, b.Add(Ban{Kind: BanIP, Value: addr.String(), Automatic: true, By: "auth-failures",
			Until: t0.Add(time.Duration(i) * time.Second)}))
	}
	assert.LessOrEqual(t, b.Len(), 101, "100 automatic bans and the operator's")
	_, banned = b.Banned(Identity{ClientID: "keep-me"}, t0)
	assert.True(t, banned, "the operator's ban stays")
	_, banned = b.Banned(Identity{Addr: netip.AddrFrom4([4]byte{10, 3, 231, 1})}, t0)
	assert.True(t, banned, "the newest guesser's ban is in")
}
