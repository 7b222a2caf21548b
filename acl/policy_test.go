package acl

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustPolicy(t testing.TB, opts Options, rules ...Rule) *Policy {
	t.Helper()
	p, err := NewPolicy(rules, opts)
	require.NoError(t, err)
	return p
}

func TestDefaultDenyAndDefaultAllow(t *testing.T) {
	rules := []Rule{{Subject: Anyone(), Effect: Allow, Access: Publish, Filter: "a"}}
	c := Client{ID: "c"}
	d := mustPolicy(t, Options{}, rules...).Check(c, Publish, "b")
	assert.False(t, d.Allowed)
	assert.Equal(t, ReasonDefault, d.Reason)
	assert.True(t, mustPolicy(t, Options{DefaultAllow: true}, rules...).Check(c, Publish, "b").Allowed)

	var nilPolicy *Policy
	assert.Equal(t, Decision{Reason: ReasonNoPolicy}, nilPolicy.Check(c, Publish, "a"))
	var h Holder
	assert.False(t, h.Check(c, Publish, "a").Allowed)
}

func TestPrecedence(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: All, Filter: "a/#", Line: 1},
		Rule{Subject: Anyone(), Effect: Deny, Access: All, Filter: "a/secret/#", Line: 2},
		Rule{Subject: User("root"), Effect: Allow, Access: All, Filter: "a/secret/#", Priority: 5, Line: 3},
		Rule{Subject: Anyone(), Effect: Allow, Access: All, Filter: "a/+", Line: 4},
	)
	alice := Client{ID: "1", Username: "alice"}
	root := Client{ID: "2", Username: "root"}

	d := p.Check(alice, Publish, "a/secret/x")
	assert.False(t, d.Allowed, "deny beats allow at the same priority")
	assert.Equal(t, 2, d.Rule.Line)
	assert.True(t, p.Check(root, Publish, "a/secret/x").Allowed, "a higher priority allow beats a deny")
	assert.Equal(t, 1, p.Check(alice, Publish, "a/b").Rule.Line, "the earliest of equal rules decides")
}

func TestSubjects(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anonymous(), Effect: Allow, Access: Publish, Filter: "anon", Line: 1},
		Rule{Subject: User("alice"), Effect: Allow, Access: Publish, Filter: "user", Line: 2},
		Rule{Subject: ClientID("dev-1"), Effect: Allow, Access: Publish, Filter: "client", Line: 3},
		Rule{Subject: ClientIDPrefix("dev-"), Effect: Allow, Access: Publish, Filter: "prefix", Line: 4},
		Rule{Subject: ClientIDPrefix("dev-9"), Effect: Allow, Access: Publish, Filter: "prefix9", Line: 5},
		Rule{Subject: Network(netip.MustParsePrefix("10.0.0.0/8")), Effect: Allow, Access: Publish, Filter: "net", Line: 6},
		Rule{Subject: Network(netip.MustParsePrefix("fd00::/8")), Effect: Allow, Access: Publish, Filter: "net6", Line: 7},
		Rule{Subject: CommonName("sensor-7"), Effect: Allow, Access: Publish, Filter: "cn", Line: 8},
	)
	cases := []struct {
		c     Client
		topic string
		want  bool
	}{
		{Client{ID: "x"}, "anon", true},
		{Client{ID: "x", Username: "alice"}, "anon", false},
		{Client{ID: "x", Username: "alice"}, "user", true},
		{Client{ID: "x", Username: "bob"}, "user", false},
		{Client{ID: "dev-1"}, "client", true},
		{Client{ID: "dev-12"}, "client", false},
		{Client{ID: "dev-12"}, "prefix", true},
		{Client{ID: "dev-"}, "prefix", true},
		{Client{ID: "de"}, "prefix", false},
		{Client{ID: "dev-99"}, "prefix9", true},
		{Client{ID: "x", Addr: netip.MustParseAddr("10.9.8.7")}, "net", true},
		{Client{ID: "x", Addr: netip.MustParseAddr("::ffff:10.9.8.7")}, "net", true}, // mapped v4
		{Client{ID: "x", Addr: netip.MustParseAddr("11.0.0.1")}, "net", false},
		{Client{ID: "x"}, "net", false}, // no address
		{Client{ID: "x", Addr: netip.MustParseAddr("fd12::1")}, "net6", true},
		{Client{ID: "x", CommonName: "sensor-7"}, "cn", true},
		{Client{ID: "sensor-7"}, "cn", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, p.Check(c.c, Publish, c.topic).Allowed, "%+v %s", c.c, c.topic)
	}
}

