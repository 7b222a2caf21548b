package trust_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

func Example() {
	tr, err := trust.New(trust.Config{
		Mode: trust.EnforceFull,
		OnTransition: func(x trust.Transition) {
			fmt.Printf("%s: %s -> %s (%s)\n", x.Key, x.From, x.To, x.Reason)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rogue := trust.Identity{ClientID: "rogue-7"}
	// Six ACL denials within a minute (a burst counts once: a second
	// apart): publishing is switched off.
	for i := 0; i < 6; i++ {
		now = now.Add(time.Second)
		tr.Violation(rogue, trust.ACLDenied, now)
	}
	action, code := tr.Verdict(rogue, now).Publish()
	fmt.Println(action == trust.PublishReject, code == 0x87)
	// Two quiet periods later it is back to Normal, via Throttled.
	tr.State(rogue, now.Add(5*time.Minute))
	// Output:
	// rogue-7: normal -> throttled (violations reached the threshold)
	// rogue-7: throttled -> write-disabled (violations reached the threshold)
	// true true
	// rogue-7: write-disabled -> throttled (quiet period held)
	// rogue-7: throttled -> normal (quiet period held)
}

func ExampleTracker_Multiplier() {
	tr, _ := trust.New(trust.Config{Mode: trust.EnforceFull})
	now := time.Now()
	c := trust.Identity{ClientID: "sensor-1"}
	fmt.Println(tr.Score(c, now), tr.Multiplier(c, now)) // newcomers are low-trust
	tr.Violation(c, trust.RateLimited, now)
	fmt.Println(tr.Score(c, now), tr.Multiplier(c, now))
	// Output:
	// 300 0.8
	// 260 0.8
}

func ExamplePreset() {
	// A staged rollout: observe first, then enforce.
	tr, _ := trust.New(trust.Preset(trust.ObserveOnly))
	now := time.Now()
	c := trust.Identity{ClientID: "c"}
	for i := 0; i < 5; i++ {
		tr.Violation(c, trust.Malformed, now)
	}
	v := tr.Verdict(c, now)
	action, _ := v.Publish()
	fmt.Println(v.State, v.Enforced, action == trust.PublishAllow)
	// Output:
	// throttled false true
}

func ExampleBans() {
	var bans trust.Bans
	bans.Add(trust.Ban{Kind: trust.BanCIDR, Value: "203.0.113.0/24", Reason: "botnet", By: "ops"})
	bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "dev-13", Until: time.Now().Add(time.Hour)})
	ban, banned := bans.Banned(trust.Identity{ClientID: "dev-1", Addr: netip.MustParseAddr("203.0.113.50")}, time.Now())
	fmt.Println(banned, ban.Value, ban.Reason)
	// Output:
	// true 203.0.113.0/24 botnet
}

// A broker asks the gate before it verifies a password it has not
// verified lately, and tells it how the attempt went.
func ExampleAuthGate() {
	g, _ := trust.NewAuthGate(trust.AuthGateConfig{Free: 2, Delay: time.Second, BanAfter: 5})
	guesser := netip.MustParseAddr("192.0.2.66")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		wait, ok := g.Reserve(guesser, "sensor1", now)
		if !ok {
			fmt.Println(i, "busy: refused without verifying")
			continue
		}
		now = now.Add(wait) // the broker waits its turn, then verifies: wrong
		ban := g.Failed(guesser, "sensor1", now)
		fmt.Println(i, "waited", wait, "ban:", ban)
	}
	// Output:
	// 1 waited 0s ban: false
	// 2 waited 0s ban: false
	// 3 waited 0s ban: false
	// 4 waited 1s ban: false
	// 5 waited 2s ban: true
	// 6 waited 4s ban: false
}
