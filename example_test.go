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
		Mode:      trust.EnforceFull,
		Passwords: passwd.NewHolder(pw),
		ACL:       acl.NewHolder(pol),
		Trust:     tracker,
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
	fmt.Println("connect:", d, "v3 code", mqttguard.V3Code(d.Code))
	// Output:
	// connect: allow
	// publish: allow
	// publish: reject 0x87 by acl: no rule matched
	// connect: reject 0x86 by password "sensor1": bad username or password v3 code 4
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
	// allow (observed: would reject 0x96) by rate-limit "messages per client": chatty
}
