// Command broker is the mqttguard example broker: mochi-mqtt with every
// mqttguard primitive in front of it — a packet validator on every
// listener, TLS with hot reload, passwords, an ACL, rate limits, the
// trust state machine, bans, flapping and push-interval detection, and
// Wasm policy plugins — plus an admin API with Prometheus metrics and a
// security dashboard.
//
//	go run ./examples/broker                     # first run: creates ./mqttguard-data, prints accounts
//	go run ./examples/broker -data /var/lib/mq   # another data directory
//	go run ./examples/broker -config my.toml     # a configuration of your own
//	go run ./examples/broker -print-config       # the embedded default, to start one from
//	go run ./examples/broker -print-accounts     # the users (with passwords not shown yet)
//	go run ./examples/broker -reset-password sensor1   # a new password, printed
//
// The first run's passwords are kept in new-accounts.txt in the data
// directory until a start has printed them, so a first run that fails
// (port 1883 in use, say) loses none.
//
// SIGHUP (or POST /reload) reloads the ACL, the password file, TLS
// material and plugins, and puts the changed mode, rate limits, trust
// factors, flapping thresholds and device profiles in force without
// dropping connections; any other changed setting is logged by name as
// needing a restart. SIGINT and SIGTERM shut down gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/mochibroker"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		stop()
		os.Exit(1)
	}
}

// run is the command until SIGINT or SIGTERM.
func run(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// runContext is the command until ctx ends.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "mqttguard-data", "the data directory: configuration, certificates, passwords, ACL, bans")
	configPath := fs.String("config", "", "a configuration file (default: mqttguard.toml in the data directory, created on the first run)")
	printConfig := fs.Bool("print-config", false, "print the embedded default configuration and exit")
	printAccounts := fs.Bool("print-accounts", false, "print the users of the password file (with the first run's passwords until a start has shown them) and exit")
	resetPassword := fs.String("reset-password", "", "give this user a new random password, print it and exit (a running broker takes it on SIGHUP)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printConfig {
		_, err := stdout.Write(guardconf.DefaultConfig)
		return err
	}
	log, err := guardstack.NewLogger(stderr, *level)
	if err != nil {
		return err
	}

	cfg, first, err := guardstack.Open(*dataDir, *configPath, guardconf.DefaultConfig, nil)
	if err != nil {
		return err
	}
	switch {
	case *resetPassword != "":
		return guardstack.PrintResetPassword(stdout, cfg, *resetPassword, "broker")
	case *printAccounts:
		return guardstack.PrintAccounts(stdout, cfg, "go run ./examples/broker")
	}
	b, err := mochibroker.Start(cfg, log)
	if err != nil {
		if len(first.Accounts) > 0 {
			fmt.Fprintf(stderr, "broker: the new accounts' passwords are kept in %s until a start shows them\n",
				filepath.Join(*dataDir, guardstack.NewAccountsFile))
		}
		return err
	}
	banner(stdout, b, first)
	if err := first.Shown(); err != nil {
		log.Error("forgetting the shown passwords", "error", err)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			b.Reload()
		case <-ctx.Done():
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return b.Close(sctx)
		}
	}
}

// banner prints where everything is and commands that work as pasted.
func banner(w io.Writer, b *mochibroker.Broker, first guardstack.FirstRun) {
	cfg := b.Cfg
	fmt.Fprintln(w, "mqttguard example broker")
	if a := b.Addr("tcp"); a != "" {
		fmt.Fprintf(w, "  MQTT      %s\n", a)
	}
	if a := b.Addr("tls"); a != "" {
		fmt.Fprintf(w, "  MQTT/TLS  %s   CA %s\n", a, cfg.Path(cfg.MQTT.TLSCACertPath))
	}
	if a := b.Addr("admin"); a != "" {
		fmt.Fprintf(w, "  admin     http://%s   token in %s\n", a, cfg.Path(cfg.Admin.TokenFile))
		if cfg.Admin.DashboardOn() {
			fmt.Fprintf(w, "  dashboard http://%s/dashboard/   sign in with the token\n", a)
		}
	}
	fmt.Fprintf(w, "  config    %s (mode %s)\n", cfg.Source, cfg.Security.Mode)

	pw := map[string]string{"admin": "<password>", "sensor1": "<password>", "dashboard": "<password>"}
	if len(first.Accounts) > 0 {
		fmt.Fprintln(w, "\nThe first run created these accounts. Their passwords are shown only this once; only hashes are kept")
		fmt.Fprintln(w, "(go run ./examples/broker -reset-password USER makes a new one).")
		for _, a := range first.Accounts {
			fmt.Fprintf(w, "  %-10s %s   %s\n", a.User, a.Password, a.Can)
			pw[a.User] = a.Password
		}
	}
	host, port, _ := guardstack.SplitHostPort(b.Addr("tcp"))
	fmt.Fprintln(w, "\nTry it (Debian: apt install mosquitto-clients):")
	if port != "" {
		fmt.Fprintf(w, "  mosquitto_sub -h %s -p %s -u dashboard -P '%s' -t 'sensors/#' -v\n", host, port, pw["dashboard"])
		fmt.Fprintf(w, "  mosquitto_pub -h %s -p %s -u sensor1 -P '%s' -t sensors/sensor1/temperature -m '{\"temperature\": 21.5}'\n", host, port, pw["sensor1"])
	}
	if _, tport, _ := guardstack.SplitHostPort(b.Addr("tls")); tport != "" {
		fmt.Fprintf(w, "  mosquitto_pub --cafile %s -h localhost -p %s -u sensor1 -P '%s' -t sensors/sensor1/temperature -m 21.5\n",
			cfg.Path(cfg.MQTT.TLSCACertPath), tport, pw["sensor1"])
		if first.TLS {
			dir := filepath.Dir(cfg.Path(cfg.MQTT.TLSCACertPath))
			fmt.Fprintf(w, "  with a client certificate: add --cert %s --key %s\n",
				filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
		}
	}
	if a := b.Addr("admin"); a != "" {
		fmt.Fprintf(w, "  curl -H \"Authorization: Bearer $(cat %s)\" http://%s/clients\n", cfg.Path(cfg.Admin.TokenFile), a)
	}
	fmt.Fprintln(w)
}
