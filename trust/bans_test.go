package trust

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBansMatchEveryKind(t *testing.T) {
	var b Bans
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "evil-1", Reason: "flood", By: "admin"}))
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "mallory"}))
	require.NoError(t, b.Add(Ban{Kind: BanIP, Value: "::ffff:192.0.2.7"})) // mapped form is canonicalised
	require.NoError(t, b.Add(Ban{Kind: BanCIDR, Value: "198.51.100.77/24", Reason: "wide"}))
	require.NoError(t, b.Add(Ban{Kind: BanCIDR, Value: "198.51.100.128/25", Reason: "narrow"}))
	require.NoError(t, b.Add(Ban{Kind: BanCIDR, Value: "2001:db8::/32"}))

	for _, c := range []struct {
		id     Identity
		banned bool
		value  string
	}{
		{Identity{ClientID: "evil-1"}, true, "evil-1"},
		{Identity{ClientID: "good", Username: "mallory"}, true, "mallory"},
		{Identity{ClientID: "good", Addr: netip.MustParseAddr("192.0.2.7")}, true, "192.0.2.7"},
		{Identity{ClientID: "good", Addr: netip.MustParseAddr("198.51.100.9")}, true, "198.51.100.0/24"},
		{Identity{ClientID: "good", Addr: netip.MustParseAddr("198.51.100.200")}, true, "198.51.100.128/25"}, // most specific
		{Identity{ClientID: "good", Addr: netip.MustParseAddr("::ffff:198.51.100.9")}, true, "198.51.100.0/24"},
		{Identity{ClientID: "good", Addr: netip.MustParseAddr("2001:db8:1::5")}, true, "2001:db8::/32"},
		{Identity{ClientID: "good", Username: "alice", Addr: netip.MustParseAddr("203.0.113.1")}, false, ""},
		{Identity{}, false, ""},
	} {
		ban, ok := b.Banned(c.id, t0)
		assert.Equal(t, c.banned, ok, "%+v", c.id)
		assert.Equal(t, c.value, ban.Value, "%+v", c.id)
	}
	assert.Equal(t, 6, b.Len())
	assert.True(t, b.Remove(BanCIDR, "198.51.100.128/25"))
	assert.False(t, b.Remove(BanCIDR, "198.51.100.128/25"))
	assert.True(t, b.Remove(BanIP, "192.0.2.7"))
	_, ok := b.Banned(Identity{Addr: netip.MustParseAddr("192.0.2.7")}, t0)
	assert.False(t, ok)
}

func TestBanErrors(t *testing.T) {
	var b Bans
	for _, ban := range []Ban{
		{Kind: BanClientID},
		{Kind: BanIP, Value: "10.0.0.0/8"},
		{Kind: BanCIDR, Value: "10.0.0.1"},
		{Kind: 9, Value: "x"},
	} {
		assert.Error(t, b.Add(ban), "%+v", ban)
	}
	assert.Equal(t, 0, b.Len())
}

func TestBansExpire(t *testing.T) {
	var b Bans
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "c", Until: t0.Add(time.Hour)}))
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "u"})) // permanent
	_, ok := b.Banned(Identity{ClientID: "c"}, t0.Add(59*time.Minute))
	assert.True(t, ok)
	_, ok = b.Banned(Identity{ClientID: "c"}, t0.Add(time.Hour))
	assert.False(t, ok, "an expired ban stops matching at once")
	list := b.List(t0.Add(2 * time.Hour))
	require.Len(t, list, 1)
	assert.Equal(t, "u", list[0].Value)
	assert.True(t, list[0].Permanent())
	assert.Equal(t, 1, b.Len(), "List drops expired bans")
}

func TestBanFileRoundTrip(t *testing.T) {
	var b Bans
	bans := []Ban{
		{Kind: BanClientID, Value: "c1", Until: t0.Add(time.Hour), At: t0, By: "trust", Reason: "disconnected"},
		{Kind: BanUsername, Value: "user with spaces", By: "admin"},
		{Kind: BanIP, Value: "192.0.2.1"},
		{Kind: BanCIDR, Value: "10.0.0.0/8", Reason: "lab"},
	}
	for _, x := range bans {
		require.NoError(t, b.Add(x))
	}
	path := filepath.Join(t.TempDir(), "bans.jsonl")
	require.NoError(t, b.SaveFile(path, t0))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(data), "\n"))
	assert.Contains(t, string(data), `"kind":"cidr"`)

	var loaded Bans
	require.NoError(t, loaded.LoadFile(path, t0))
	assert.Equal(t, b.List(t0), loaded.List(t0))
	// Expired bans are not loaded back.
	var later Bans
	require.NoError(t, later.LoadFile(path, t0.Add(2*time.Hour)))
	assert.Equal(t, 3, later.Len())
	// A missing file is an empty list.
	var none Bans
	assert.NoError(t, none.LoadFile(filepath.Join(t.TempDir(), "absent"), t0))
}

