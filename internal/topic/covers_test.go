package topic

import (
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCoversVectors(t *testing.T) {
	cases := []struct {
		rule, filter string
		want         bool
	}{
		{"a/#", "a/+", true},
		{"a/+", "a/#", false}, // EMQX and VerneMQ say true: an ACL bypass
		{"#", "+", true},
		{"+", "#", false},
		{"#", "$SYS/#", false},
		{"$SYS/#", "$SYS/+", true},
		{"$SYS/+", "$SYS/#", false},
		{"+/#", "#", true},    // equal sets: every topic has a first level
		{"+/+/#", "#", false}, // "#" matches the one-level topic "x"
		{"a/#", "a", true},
		{"a/#", "a/secret/#", true},
		{"a/+/#", "a/#", false}, // "a/#" matches "a"
		{"+/+", "a/#", false},
		{"sensors/+/temperature", "sensors/dev1/temperature", true},
		{"sensors/dev1/#", "sensors/+/temperature", false},
		{"$share/g/a/#", "$share/g/a/b", true},
		{"$share/g/a/#", "$share/h/a/b", false},
		{"$share/g/a/#", "a/b", false},
		{"a/#", "$share/g/a/b", true}, // a plain rule covers a shared filter by its inner filter
		{"/+/#", "/#", true},          // "/#" cannot match the empty one-level topic
		{"+/+/#", "/#", true},
		{"$share/", "$share/", false}, // malformed share
		{"a/#", "a/b+", false},        // malformed filter
		{"", "a", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Covers(c.rule, c.filter), "Covers(%q, %q)", c.rule, c.filter)
		assert.Equal(t, c.want, refCovers(c.rule, c.filter), "reference Covers(%q, %q)", c.rule, c.filter)
	}
}

func TestIntersectsVectors(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"a/#", "a/secret/#", true},
		{"a/+", "+/b", true},
		{"a/+", "b/+", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/+", true},
		{"a/#", "a", true},
		{"a/+", "a", false},
		{"a/b", "a/b/#", true},
		{"a/b/c", "a/+", false},
		{"$share/g/a/#", "a/b", true},
		{"a/#b", "a/b", false},
		{"+", "/#", false}, // their only common string is "", which is no topic
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Intersects(c.a, c.b), "Intersects(%q, %q)", c.a, c.b)
		assert.Equal(t, c.want, Intersects(c.b, c.a), "Intersects(%q, %q)", c.b, c.a)
		assert.Equal(t, c.want, refIntersects(c.a, c.b), "reference Intersects(%q, %q)", c.a, c.b)
	}
}

// TestMosquittoCoversVectors runs mosquitto 2.1's sub_matches_acl vectors
// (ACL filter against subscription filter). mosquitto's check is sound but
// conservative; where it refuses a pair whose sets really are covered, the
// case is listed with the reason, and the reference enumerator confirms
// our answer.
func TestMosquittoCoversVectors(t *testing.T) {
	n := 0
	for _, v := range loadMosquittoVectors(t) {
		if v.fn != "mosquitto_sub_matches_acl" {
			continue
		}
		n++
		rule, filter := nullish(v.rule()), nullish(v.topic)
		want := v.match && v.rc == "SUCCESS"
		got := Covers(rule, filter)
		assert.Equal(t, want, got, "line %d: Covers(%q, %q)", v.line, rule, filter)
		assert.Equal(t, refCovers(rule, filter), got, "line %d: reference disagrees on Covers(%q, %q)", v.line, rule, filter)
	}
	assert.Equal(t, 40, n)
}

func (v mosqVector) rule() string { return v.filter }

// TestCoversIsExact checks Covers and Intersects against set semantics on
// every pair of a universe of filters: Covers(r, f) must hold exactly when
// every topic f matches is matched by r, Intersects(a, b) exactly when
// some topic matches both. The topic universe holds every level value the
// filters use plus fresh ones, and one more level than the longest filter,
// which is enough to separate any two filters that differ.
func TestCoversIsExact(t *testing.T) {
	filters := filterUniverse(3)
	topics := universe(5, "a", "$x", "")
	sets := make([]*big.Int, len(filters))
	for i, f := range filters {
		sets[i] = new(big.Int)
		for j, tp := range topics {
			if Match(f, tp) {
				sets[i].SetBit(sets[i], j, 1)
			}
		}
	}
	tmp := new(big.Int)
	for i, r := range filters {
		for j, f := range filters {
			covered := tmp.AndNot(sets[j], sets[i]).Sign() == 0
			if Covers(r, f) != covered {
				t.Fatalf("Covers(%q, %q) = %v, set semantics say %v", r, f, Covers(r, f), covered)
			}
			meet := tmp.And(sets[i], sets[j]).Sign() != 0
			if Intersects(r, f) != meet {
				t.Fatalf("Intersects(%q, %q) = %v, set semantics say %v", r, f, Intersects(r, f), meet)
			}
		}
	}
}

// TestCoversImpliesMatch is the property the ACL relies on: if r covers
// f, every topic f matches, r matches too.
func TestCoversImpliesMatch(t *testing.T) {
	filters := filterUniverse(3)
	topics := universe(4, "a", "$x", "", "b")
	for _, r := range filters {
		for _, f := range filters {
			if !Covers(r, f) {
				continue
			}
			for _, tp := range topics {
				if Match(f, tp) && !Match(r, tp) {
					t.Fatalf("Covers(%q, %q) but %q matches only the filter", r, f, tp)
				}
			}
		}
	}
}

func TestCoversDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		Covers("sensors/+/temperature/#", "sensors/dev1/temperature/+")
		Intersects("sensors/+/temperature/#", "sensors/dev1/#")
	})
	assert.Zero(t, allocs)
}

// small keeps fuzz inputs inside what the enumerating reference can
// decide quickly.
func small(s string) bool { return len(s) <= 24 && strings.Count(s, "/") <= 3 }

func FuzzCovers(f *testing.F) {
	f.Add("a/#", "a/+")
	f.Add("+/#", "#")
	f.Add("$share/g/a/#", "$share/g/a/b")
	f.Add("$SYS/#", "$SYS/+/x")
	f.Fuzz(func(t *testing.T, r, fl string) {
		got := Covers(r, fl)
		if !small(r) || !small(fl) {
			return
		}
		if want := refCovers(r, fl); got != want {
			t.Fatalf("Covers(%q, %q) = %v, reference says %v", r, fl, got, want)
		}
	})
}

func FuzzIntersects(f *testing.F) {
	f.Add("a/#", "a/secret/#")
	f.Add("+/x", "$SYS/x")
	f.Fuzz(func(t *testing.T, a, b string) {
		got := Intersects(a, b)
		if got != Intersects(b, a) {
			t.Fatalf("Intersects is not symmetric on (%q, %q)", a, b)
		}
		if !small(a) || !small(b) {
			return
		}
		if want := refIntersects(a, b); got != want {
			t.Fatalf("Intersects(%q, %q) = %v, reference says %v", a, b, got, want)
		}
	})
}
