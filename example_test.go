package mqttguard_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/trust"
)

// A broker's hooks call the Guard at each decision point and act on the
// Decision.
func Example() {
	pol, _ := acl.ParseMosquitto(strings.NewReader("user sensor1\ntopic write sensors/sensor1/#\n"))
	hash, _ := passwd.HashIterations("s3cret", 1000)
	pw, _ := passwd.ParseMosquitto(strings.NewReader("sensor1:" + hash + "\n"))
	tracker, _ := trust.New(trust.Preset(trust.EnforceFull))

	g, err := mqttguard.New(mqttguard.Config{
		Mode:           trust.EnforceFull,
		Authenticators: []mqttguard.Authenticator{passwd.NewHolder(pw)},
		ACL:            acl.NewHolder(pol),
		Trust:          tracker,
		RateLimits: mqttguard.RateLimits{
			MessagesPerUser: mqttguard.Rate{PerSecond: 50, Burst: 100},
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)

	c, d := g.Connect(ctx, &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("s3cret"), HasPassword: true, Addr: netip.MustParseAddrPort("192.0.2.1:4000"), ProtocolVersion: 5}, now)
	fmt.Println("connect:", d)

	d = g.Publish(ctx, &c, &mqttguard.Message{Topic: "sensors/sensor1/temp", Payload: []byte("21.5"), Subscribers: -1}, now)
	fmt.Println("publish:", d)

	d = g.Publish(ctx, &c, &mqttguard.Message{Topic: "sensors/sensor2/temp", Payload: []byte("99"), Subscribers: -1}, now)
	fmt.Println("publish:", d)

	_, d = g.Connect(ctx, &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("guess"), HasPassword: true, ProtocolVersion: 4}, now)
	fmt.Println("connect:", d, "v3 code", d.Code.V3Connack())
	// Output:
	// connect: allow
	// publish: allow
	// publish: reject 0x87 by acl: no rule matched
	// connect: reject 0x86 by password: bad username or password v3 code 4
}

// In ObserveOnly the abuse layer decides as usual but nothing is
// enforced: the Decision says what would have happened.
func ExampleGuard_Publish_observe() {
	g, _ := mqttguard.New(mqttguard.Config{
		Mode:       trust.ObserveOnly,
		RateLimits: mqttguard.RateLimits{MessagesPerClient: mqttguard.Rate{PerSecond: 1, Burst: 1}},
	})
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	c, _ := g.Connect(ctx, &mqttguard.ConnectRequest{ClientID: "chatty"}, now)
	for range 2 {
		fmt.Println(g.Publish(ctx, &c, &mqttguard.Message{Topic: "t", Subscribers: -1}, now))
	}
	// Output:
	// allow
	// allow (observed: would reject 0x97) by rate-limit "messages per client": chatty
}

// exampleGuard is the Guard of the examples below: sensor1 writes its
// own subtree, the dashboard reads every sensor, and client "rogue-7" is
// banned.
func exampleGuard(filterOnDelivery bool) *mqttguard.Guard {
	pol, _ := acl.ParseMosquitto(strings.NewReader("user sensor1\ntopic write sensors/sensor1/#\n\nuser dashboard\ntopic read sensors/#\n"))
	var lines strings.Builder
	for _, u := range []string{"sensor1", "dashboard"} {
		hash, _ := passwd.HashIterations(u+"-pw", 1000)
		lines.WriteString(u + ":" + hash + "\n")
	}
	pw, _ := passwd.ParseMosquitto(strings.NewReader(lines.String()))
	bans := &trust.Bans{}
	bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "rogue-7", Reason: "flooding"})
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Authenticators: []mqttguard.Authenticator{passwd.NewHolder(pw)},
		ACL: acl.NewHolder(pol), Bans: bans, FilterOnDelivery: filterOnDelivery})
	if err != nil {
		panic(err)
	}
	return g
}

// Connect establishes who a client is (the Client the broker keeps with
// the session) and decides whether it may connect; Code is the CONNACK
// reason code, Code.V3Connack its MQTT 3.1.1 equivalent.
func ExampleGuard_Connect() {
	g := exampleGuard(false)
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	connect := func(id, user, pass string) {
		c, d := g.Connect(ctx, &mqttguard.ConnectRequest{ClientID: id, Username: user, Password: []byte(pass),
			HasPassword: pass != "", Addr: netip.MustParseAddrPort("192.0.2.1:4000"), ProtocolVersion: 5}, now)
		fmt.Printf("%-8s %-10s %v (v3: %d)\n", id, c.Username, d, d.Code.V3Connack())
	}
	connect("s1", "sensor1", "sensor1-pw")
	connect("s1", "sensor1", "guess")
	connect("anon", "", "")
	connect("rogue-7", "sensor1", "sensor1-pw")
	// Output:
	// s1       sensor1    allow (v3: 0)
	// s1       sensor1    reject 0x86 by password: bad username or password (v3: 4)
	// anon                reject 0x87 by password: anonymous clients are not allowed (v3: 5)
	// rogue-7  sensor1    reject 0x8A by ban "client rogue-7": flooding (v3: 5)
}

// Subscribe decides each filter of a SUBSCRIBE: its validity, then the
// ACL — a read rule must cover every topic the filter can match. Code
// goes in the SUBACK.
func ExampleGuard_Subscribe() {
	g := exampleGuard(false)
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	dashboard := &mqttguard.Client{ID: "d1", Username: "dashboard"}
	for _, filter := range []string{"sensors/#", "sensors/+/temperature", "#", "sensors/#/x"} {
		fmt.Printf("%-22s %v\n", filter, g.Subscribe(ctx, dashboard, filter, 1, now))
	}
	// Output:
	// sensors/#              allow
	// sensors/+/temperature  allow
	// #                      reject 0x87 by acl: no rule matched
	// sensors/#/x            reject 0x8F by topic: invalid topic filter "sensors/#/x": '#' must be alone in the last level at byte 8 [MQTT-4.7.1-1]
}

// Deliver is the receive check on each message about to reach a
// subscriber. With FilterOnDelivery, as with mosquitto's acl_file, a
// client may subscribe to '#' and receives only what it may read.
func ExampleGuard_Deliver() {
	g := exampleGuard(true)
	ctx, now := context.Background(), time.Unix(1_800_000_000, 0)
	dashboard := &mqttguard.Client{ID: "d1", Username: "dashboard"}
	fmt.Println("subscribe #:", g.Subscribe(ctx, dashboard, "#", 1, now))
	for _, topic := range []string{"sensors/sensor1/temperature", "admin/users"} {
		d := g.Deliver(dashboard, &mqttguard.Message{Topic: topic, QoS: 1})
		fmt.Printf("%-28s %v\n", topic, d)
	}
	// Output:
	// subscribe #: allow
	// sensors/sensor1/temperature  allow
	// admin/users                  drop by acl: no rule matched
}