func TestCorruptBanFileLosesNothingElse(t *testing.T) {
	var b Bans
	require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: "already-banned"}))
	file := strings.Join([]string{
		`{"kind":"client","value":"a"}`,
		`{"kind":"client","value":"b"`, // truncated
		`# a comment`,
		``,
		`{"kind":"galaxy","value":"c"}`,
		`{"kind":"ip","value":"not-an-ip"}`,
		`{"kind":"username","value":"d","colour":"red"}`,
		`{"kind":"cidr","value":"10.1.0.0/16"}`,
	}, "\n")
	err := b.Load(strings.NewReader(file), t0)
	var bfe *BanFileError
	require.True(t, errors.As(err, &bfe), "%v", err)
	var lines []int
	for _, l := range bfe.Lines {
		lines = append(lines, l.Line)
	}
	assert.Equal(t, []int{2, 5, 6, 7}, lines)
	assert.Contains(t, err.Error(), "line 5: not a ban object: unknown ban kind")
	for _, v := range []Identity{{ClientID: "a"}, {ClientID: "already-banned"}, {Addr: netip.MustParseAddr("10.1.2.3")}} {
		_, ok := b.Banned(v, t0)
		assert.True(t, ok, "%+v must stay banned", v)
	}
}

func TestWatchAdded(t *testing.T) {
	var got []Ban
	var b Bans
	b.WatchAdded(func(x Ban) { got = append(got, x) })
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "u"}))
	require.Len(t, got, 1)
	assert.Equal(t, "u", got[0].Value)
}

func TestBannedDoesNotAllocate(t *testing.T) {
	var b Bans
	for i := 0; i < 1000; i++ {
		require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: fmt.Sprint("c", i)}))
		require.NoError(t, b.Add(Ban{Kind: BanCIDR, Value: fmt.Sprintf("10.%d.0.0/16", i%256)}))
	}
	id := Identity{ClientID: "c500", Username: "u", Addr: netip.MustParseAddr("192.0.2.1")}
	allocs := testing.AllocsPerRun(1000, func() { b.Banned(id, t0) })
	assert.Zero(t, allocs)
}

func FuzzBanFile(f *testing.F) {
	f.Add(`{"kind":"client","value":"a","until":"2030-01-01T00:00:00Z"}` + "\n" + `{"kind":"cidr","value":"::/0"}`)
	f.Add("garbage\n\n#x\n{}")
	f.Fuzz(func(t *testing.T, in string) {
		var b Bans
		err := b.Load(strings.NewReader(in), t0)
		if err != nil {
			var bfe *BanFileError
			if !errors.As(err, &bfe) || len(bfe.Lines) == 0 {
				t.Fatalf("error without line numbers: %v", err)
			}
		}
		// Whatever loaded must survive a save and load unchanged.
		var buf bytes.Buffer
		if err := b.Save(&buf, t0); err != nil {
			t.Fatal(err)
		}
		var again Bans
		if err := again.Load(&buf, t0); err != nil {
			t.Fatalf("a saved list must load back: %v\n%s", err, buf.String())
		}
		if fmt.Sprint(again.List(t0)) != fmt.Sprint(b.List(t0)) {
			t.Fatalf("round trip changed the list:\n%v\n%v", b.List(t0), again.List(t0))
		}
	})
}

// Matches is what a broker asks of every live session when a ban is
// made: a scoped client ban covers only that account's client ID, an
// address ban the address in either form.
func TestBanMatches(t *testing.T) {
	at := netip.MustParseAddr("10.0.0.7")
	id := Identity{ClientID: "dev-1", Username: "alice", Addr: at}
	for _, tc := range []struct {
		ban  Ban
		want bool
	}{
		{Ban{Kind: BanClientID, Value: "dev-1"}, true},
		{Ban{Kind: BanClientID, Value: "dev-1", Username: "alice"}, true},
		{Ban{Kind: BanClientID, Value: "dev-1", Username: "mallory"}, false}, // mallory's dev-1, not alice's
		{Ban{Kind: BanClientID, Value: "dev-2"}, false},
		{Ban{Kind: BanUsername, Value: "alice"}, true},
		{Ban{Kind: BanUsername, Value: "bob"}, false},
		{Ban{Kind: BanIP, Value: "10.0.0.7"}, true},
		{Ban{Kind: BanIP, Value: "::ffff:10.0.0.7"}, true},
		{Ban{Kind: BanIP, Value: "10.0.0.8"}, false},
		{Ban{Kind: BanCIDR, Value: "10.0.0.0/24"}, true},
		{Ban{Kind: BanCIDR, Value: "10.0.1.0/24"}, false},
		{Ban{Kind: BanIP, Value: "not an address"}, false},
	} {
		assert.Equal(t, tc.want, tc.ban.Matches(id), "%+v", tc.ban)
	}
	assert.False(t, Ban{Kind: BanUsername, Value: ""}.Matches(Identity{ClientID: "anon"}), "an empty username ban matches no anonymous client")
	assert.False(t, Ban{Kind: BanIP, Value: "10.0.0.7"}.Matches(Identity{ClientID: "dev-1"}), "no address, no match")
}
