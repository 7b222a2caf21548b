// Command broker is the mqttguard example broker: mochi-mqtt with every
// mqttguard primitive in front of it — a packet validator on every
// listener, TLS with hot reload, passwords, an ACL, rate limits, the
// trust state machine, bans, flapping and push-interval detection, and
// Wasm policy plugins — plus an admin API with Prometheus metrics.
//
//	go run ./examples/broker                     # first run: creates ./mqttguard-data, prints accounts
//	go run ./examples/broker -data /var/lib/mq   # another data directory
//	go run ./examples/broker -config my.toml     # a configuration of your own
//	go run ./examples/broker -print-config       # the embedded default, to start one from
//
// SIGHUP (or POST /reload) reloads the ACL, the password file, TLS
// material, plugins and the security mode without dropping connections;
// SIGINT and SIGTERM shut down gracefully.
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
	"github.com/mqttguard/mqttguard/examples/internal/stack"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "mqttguard-data", "the data directory: configuration, certificates, passwords, ACL, bans")
	configPath := fs.String("config", "", "a configuration file (default: mqttguard.toml in the data directory, created on the first run)")
	printConfig := fs.Bool("print-config", false, "print the embedded default configuration and exit")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printConfig {
		_, err := stdout.Write(stack.DefaultConfig)
		return err
	}
	log, err := stack.NewLogger(stderr, *level)
	if err != nil {
		return err
	}

	cfg, first, err := stack.Open(*dataDir, *configPath, stack.DefaultConfig)
	if err != nil {
		return err
	}
	b, err := mochibroker.Start(cfg, log)
	if err != nil {
		return err
	}
	banner(stdout, b, first)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
func banner(w io.Writer, b *mochibroker.Broker, first stack.FirstRun) {
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
	}
	fmt.Fprintf(w, "  config    %s (mode %s)\n", cfg.Source, cfg.Security.Mode)

	pw := map[string]string{"admin": "<password>", "sensor1": "<password>", "dashboard": "<password>"}
	if len(first.Accounts) > 0 {
		fmt.Fprintln(w, "\nFirst run: these accounts were created. Their passwords are shown only now; only hashes are kept.")
		for _, a := range first.Accounts {
			fmt.Fprintf(w, "  %-10s %s   %s\n", a.User, a.Password, a.Can)
			pw[a.User] = a.Password
		}
	}
	host, port, _ := stack.SplitHostPort(b.Addr("tcp"))
	fmt.Fprintln(w, "\nTry it (Debian: apt install mosquitto-clients):")
	if port != "" {
		fmt.Fprintf(w, "  mosquitto_sub -h %s -p %s -u dashboard -P '%s' -t 'sensors/#' -v\n", host, port, pw["dashboard"])
		fmt.Fprintf(w, "  mosquitto_pub -h %s -p %s -u sensor1 -P '%s' -t sensors/sensor1/temperature -m '{\"temperature\": 21.5}'\n", host, port, pw["sensor1"])
	}
	if _, tport, _ := stack.SplitHostPort(b.Addr("tls")); tport != "" {
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