// The "Malicious" identities of mosquitto 2.1's own tests, and more: a
// placeholder matches one whole level of a safe identity, nothing else.
func TestPlaceholdersAreOneLevel(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: All, Filter: "users/%u/#"},
		Rule{Subject: Anyone(), Effect: Allow, Access: All, Filter: "clients/${clientid}/+"},
		Rule{Subject: Anyone(), Effect: Allow, Access: All, Filter: "%c"},
	)
	cases := []struct {
		id, user, topic string
		a               Access
		want            bool
	}{
		{"c", "alice", "users/alice/x", Publish, true},
		{"c", "alice", "users/alice", Publish, true},
		{"c", "a/b", "users/a/b/x", Publish, false}, // '/' in the identity
		{"c", "a", "users/a/b/x", Publish, true},    // user a owns its subtree
		{"c", "+", "users/bob/x", Publish, false},   // '+' in the identity
		{"c", "#", "users/bob/x", Publish, false},
		{"c", "", "users//x", Publish, false}, // empty identity
		{"c", "alice", "users/+/#", Subscribe, false},
		{"c", "+", "users/+/#", Subscribe, false},
		{"c", "alice", "users/alice/#", Subscribe, true},
		{"dev1", "", "clients/dev1/t", Publish, true},
		{"dev1", "", "clients/dev1/t/u", Publish, false},
		{"dev1", "", "clients/dev2/t", Publish, false},
		{"clientid/test", "", "clientid/test", Publish, false},
		{"/", "", "/", Publish, false},
		{"guest", "", "gues", Publish, false},
		{"guest", "", "guest", Publish, true},
		{"+", "", "clientid", Publish, false},
		{"+", "", "+", Subscribe, false},
		{"#", "", "#", Subscribe, false},
	}
	for _, c := range cases {
		got := p.Check(Client{ID: c.id, Username: c.user}, c.a, c.topic).Allowed
		assert.Equal(t, c.want, got, "id %q user %q %s %q", c.id, c.user, c.a, c.topic)
	}
}

func TestSubscribeUsesCoversAndIntersects(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: Read, Filter: "a/+"},
		Rule{Subject: Anyone(), Effect: Allow, Access: Read, Filter: "b/#"},
		Rule{Subject: Anyone(), Effect: Deny, Access: Read, Filter: "b/secret/#"},
		// Above the deny rule's priority: that deny intersects "#".
		Rule{Subject: User("monitor"), Effect: Allow, Access: Subscribe, Filter: "#", Priority: 1},
		Rule{Subject: User("monitor"), Effect: Allow, Access: Receive, Filter: "sensors/#"},
	)
	c := Client{ID: "c"}
	assert.True(t, p.Check(c, Subscribe, "a/x").Allowed)
	assert.False(t, p.Check(c, Subscribe, "a/#").Allowed, "a/+ does not cover a/#")
	assert.True(t, p.Check(c, Subscribe, "b/open/+").Allowed)
	assert.False(t, p.Check(c, Subscribe, "b/#").Allowed, "the deny rule intersects b/#")
	assert.False(t, p.Check(c, Subscribe, "b/+/x").Allowed, "b/secret/x would match")
	assert.True(t, p.Check(c, Receive, "b/open").Allowed)
	assert.False(t, p.Check(c, Receive, "b/secret/x").Allowed)

	// Subscribe to "#" where the policy says so, receive only what it may.
	m := Client{ID: "m", Username: "monitor"}
	assert.True(t, p.Check(m, Subscribe, "#").Allowed)
	assert.True(t, p.Check(m, Receive, "sensors/t1").Allowed)
	assert.False(t, p.Check(m, Receive, "b/secret/x").Allowed)
	assert.False(t, p.Check(m, Receive, "x/y").Allowed)
}

