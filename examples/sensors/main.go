// Command sensors is a secure sensor network on the example broker, and
// an attack on it: temperature, motion and door sensors publish JSON
// readings on sensors/<kind>/<id> over TLS, each with its own account;
// an aggregator subscribed to sensors/# keeps the latest readings,
// raises alerts on alerts/critical (a temperature above the threshold,
// motion, an open door) and prints a live summary; a rogue device with
// valid credentials tries wildcard client IDs, publishes where it may
// not, reports too often and floods — and the Guard refuses, drops,
// throttles and bans it while the sensors carry on.
//
//	go run ./examples/sensors                 # until Ctrl-C
//	go run ./examples/sensors -for 30s        # half a minute
//	go run ./examples/sensors -rogue=false    # no attacker
//	go run ./examples/sensors -log-level info # the broker's log too, not only the Guard's refusals
//
// It starts the example broker (examples/broker's code and default
// configuration, on free ports) with a data directory of its own, adds
// the demo's accounts to its password file and its rules to its ACL, and
// prints where they are.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/stack"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sensors:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "the broker's data directory (default: a temporary one, removed at the end)")
	runFor := fs.Duration("for", 0, "how long to run (0: until Ctrl-C)")
	every := fs.Duration("every", 3*time.Second, "how often to print a summary")
	rogue := fs.Bool("rogue", true, "start a rogue device after a few seconds")
	above := fs.Float64("alert-above", 30, "alert when a temperature rises above this, °C")
	level := fs.String("log-level", "warn", "the broker's log level: debug, info, warn (the Guard's refusals) or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := stack.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	if *every <= 0 {
		return fmt.Errorf("-every %v: want a positive duration", *every)
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "mqttguard-sensors-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	d := &Demo{Dir: *dir, Devices: defaultDevices(), AlertAbove: *above, Every: *every, Out: stdout,
		Log: log, RogueAfter: 5 * time.Second}
	if *rogue {
		d.Rogue = &Rogue{TooOften: 30, FloodFor: 5 * time.Second}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	return d.Run(ctx)
}
