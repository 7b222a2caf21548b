package acl

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/internal/topic"
	"github.com/stretchr/testify/require"
)

// linearCheck is the obvious evaluator: walk every rule, substitute
// placeholders (safe here, because a safe identity is exactly one literal
// level), ask Match, Covers or Intersects, fold by priority. The compiled
// index must answer exactly as this does; the benchmarks use it as the
// "linear scan" baseline.
func linearCheck(rules []Rule, opts Options, c Client, a Access, t string, qos byte, retain, conditions bool) Decision {
	if a == Subscribe {
		if ValidFilter(t) != nil {
			return Decision{Reason: ReasonInvalid}
		}
	} else {
		if ValidTopic(t) != nil {
			return Decision{Reason: ReasonInvalid}
		}
		if t[0] == '$' && reserved(t, a) {
			return Decision{Reason: ReasonReserved}
		}
	}
	var allow, deny *Rule
	var allowIdx, denyIdx int
	unsafe := strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ID, "+#")
	for i := range rules {
		r := &rules[i]
		if r.Access&a == 0 || !subjectApplies(r.Subject, c) || (r.SafeIdentityOnly && unsafe) {
			continue
		}
		if r.QoS != 0 || r.Retain != AnyRetain {
			if !conditions {
				if r.Effect == Allow {
					continue
				}
			} else if !r.QoS.has(qos) || (r.Retain == RetainedOnly && !retain) || (r.Retain == NotRetained && retain) {
				continue
			}
		}
		f, ok := substitute(r, c)
		if !ok {
			continue
		}
		var applies bool
		_, _, ruleShared := topic.SplitShared(f)
		switch {
		case a != Subscribe:
			applies = !ruleShared && Match(f, t)
		case r.Effect == Allow:
			applies = Covers(f, t)
		default:
			rn, _, _ := topic.SplitShared(f)
			tn, _, tShared := topic.SplitShared(t)
			applies = (!ruleShared || (tShared && rn == tn)) && Intersects(f, t)
		}
		if !applies {
			continue
		}
		best, bestIdx := &allow, &allowIdx
		if r.Effect == Deny {
			best, bestIdx = &deny, &denyIdx
		}
		if *best == nil || r.Priority > (*best).Priority {
			*best, *bestIdx = r, i
		}
	}
	switch {
	case deny != nil && (allow == nil || deny.Priority >= allow.Priority):
		return Decision{Reason: ReasonRule, Rule: deny}
	case allow != nil:
		return Decision{Allowed: true, Reason: ReasonRule, Rule: allow}
	}
	return Decision{Allowed: opts.DefaultAllow, Reason: ReasonDefault}
}

func subjectApplies(s Subject, c Client) bool {
	switch s.Kind {
	case KindAnyone:
		return true
	case KindAnonymous:
		return c.Username == ""
	case KindUsername:
		return c.Username != "" && c.Username == s.Name
	case KindClientID:
		return c.ID == s.Name
	case KindClientIDPrefix:
		return strings.HasPrefix(c.ID, s.Name)
	case KindNetwork:
		return c.Addr.IsValid() && s.Network.Contains(c.Addr.Unmap())
	case KindCommonName:
		return c.CommonName != "" && c.CommonName == s.Name
	}
	return false
}

func substitute(r *Rule, c Client) (string, bool) {
	if r.Literal {
		return r.Filter, true
	}
	parts := strings.Split(r.Filter, "/")
	for i, p := range parts {
		u, cl := placeholder(p)
		switch {
		case u:
			if !safeIdentity(c.Username) {
				return "", false
			}
			parts[i] = c.Username
		case cl:
			if !safeIdentity(c.ID) {
				return "", false
			}
			parts[i] = c.ID
		}
	}
	return strings.Join(parts, "/"), true
}

// randomWorld builds random rules and requests over a small vocabulary,
// so that rules and requests collide often.
type randomWorld struct {
	r      *rand.Rand
	levels []string
	users  []string
	ids    []string
}

func newRandomWorld(seed uint64) *randomWorld {
	return &randomWorld{
		r:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		levels: []string{"a", "b", "", "$x", "alice", "dev1"},
		users:  []string{"", "alice", "bob", "a/b", "+", "$x"},
		ids:    []string{"dev1", "dev2", "alice", "d#", "x/y", "a"},
	}
}

func (w *randomWorld) pick(xs []string) string { return xs[w.r.IntN(len(xs))] }

func (w *randomWorld) filter(allowPlaceholders bool) string {
	n := 1 + w.r.IntN(3)
	var parts []string
	for i := 0; i < n; i++ {
		switch k := w.r.IntN(10); {
		case k < 2:
			parts = append(parts, "+")
		case k == 2 && allowPlaceholders:
			parts = append(parts, "%u")
		case k == 3 && allowPlaceholders:
			parts = append(parts, "${clientid}")
		default:
			parts = append(parts, w.pick(w.levels))
		}
	}
	if w.r.IntN(3) == 0 {
		parts = append(parts, "#")
	}
	f := strings.Join(parts, "/")
	if f == "" {
		f = "#"
	}
	if w.r.IntN(12) == 0 {
		f = "$share/" + w.pick([]string{"g", "h"}) + "/" + f
	}
	return f
}

func (w *randomWorld) topic() string {
	n := 1 + w.r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = w.pick(w.levels)
	}
	t := strings.Join(parts, "/")
	if t == "" {
		return "a"
	}
	return t
}

