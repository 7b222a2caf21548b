package acl_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttguard/mqttguard/acl"
)

func ExampleMatch() {
	fmt.Println(acl.Match("sport/#", "sport"))
	fmt.Println(acl.Match("sport/+", "sport/"))
	fmt.Println(acl.Match("#", "$SYS/uptime"))
	fmt.Println(acl.Match("a/#", "a/$x"))
	// Output:
	// true
	// true
	// false
	// true
}

func ExampleCovers() {
	// The check a SUBSCRIBE needs against an allow rule.
	fmt.Println(acl.Covers("a/#", "a/+"))
	fmt.Println(acl.Covers("a/+", "a/#"))
	fmt.Println(acl.Covers("+/#", "#"))
	// Output:
	// true
	// false
	// true
}

func ExampleIntersects() {
	// The check a SUBSCRIBE needs against a deny rule.
	fmt.Println(acl.Intersects("a/secret/#", "a/#"))
	fmt.Println(acl.Intersects("+/x", "$SYS/x"))
	// Output:
	// true
	// false
}

func ExampleValidFilter() {
	fmt.Println(acl.ValidFilter("sensors/+/temperature"))
	fmt.Println(acl.ValidFilter("sensors/#/temperature"))
	fmt.Println(acl.ValidFilter("$share//x"))
	// Output:
	// <nil>
	// invalid topic filter "sensors/#/temperature": '#' must be alone in the last level at byte 8 [MQTT-4.7.1-1]
	// invalid topic filter "$share//x": share name must be at least one character at byte 7 [MQTT-4.8.2-1]
}

func ExampleValidTopic() {
	fmt.Println(acl.ValidTopic("sensors/t1/temperature"))
	fmt.Println(acl.ValidTopic("sensors/+"))
	// Output:
	// <nil>
	// invalid topic name "sensors/+": wildcard '+' is not allowed in a topic name at byte 8 [MQTT-4.7.0-1]
}

func ExampleParseMosquitto() {
	p, err := acl.ParseMosquitto(strings.NewReader(`
user dashboard
topic read sensors/#

pattern write sensors/%u/#
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	sensor := acl.Client{ID: "t1", Username: "t1"}
	fmt.Println(p.Check(sensor, acl.Publish, "sensors/t1/temperature"))
	fmt.Println(p.Check(sensor, acl.Publish, "sensors/t2/temperature"))
	// A username with '/' never satisfies %u (mosquitto 2.0 lets it in).
	fmt.Println(p.Check(acl.Client{ID: "x", Username: "t1/x"}, acl.Publish, "sensors/t1/x/y").Allowed)
	// Output:
	// allowed by :5: pattern write sensors/%u/#
	// denied: no rule matched
	// false
}

func ExampleParseJSON() {
	p, err := acl.ParseJSON(strings.NewReader(`{
  "rules": [
    {"subject": "anyone", "effect": "allow", "access": "all", "filter": "devices/%c/#"},
    {"subject": "ip:10.0.0.0/8", "effect": "deny", "access": "all", "filter": "devices/+/firmware/#", "priority": 1}
  ]
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	inside := acl.Client{ID: "d7", Addr: netip.MustParseAddr("10.1.2.3")}
	fmt.Println(p.Check(inside, acl.Publish, "devices/d7/telemetry").Allowed)
	fmt.Println(p.Check(inside, acl.Publish, "devices/d7/firmware/v2").Allowed)
	// Output:
	// true
	// false
}

func ExampleNewPolicy() {
	p, err := acl.NewPolicy([]acl.Rule{
		{Subject: acl.User("monitor"), Effect: acl.Allow, Access: acl.Subscribe, Filter: "#"},
		{Subject: acl.User("monitor"), Effect: acl.Allow, Access: acl.Receive, Filter: "sensors/#"},
	}, acl.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	monitor := acl.Client{ID: "m1", Username: "monitor"}
	// The monitor may subscribe to everything but receives only sensors.
	fmt.Println(p.Check(monitor, acl.Subscribe, "#").Allowed)
	fmt.Println(p.Check(monitor, acl.Receive, "sensors/t1").Allowed)
	fmt.Println(p.Check(monitor, acl.Receive, "admin/passwords").Allowed)
	// Output:
	// true
	// true
	// false
}

func ExamplePolicy_CheckMessage() {
	p, _ := acl.NewPolicy([]acl.Rule{
		{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.Publish, Filter: "telemetry/#", QoS: acl.QoS(0, 1)},
	}, acl.Options{})
	c := acl.Client{ID: "c"}
	fmt.Println(p.CheckMessage(c, acl.Publish, "telemetry/t", 1, false).Allowed)
	fmt.Println(p.CheckMessage(c, acl.Publish, "telemetry/t", 2, false).Allowed)
	// Output:
	// true
	// false
}

func ExampleHolder() {
	dir, _ := os.MkdirTemp("", "acl")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "acl.conf")
	os.WriteFile(path, []byte("topic readwrite public/#\n"), 0o600)

	p, err := acl.LoadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	h := acl.NewHolder(p)
	// A reload that fails keeps the policy in force.
	os.WriteFile(path, []byte("topci readwrite public/#\n"), 0o600)
	if _, err := h.Reload(path); err != nil {
		fmt.Println("reload failed; still allowed:", h.Check(acl.Client{ID: "x"}, acl.Publish, "public/a").Allowed)
	}
	// Output:
	// reload failed; still allowed: true
}
