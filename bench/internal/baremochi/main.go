// Command baremochi runs mochi-mqtt v2.7.9 as its README shows —
// allow-all authentication, one TCP listener, no other hook — for the
// load benchmarks to compare the example broker with; -validate puts the
// packet validator (packets.Listen) in front of it, alone, to measure
// what the validator costs. It prints its address and serves until
// killed.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mqttguard/mqttguard/packets"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	validate := flag.Bool("validate", false, "serve through packets.Listen")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	s.AddHook(new(auth.AllowHook), nil)
	var l net.Listener = ln
	if *validate {
		l = packets.Listen(ln, packets.ListenerConfig{TopicAliasMaximum: s.Options.Capabilities.TopicAliasMaximum})
	}
	s.AddListener(listeners.NewNet("tcp", l))
	if err := s.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	select {}
}
