package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mqttguard/mqttguard/acl"
)

// matchVectors is the vector set every matcher runs over: literal,
// single-level and multi-level wildcards, early and late mismatches,
// '$' topics and a long telemetry topic.
var matchVectors = [][2]string{
	{"sport/tennis/player1", "sport/tennis/player1"},
	{"sport/tennis/+", "sport/tennis/player1"},
	{"sport/#", "sport/tennis/player1/ranking"},
	{"sport/+/player1/#", "sport/tennis/player1/score/wimbledon"},
	{"+/+/+/+/+", "a/b/c/d/e"},
	{"#", "devices/abc/telemetry"},
	{"devices/+/telemetry/#", "devices/60019423a83c/telemetry/temperature/celsius/avg"},
	{"devices/+/telemetry/#", "devices/60019423a83c/status"},
	{"home/alice/#", "home/bob/lamp"},
	{"a/b/c/d/e/f", "a/b/c/d/e/g"},
	{"$SYS/#", "$SYS/broker/clients/connected"},
	{"+/broker/#", "$SYS/broker/uptime"},
	{"factory/line1/+/+/temp", "factory/line1/cell7/robot3/temp"},
	{"factory/line1/+/+/temp", "factory/line2/cell7/robot3/temp"},
	{"a//b", "a//b"},
	{"sensors/+", "sensors/"},
}

// shortVectors are what a fleet's ACL mostly asks: short topics, the
// filters literal or with one '+', hits and misses.
var shortVectors = [][2]string{
	{"sensors/dev1/temp", "sensors/dev1/temp"},
	{"sensors/+/temp", "sensors/dev1/temp"},
	{"sensors/+/temp", "sensors/dev1/hum"},
	{"devices/d42/cmd", "devices/d42/cmd"},
	{"devices/d42/cmd", "devices/d43/cmd"},
	{"home/+/lamp", "home/kitchen/lamp"},
	{"cmd/dev7", "cmd/dev7"},
	{"cmd/dev7", "cmd/dev8"},
	{"a/+", "a/b"},
	{"sensors/#", "sensors/dev1/temp"},
	{"+/status", "dev1/status"},
	{"alerts/fire", "alerts/flood"},
}

// matchSets are the vector sets every matcher runs over.
var matchSets = []struct {
	name    string
	vectors [][2]string
}{{"mixed", matchVectors}, {"short", shortVectors}}

// matchImpls are the matchers compared; mosquitto's C matcher is added by
// acl_mosquitto_test.go when built with -tags mosquittobench.
var matchImpls = map[string]func(b *testing.B, vectors [][2]string){
	"mqttguard": func(b *testing.B, vectors [][2]string) {
		n := 0
		for i := 0; i < b.N; i++ {
			for _, v := range vectors {
				if acl.Match(v[0], v[1]) {
					n++
				}
			}
		}
		sink = n
	},
	// mochi-mqtt v2.7.9's ACL matcher (hooks/auth): it also gets several
	// of these vectors wrong (see acl's tests), which makes it no faster.
	"mochi": func(b *testing.B, vectors [][2]string) {
		n := 0
		for i := 0; i < b.N; i++ {
			for _, v := range vectors {
				if _, ok := auth.MatchTopic(v[0], v[1]); ok {
					n++
				}
			}
		}
		sink = n
	},
}

var sink int

// BenchmarkMatch: one op is one pass over a vector set (ns/match is per
// pair).
func BenchmarkMatch(b *testing.B) {
	for _, set := range matchSets {
		for _, impl := range []string{"mqttguard", "mosquitto", "mochi"} {
			f, ok := matchImpls[impl]
			if !ok {
				continue
			}
			b.Run("vectors="+set.name+"/impl="+impl, func(b *testing.B) {
				b.ReportAllocs()
				f(b, set.vectors)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(set.vectors)), "ns/match")
			})
		}
	}
}

