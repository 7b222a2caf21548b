package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/redisstore"
	"github.com/mqttguard/mqttguard/trust"
)

// A broker joins a fleet: its bans and trust records follow the fleet's,
// and the per-user limit holds across every broker. (This example needs
// a Redis server, so go test compiles it without running it; the tests
// beside it start their own redis-server.)
func Example() {
	client, err := redisstore.New(redisstore.Options{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	bans := &trust.Bans{}
	bans.WatchAdded(func(b trust.Ban) { /* kick the sessions b matches */ })
	var fleet *redisstore.Fleet
	tracker, err := trust.New(trust.Config{Mode: trust.EnforceFull, OnTransition: func(t trust.Transition) {
		fleet.Transition(t) // share shadow bans and disconnects
	}})
	if err != nil {
		log.Fatal(err)
	}
	fleet, err = client.NewFleet(redisstore.FleetConfig{Bans: bans, Trust: tracker})
	if err != nil {
		log.Fatal(err)
	}
	fleet.Start()
	defer fleet.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := fleet.WaitSynced(ctx); err != nil {
		log.Print(err) // serve anyway: the Fleet keeps trying
	}

	guard, err := mqttguard.New(mqttguard.Config{
		Mode: trust.EnforceFull, Bans: bans, Trust: tracker,
		RateLimits: mqttguard.RateLimits{
			MessagesPerUser: mqttguard.Rate{PerSecond: 50, Burst: 100},
			Store:           client, // fleet-wide
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = guard // the broker's hooks call guard.Connect, guard.Publish, …
}
