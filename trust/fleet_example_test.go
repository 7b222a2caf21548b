package trust_test

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// Two brokers' ban lists kept in step by hand, as a BanStore's
// notifications keep them (package redisstore does it through Redis): a
// change made on one goes out through OnChange and comes in on the other
// through Apply, which kicks but does not echo.
func ExampleBans_Apply() {
	var a, b trust.Bans
	a.WatchChanges(func(c trust.BanChange) { b.Apply(c) })
	b.WatchAdded(func(ban trust.Ban) { fmt.Println("broker b kicks", ban.Kind, ban.Value) })
	b.WatchChanges(func(trust.BanChange) { fmt.Println("never: b made no change") })

	a.Add(trust.Ban{Kind: trust.BanClientID, Value: "dev-7", Reason: "stolen"})
	_, banned := b.Banned(trust.Identity{ClientID: "dev-7"}, time.Now())
	fmt.Println("banned on b:", banned)
	a.Remove(trust.BanClientID, "dev-7")
	_, banned = b.Banned(trust.Identity{ClientID: "dev-7"}, time.Now())
	fmt.Println("banned on b:", banned)
	// Output:
	// broker b kicks client dev-7
	// banned on b: true
	// banned on b: false
}

// A client disconnected for abuse on one broker is disconnected on the
// next one it tries, for the rest of the same ban period.
func ExampleTracker_Adopt() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, _ := trust.New(trust.Config{Mode: trust.EnforceFull})
	b, _ := trust.New(trust.Config{Mode: trust.EnforceFull, OnTransition: func(x trust.Transition) {
		fmt.Printf("b: %s %s -> %s (%s)\n", x.Key, x.From, x.To, x.Reason)
	}})
	rogue := trust.Identity{ClientID: "rogue"}
	for i := 0; i < 3; i++ {
		a.Violation(rogue, trust.Malformed, now.Add(time.Duration(i)*time.Second)) // a second apart: three offences
	}
	rec, _ := a.Record(trust.ByClientID, "rogue", "", now)
	b.Adopt(rec, now.Add(time.Second)) // what a RecordStore delivers
	fmt.Println(b.State(rogue, now.Add(time.Minute)))
	// Output:
	// b: rogue normal -> disconnected (adopted from another broker)
	// disconnected
}