// policyRules builds a realistic policy of about n rules: half of them
// per-user home trees with a deny inside, a quarter per-device publish
// grants, a few patterns and global rules.
func policyRules(n int) []acl.Rule {
	var rules []acl.Rule
	users := n / 4
	for i := 0; i < users; i++ {
		u := fmt.Sprintf("user%d", i)
		rules = append(rules,
			acl.Rule{Subject: acl.User(u), Effect: acl.Allow, Access: acl.All, Filter: "home/" + u + "/#"},
			acl.Rule{Subject: acl.User(u), Effect: acl.Deny, Access: acl.All, Filter: "home/" + u + "/private/#"},
		)
	}
	for i := 0; len(rules) < n-4; i++ {
		rules = append(rules, acl.Rule{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.Publish,
			Filter: fmt.Sprintf("devices/dev%d/telemetry", i)})
	}
	rules = append(rules,
		acl.Rule{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.Publish, Filter: "sensors/%u/#"},
		acl.Rule{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.Read, Filter: "devices/%c/cmd/+"},
		acl.Rule{Subject: acl.Anyone(), Effect: acl.Deny, Access: acl.All, Filter: "admin/#"},
		acl.Rule{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.Read, Filter: "public/#"},
	)
	return rules
}

// aclQueries are the checks each op runs: a user in the middle of the
// user list, hits and misses, a pattern and a device grant.
func aclQueries(n int) []struct {
	c     acl.Client
	a     acl.Access
	topic string
} {
	u := fmt.Sprintf("user%d", n/8)
	c := acl.Client{ID: "dev" + fmt.Sprint(n/3), Username: u}
	return []struct {
		c     acl.Client
		a     acl.Access
		topic string
	}{
		{c, acl.Publish, "home/" + u + "/kitchen/lamp"},
		{c, acl.Publish, "home/" + u + "/private/diary"},
		{c, acl.Receive, "home/someone/else"},
		{c, acl.Publish, "sensors/" + u + "/temp"},
		{c, acl.Publish, fmt.Sprintf("devices/dev%d/telemetry", n/3)},
		{c, acl.Receive, "public/news"},
	}
}

// linearCheck is what a broker without an index does: try every rule.
func linearCheck(rules []acl.Rule, c acl.Client, a acl.Access, topic string) bool {
	allowed, denied := false, false
	for i := range rules {
		r := &rules[i]
		if r.Access&a == 0 {
			continue
		}
		switch r.Subject.Kind {
		case acl.KindUsername:
			if r.Subject.Name != c.Username {
				continue
			}
		case acl.KindAnyone:
		default:
			continue
		}
		f := r.Filter
		if strings.Contains(f, "%") {
			f = strings.ReplaceAll(strings.ReplaceAll(f, "%u", c.Username), "%c", c.ID)
		}
		if acl.Match(f, topic) {
			if r.Effect == acl.Deny {
				denied = true
			} else {
				allowed = true
			}
		}
	}
	return allowed && !denied
}

// BenchmarkACLCheck: one op is one check (the average over aclQueries).
func BenchmarkACLCheck(b *testing.B) {
	for _, n := range []int{100, 10_000, 100_000} {
		rules := policyRules(n)
		p, err := acl.NewPolicy(rules, acl.Options{})
		if err != nil {
			b.Fatal(err)
		}
		qs := aclQueries(n)
		// The index and the linear scan must agree on the verdicts.
		for _, q := range qs {
			if p.Check(q.c, q.a, q.topic).Allowed != linearCheck(rules, q.c, q.a, q.topic) {
				b.Fatalf("index and linear scan disagree on %+v", q)
			}
		}
		b.Run(fmt.Sprintf("rules=%d/impl=mqttguard", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				q := &qs[i%len(qs)]
				p.Check(q.c, q.a, q.topic)
			}
		})
		b.Run(fmt.Sprintf("rules=%d/impl=linear", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				q := &qs[i%len(qs)]
				linearCheck(rules, q.c, q.a, q.topic)
			}
		})
	}
}
