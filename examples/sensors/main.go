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
//	go run ./examples/sensors -log -           # the broker's log on stderr, between the frames
//
// It starts the example broker (examples/broker's code and default
// configuration, on free ports) with a data directory of its own, adds
// the demo's accounts to its password file and its rules to its ACL, and
// prints where they are. The broker's log — the Guard's refusals among
// it, dozens a second while the rogue attacks — goes to a file in the
// system's temporary directory (its name is printed at the start and at
// the end), so that the demo's frames stay readable.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mqttguard/mqttguard/guardstack"
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
	runFor := fs.Duration("for", 0, "how long to run once the devices are connected (0: until Ctrl-C)")
	every := fs.Duration("every", 3*time.Second, "how often to print a summary")
	rogue := fs.Bool("rogue", true, "start a rogue device after a few seconds")
	above := fs.Float64("alert-above", 30, "alert when a temperature rises above this, °C")
	logTo := fs.String("log", "", `the broker's log: a file (default: a new one in the system's temporary directory), or "-" for stderr`)
	level := fs.String("log-level", "info", "the broker's log level: debug, info, warn (the Guard's refusals) or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, logPath, closeLog, err := openLog(*logTo, *level, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
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
		Log: log, LogPath: logPath, RogueAfter: 5 * time.Second, For: *runFor}
	if *rogue {
		d.Rogue = &Rogue{TooOften: 30, FloodFor: 5 * time.Second}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.Run(ctx)
}

// openLog is the broker's logger: to stderr for "-", else to the file at
// path, or to a new file in the system's temporary directory when path is
// "". where names the file ("" for stderr).
func openLog(path, level string, stderr io.Writer) (log *slog.Logger, where string, closeLog func(), err error) {
	if path == "-" {
		log, err = guardstack.NewLogger(stderr, level)
		return log, "", func() {}, err
	}
	if _, err := guardstack.NewLogger(io.Discard, level); err != nil {
		return nil, "", nil, err // before a file is made for nothing
	}
	var f *os.File
	if path == "" {
		f, err = os.CreateTemp("", "mqttguard-sensors-*.log")
	} else {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("-log: %w", err)
	}
	if log, err = guardstack.NewLogger(f, level); err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return log, f.Name(), func() { f.Close() }, nil
}
