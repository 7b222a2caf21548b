package mochiguard_test

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/mochiguard"
	"github.com/mqttguard/mqttguard/trust"
)

// The Guard in a mochi-mqtt server: one hook, and no other hook that
// authenticates or authorizes.
func ExampleNew() {
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Bans: &trust.Bans{}})
	if err != nil {
		panic(err)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	hook := mochiguard.New(g, srv, mochiguard.Options{}) // the default per-account bounds
	if err := srv.AddHook(hook, nil); err != nil {
		panic(err)
	}
	// srv.AddListener(...); srv.Serve()
	fmt.Println(hook.ID(), len(hook.Clients()), "clients")
	// Output: mqttguard 0 clients
}
