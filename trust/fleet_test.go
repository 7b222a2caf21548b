package trust

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBansOnChangeOnlyForLocalChanges(t *testing.T) {
	var b Bans
	var changes []BanChange
	var added []string
	b.WatchChanges(func(c BanChange) { changes = append(changes, c) })
	b.WatchAdded(func(ban Ban) { added = append(added, ban.Value) })

	require.NoError(t, b.Add(Ban{Kind: BanIP, Value: "::ffff:192.0.2.1", Reason: "local"}))
	assert.True(t, b.Remove(BanIP, "192.0.2.1"))
	assert.False(t, b.Remove(BanIP, "192.0.2.1"), "nothing left to remove: no change reported")
	require.Len(t, changes, 2)
	assert.Equal(t, BanChange{Ban: Ban{Kind: BanIP, Value: "192.0.2.1", Reason: "local"}}, changes[0], "the value is sent normalized")
	assert.Equal(t, BanChange{Ban: Ban{Kind: BanIP, Value: "192.0.2.1"}, Lifted: true}, changes[1])

	// Changes from elsewhere never echo to OnChange; OnAdd fires once per
	// new ban, not again for a repeat.
	remote := Ban{Kind: BanClientID, Value: "dev-9", Until: t0.Add(time.Hour), By: "node-b"}
	require.NoError(t, b.Apply(BanChange{Ban: remote}))
	require.NoError(t, b.Apply(BanChange{Ban: remote}))
	_, banned := b.Banned(Identity{ClientID: "dev-9"}, t0)
	assert.True(t, banned)
	longer := remote
	longer.Until = t0.Add(2 * time.Hour)
	require.NoError(t, b.Apply(BanChange{Ban: longer}))
	require.NoError(t, b.Apply(BanChange{Ban: remote, Lifted: true}))
	_, banned = b.Banned(Identity{ClientID: "dev-9"}, t0)
	assert.False(t, banned)
	assert.Len(t, changes, 2)
	assert.Equal(t, []string{"192.0.2.1", "dev-9", "dev-9"}, added)
	assert.Error(t, b.Apply(BanChange{Ban: Ban{Kind: BanCIDR, Value: "nonsense"}}))
}

func TestBansReplace(t *testing.T) {
	var b Bans
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "keep", Reason: "r"}))
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "lifted-elsewhere"}))
	require.NoError(t, b.Add(Ban{Kind: BanCIDR, Value: "10.0.0.0/8"}))
	var added []string
	b.WatchAdded(func(ban Ban) { added = append(added, ban.Value) })
	b.WatchChanges(func(BanChange) { t.Error("Replace must not report changes to the store") })

	a, r, bad := b.Replace([]Ban{
		{Kind: BanClientID, Value: "keep", Reason: "r"},
		{Kind: BanCIDR, Value: "10.1.2.3/8"}, // same network, normalized
		{Kind: BanIP, Value: "192.0.2.9"},
		{Kind: BanClientID, Value: "expired", Until: t0.Add(-time.Second)},
		{Kind: BanIP, Value: "not an address"},
	}, t0)
	assert.Equal(t, 1, a)
	assert.Equal(t, 1, r)
	assert.Equal(t, 1, bad)
	assert.Equal(t, []string{"192.0.2.9"}, added, "only the new ban kicks")
	var values []string
	for _, ban := range b.List(t0) {
		values = append(values, ban.Value)
	}
	assert.Equal(t, []string{"keep", "192.0.2.9", "10.0.0.0/8"}, values)
	_, banned := b.Banned(Identity{Addr: netip.MustParseAddr("10.9.9.9")}, t0)
	assert.True(t, banned)
}

func TestRecordFollowsClientAcrossTrackers(t *testing.T) {
	cfg := Config{Mode: EnforceFull, UsernameFactor: 0.5}
	a := tracker(t, cfg)
	var seen []Transition
	cfgB := cfg
	cfgB.OnTransition = func(x Transition) { seen = append(seen, x) }
	b := tracker(t, cfgB)

	rogue := Identity{ClientID: "rogue", Username: "fleet"}
	for i := 0; i < 3; i++ {
		a.Violation(rogue, Malformed, t0) // 15 weight units: Disconnected
	}
	require.Equal(t, Disconnected, a.State(rogue, t0))
	rec, ok := a.Record(ByClientID, "rogue", "fleet", t0)
	require.True(t, ok)
	assert.Equal(t, Disconnected, rec.State)
	assert.True(t, rec.Since.Equal(t0))
	assert.Less(t, rec.Score, 300)

	at := t0.Add(time.Second)
	require.NoError(t, b.Adopt(rec, at))
	v := b.Verdict(rogue, at)
	assert.Equal(t, Disconnected, v.State)
	assert.Equal(t, rec.Score, v.Score)
	require.Len(t, seen, 1)
	assert.True(t, seen[0].Adopted)
	assert.Equal(t, "rogue", seen[0].Key)
	assert.Equal(t, Disconnected, seen[0].To)
	assert.Equal(t, "adopted from another broker", seen[0].Reason)

	// Both trackers bring the client down at the same moment: the ban
	// period counts from A's Since, not from the adoption.
	end := t0.Add(cfg.withDefaults().BanDuration)
	assert.Equal(t, Disconnected, b.State(rogue, end.Add(-time.Millisecond)))
	assert.Equal(t, ShadowBanned, b.State(rogue, end))
	assert.Equal(t, ShadowBanned, a.State(rogue, end))

	// A less severe record does not lift a local punishment.
	require.NoError(t, b.Adopt(Record{Dimension: ByClientID, Key: "rogue", Username: "fleet", State: Normal, Since: end, Score: 900, At: end}, end))
	assert.Equal(t, ShadowBanned, b.State(rogue, end))

	// The TTL covers the ban and the steps down to Normal.
	c := cfg.withDefaults()
	assert.Equal(t, c.BanDuration+3*c.QuietPeriod+c.IdleExpiry, a.TTL(rec, t0))
	assert.Equal(t, c.BanDuration+3*c.QuietPeriod+c.IdleExpiry-time.Minute, a.TTL(rec, t0.Add(time.Minute)))
}

func TestAdoptChecksTheRecord(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	assert.Error(t, tr.Adopt(Record{Dimension: ByClientID, Key: "", State: Throttled}, t0))
	assert.Error(t, tr.Adopt(Record{Dimension: ByAddr, Key: "nowhere", State: Throttled}, t0))
	assert.Error(t, tr.Adopt(Record{Dimension: ByClientID, Key: "x", State: 9}, t0))
	assert.Error(t, tr.Adopt(Record{Dimension: 7, Key: "x"}, t0))
	// Dimensions this tracker does not keep are ignored, not created.
	off := tracker(t, Config{Mode: EnforceFull, UsernameFactor: -1})
	require.NoError(t, off.Adopt(Record{Dimension: ByUsername, Key: "acme", State: Disconnected, Since: t0, At: t0}, t0))
	_, ok := off.Record(ByUsername, "acme", "", t0)
	assert.False(t, ok)
	_, ok = tr.Record(ByClientID, "never-seen", "", t0)
	assert.False(t, ok)
}