func (w *randomWorld) subject() Subject {
	switch w.r.IntN(8) {
	case 0, 1:
		return Anyone()
	case 2:
		return Anonymous()
	case 3:
		return User(w.pick(w.users[1:]))
	case 4:
		return ClientID(w.pick(w.ids))
	case 5:
		return ClientIDPrefix(w.pick([]string{"d", "dev", "x", "al"}))
	case 6:
		return Network(netip.MustParsePrefix(w.pick([]string{"10.0.0.0/8", "10.1.0.0/16", "192.168.1.7/32", "fd00::/8"})))
	default:
		return CommonName(w.pick([]string{"dev1", "alice"}))
	}
}

func (w *randomWorld) rules(n int) []Rule {
	out := make([]Rule, n)
	for i := range out {
		r := Rule{
			Subject:  w.subject(),
			Effect:   Effect(1 + w.r.IntN(2)),
			Access:   Access(1 + w.r.IntN(7)),
			Filter:   w.filter(true),
			Priority: w.r.IntN(3),
			Literal:  w.r.IntN(10) == 0,
			Line:     i + 1,
		}
		r.SafeIdentityOnly = w.r.IntN(8) == 0
		if w.r.IntN(6) == 0 {
			r.QoS = QoS(byte(w.r.IntN(3)))
		}
		if w.r.IntN(8) == 0 {
			r.Retain = RetainCond(1 + w.r.IntN(2))
		}
		out[i] = r
	}
	return out
}

func (w *randomWorld) client() Client {
	c := Client{ID: w.pick(w.ids), Username: w.pick(w.users)}
	if w.r.IntN(2) == 0 {
		c.Addr = netip.MustParseAddr(w.pick([]string{"10.1.2.3", "10.2.0.1", "192.168.1.7", "::ffff:10.1.0.9", "fd00::1", "2001:db8::1"}))
	}
	if w.r.IntN(3) == 0 {
		c.CommonName = w.pick([]string{"dev1", "alice", "other"})
	}
	return c
}

// sameDecision compares verdicts and the deciding rule's identity.
func sameDecision(a, b Decision) bool {
	if a.Allowed != b.Allowed || a.Reason != b.Reason {
		return false
	}
	if (a.Rule == nil) != (b.Rule == nil) {
		return false
	}
	return a.Rule == nil || a.Rule.Line == b.Rule.Line
}

func describe(d Decision) string {
	if d.Rule != nil {
		return fmt.Sprintf("%v line %d (%s %s %s %q prio %d)", d.Allowed, d.Rule.Line, d.Rule.Effect, d.Rule.Access, d.Rule.Subject, d.Rule.Filter, d.Rule.Priority)
	}
	return fmt.Sprintf("%v %s", d.Allowed, d.Reason)
}

// TestIndexAgreesWithLinearScan is the main correctness test of the
// compiled index: random policies, random clients and requests, every
// access kind, and the deciding rule must be the same as the linear
// reference picks.
func TestIndexAgreesWithLinearScan(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for seed := uint64(1); seed <= uint64(rounds); seed++ {
		w := newRandomWorld(seed)
		rules := w.rules(1 + w.r.IntN(25))
		opts := Options{DefaultAllow: w.r.IntN(4) == 0}
		p, err := NewPolicy(rules, opts)
		require.NoError(t, err)
		for q := 0; q < 200; q++ {
			c := w.client()
			a := []Access{Publish, Subscribe, Receive}[w.r.IntN(3)]
			var target string
			if a == Subscribe {
				target = w.filter(false)
			} else {
				target = w.topic()
			}
			qos, retain, cond := byte(w.r.IntN(3)), w.r.IntN(2) == 0, w.r.IntN(2) == 0
			var got Decision
			if cond {
				got = p.CheckMessage(c, a, target, qos, retain)
			} else {
				got = p.Check(c, a, target)
			}
			want := linearCheck(rules, opts, c, a, target, qos, retain, cond)
			if !sameDecision(got, want) {
				var b strings.Builder
				for i := range rules {
					fmt.Fprintf(&b, "  %d: %s %s %s %q prio %d literal %v safeOnly %v qos %b retain %d\n", i+1, rules[i].Effect, rules[i].Access, rules[i].Subject, rules[i].Filter, rules[i].Priority, rules[i].Literal, rules[i].SafeIdentityOnly, rules[i].QoS, rules[i].Retain)
				}
				t.Fatalf("seed %d: %+v %s %q (qos %d retain %v cond %v):\n index:  %s\n linear: %s\nrules:\n%s",
					seed, c, a, target, qos, retain, cond, describe(got), describe(want), b.String())
			}
		}
	}
}

func FuzzPolicyAgreesWithLinearScan(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(42), uint64(7))
	f.Fuzz(func(t *testing.T, seed, query uint64) {
		w := newRandomWorld(seed)
		rules := w.rules(1 + w.r.IntN(12))
		p, err := NewPolicy(rules, Options{})
		require.NoError(t, err)
		w.r = rand.New(rand.NewPCG(query, seed))
		for i := 0; i < 20; i++ {
			c := w.client()
			for _, a := range []Access{Publish, Subscribe, Receive} {
				target := w.topic()
				if a == Subscribe {
					target = w.filter(false)
				}
				got := p.Check(c, a, target)
				want := linearCheck(rules, Options{}, c, a, target, 0, false, false)
				if !sameDecision(got, want) {
					t.Fatalf("%+v %s %q: index %s, linear %s", c, a, target, describe(got), describe(want))
				}
			}
		}
	})
}