func TestSharedSubscriptions(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: Read, Filter: "jobs/#"},
		Rule{Subject: Anyone(), Effect: Deny, Access: Subscribe, Filter: "$share/blocked/#"},
		Rule{Subject: User("worker"), Effect: Allow, Access: Subscribe, Filter: "$share/workers/tasks/+"},
	)
	c := Client{ID: "c"}
	w := Client{ID: "w", Username: "worker"}
	assert.True(t, p.Check(c, Subscribe, "$share/any/jobs/+").Allowed, "a plain rule judges the inner filter")
	assert.False(t, p.Check(c, Subscribe, "$share/blocked/jobs/x").Allowed, "a shared deny refuses that group")
	assert.True(t, p.Check(c, Subscribe, "jobs/x").Allowed, "a shared deny does not touch plain subscriptions")
	assert.True(t, p.Check(w, Subscribe, "$share/workers/tasks/1").Allowed)
	assert.False(t, p.Check(w, Subscribe, "$share/others/tasks/1").Allowed)
	assert.False(t, p.Check(w, Subscribe, "tasks/1").Allowed, "a shared rule grants only the group")
	assert.False(t, p.Check(w, Receive, "tasks/1").Allowed, "a shared rule never grants receive")
}

func TestConditions(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: Publish, Filter: "t/#", QoS: QoS(0, 1)},
		Rule{Subject: Anyone(), Effect: Deny, Access: Publish, Filter: "t/#", Retain: RetainedOnly},
		Rule{Subject: Anyone(), Effect: Allow, Access: Publish, Filter: "u/#"},
	)
	c := Client{ID: "c"}
	assert.True(t, p.CheckMessage(c, Publish, "t/x", 1, false).Allowed)
	assert.False(t, p.CheckMessage(c, Publish, "t/x", 2, false).Allowed, "QoS 2 is not in the set")
	assert.False(t, p.CheckMessage(c, Publish, "t/x", 0, true).Allowed, "retained is denied")
	// Without message attributes, conditions fail closed.
	assert.False(t, p.Check(c, Publish, "t/x").Allowed)
	assert.True(t, p.Check(c, Publish, "u/x").Allowed)
	// ... unless the question is whether any message could pass.
	assert.True(t, p.CheckAnyMessage(c, Publish, "t/x").Allowed)
	assert.False(t, p.CheckAnyMessage(c, Publish, "v/x").Allowed, "no rule at all")
}

// CheckAnyMessage never refuses a topic on which some message would be
// allowed: it is the filter a broker applies before it knows the QoS
// and retain flag, and a wrong refusal there would lose a message.
// Checked exhaustively over every pair of conditional rules from a set
// that covers each kind of condition, both effects and priorities.
func TestCheckAnyMessageIsNeverStricterThanCheckMessage(t *testing.T) {
	var pool []Rule
	for _, eff := range []Effect{Allow, Deny} {
		for _, q := range []QoSSet{0, QoS(0), QoS(1, 2), QoS(2)} {
			for _, r := range []RetainCond{AnyRetain, RetainedOnly, NotRetained} {
				for _, prio := range []int{0, 1} {
					pool = append(pool, Rule{Subject: Anyone(), Effect: eff, Access: Receive, Filter: "t/#", QoS: q, Retain: r, Priority: prio})
				}
			}
		}
	}
	c := Client{ID: "c"}
	for i := range pool {
		for j := i; j < len(pool); j++ {
			p := mustPolicy(t, Options{}, pool[i], pool[j])
			some := false
			for qos := byte(0); qos <= 2; qos++ {
				for _, retain := range []bool{false, true} {
					some = some || p.CheckMessage(c, Receive, "t/x", qos, retain).Allowed
				}
			}
			if some {
				require.True(t, p.CheckAnyMessage(c, Receive, "t/x").Allowed, "%+v\n%+v", pool[i], pool[j])
			}
		}
	}
}

