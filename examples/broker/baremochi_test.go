package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// bareMochi runs mochi-mqtt v2.7.9 as its README shows — allow-all auth,
// a TCP listener — and prints its address. It is the child process of
// TestBareMochiCrashesAndTheGuardedBrokerDoesNot.
func bareMochi() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	s.AddHook(new(auth.AllowHook), nil)
	s.AddListener(listeners.NewNet("tcp", ln))
	if err := s.Serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	select {}
}