func TestInvalidAndReserved(t *testing.T) {
	p := mustPolicy(t, Options{DefaultAllow: true})
	c := Client{ID: "c"}
	for _, x := range []struct {
		a     Access
		topic string
		r     Reason
	}{
		{Publish, "a/+", ReasonInvalid},
		{Publish, "", ReasonInvalid},
		{Receive, "a\x00", ReasonInvalid},
		{Subscribe, "a/#/b", ReasonInvalid},
		{Publish, "$SYS/broker/x", ReasonReserved},
		{Publish, "$share/g/x", ReasonReserved},
		{Receive, "$share/g/x", ReasonReserved},
		{Publish | Receive, "a", ReasonInvalid}, // one access at a time
	} {
		d := p.Check(c, x.a, x.topic)
		assert.False(t, d.Allowed, "%s %q", x.a, x.topic)
		assert.Equal(t, x.r, d.Reason, "%s %q", x.a, x.topic)
	}
	assert.True(t, p.Check(c, Publish, "$SYS/broker/connection/bridge1/state").Allowed)
	assert.True(t, p.Check(c, Receive, "$SYS/broker/uptime").Allowed)
}

func TestNewPolicyRejectsBadRules(t *testing.T) {
	bad := []Rule{
		{Subject: Anyone(), Access: All, Filter: "a"},                                     // no effect
		{Subject: Anyone(), Effect: Allow, Filter: "a"},                                   // no access
		{Subject: Anyone(), Effect: Allow, Access: All, Filter: "a/#/b"},                  // bad filter
		{Subject: User(""), Effect: Allow, Access: All, Filter: "a"},                      // empty name
		{Subject: Subject{Kind: KindNetwork}, Effect: Allow, Access: All, Filter: "a"},    // no prefix
		{Subject: Anyone(), Effect: Allow, Access: All, Filter: "a", QoS: QoSSet(1 << 3)}, // QoS 3
	}
	for i, r := range bad {
		r.Source, r.Line = "policy.json", 10+i
		_, err := NewPolicy([]Rule{r}, Options{})
		require.Error(t, err, "%+v", r)
		assert.Contains(t, err.Error(), "policy.json:1", "%v", err)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	p := mustPolicy(t, Options{},
		Rule{Subject: Anyone(), Effect: Allow, Access: Write, Filter: "devices/%c/#"},
		Rule{Subject: User("alice"), Effect: Allow, Access: Read, Filter: "home/alice/#"},
		Rule{Subject: Network(netip.MustParsePrefix("10.0.0.0/8")), Effect: Deny, Access: All, Filter: "admin/#"},
		Rule{Subject: ClientIDPrefix("dev"), Effect: Allow, Access: Read, Filter: "fw/+"},
	)
	// Identities built from a reused buffer, as a broker would.
	buf := []byte("dev-42alice")
	c := Client{ID: string(buf[:6]), Username: string(buf[6:]), Addr: netip.MustParseAddr("10.1.2.3")}
	allocs := testing.AllocsPerRun(200, func() {
		p.Check(c, Publish, "devices/dev-42/telemetry")
		p.Check(c, Receive, "home/alice/lamp")
		p.Check(c, Subscribe, "home/alice/+")
		p.Check(c, Subscribe, "fw/#")
	})
	assert.Zero(t, allocs)
}

func TestParseSubject(t *testing.T) {
	for in, want := range map[string]Subject{
		"anyone":            Anyone(),
		"anonymous":         Anonymous(),
		"user:a b":          User("a b"),
		"client:x:y":        ClientID("x:y"),
		"client-prefix:dev": ClientIDPrefix("dev"),
		"ip:10.1.2.3/8":     Network(netip.MustParsePrefix("10.0.0.0/8")),
		"ip:10.1.2.3":       Network(netip.MustParsePrefix("10.1.2.3/32")),
		"cn:sensor":         CommonName("sensor"),
	} {
		got, err := ParseSubject(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		if !strings.HasPrefix(in, "ip:10.1.2.3") {
			assert.Equal(t, in, got.String())
		}
	}
	for _, in := range []string{"", "user:", "nobody", "ip:300.1.1.1", "group:x"} {
		_, err := ParseSubject(in)
		assert.Error(t, err, in)
	}
}
