// Command proxy is the mqttguard security gateway: the Guard in front of
// a broker that cannot import a Go library (mosquitto, EMQX, …). It
// terminates the clients' connections (TLS included), reads every packet
// through the packet validator and the Guard — credentials, ACL, rate
// limits, trust states, bans, anomaly detection, Wasm plugins — and
// relays what passes to the upstream broker, one upstream connection per
// client. Broker-to-client messages pass the Guard's delivery check, so a
// '#' subscriber gets only what it may read whatever the upstream would
// send.
//
//	mosquitto -p 1884 &                        # the upstream, on loopback
//	go run ./examples/proxy                    # first run: ./mqttguard-proxy-data, accounts printed
//	go run ./examples/proxy -upstream host:port
//	go run ./examples/proxy -config my.toml
//	go run ./examples/proxy -print-accounts    # the users (with passwords not shown yet)
//	go run ./examples/proxy -reset-password sensor1
//
// The configuration is the example broker's with ports of its own — MQTT
// on 11883, MQTT/TLS on 18883, the admin API on 127.0.0.1:18080, so it
// runs beside the example broker — plus [upstream]; see -print-config.
// SIGHUP reloads (as the broker's does); SIGINT and SIGTERM shut down.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
)

// defaultConfig is the broker's with the proxy's own ports (the
// broker's plus 10000, so that both run on one machine) and an upstream
// section.
var defaultConfig = append(proxyPorts.Replace(string(guardconf.DefaultConfig)), []byte(`
[upstream]                  # the broker the proxy guards
addr = "127.0.0.1:1884"     # e.g. mosquitto -p 1884 (loopback: only the proxy reaches it)
tls = false
tls_ca_cert_path = ""       # with tls: "" trusts the system roots
tls_server_name = ""
tls_cert_path = ""          # a client certificate for the upstream, if it asks for one
tls_key_path = ""
# When set, every client is connected upstream as this account: the
# proxy authenticated it already, and the upstream trusts the proxy.
# Empty: each client's own credentials go upstream.
username = ""
password = ""
connect_timeout = "5s"
`)...)

var proxyPorts = replacer{
	"\nport = 1883 ":            "\nport = 11883",
	"\ntls_port = 8883":         "\ntls_port = 18883",
	`listen = "127.0.0.1:8080"`: `listen = "127.0.0.1:18080"`,
}

// replacer replaces each key once, and panics when one is missing: the
// broker's default configuration changed, and the proxy's must follow.
type replacer map[string]string

func (r replacer) Replace(s string) []byte {
	for old, new := range r {
		if !strings.Contains(s, old) {
			panic("proxy: the default configuration has no " + strconv.Quote(old))
		}
		s = strings.Replace(s, old, new, 1)
	}
	return []byte(s)
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "mqttguard-proxy-data", "the data directory")
	configPath := fs.String("config", "", "a configuration file (default: mqttguard.toml in the data directory, created on the first run)")
	upstream := fs.String("upstream", "", "the upstream broker's host:port (overrides upstream.addr)")
	printConfig := fs.Bool("print-config", false, "print the embedded default configuration and exit")
	printAccounts := fs.Bool("print-accounts", false, "print the users of the password file (with the first run's passwords until a start has shown them) and exit")
	resetPassword := fs.String("reset-password", "", "give this user a new random password, print it and exit (a running proxy takes it on SIGHUP)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printConfig {
		_, err := stdout.Write(defaultConfig)
		return err
	}
	log, err := guardstack.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, first, err := guardstack.Open(*dataDir, *configPath, defaultConfig, &proxyConfig{})
	if err != nil {
		return err
	}
	switch {
	case *resetPassword != "":
		return guardstack.PrintResetPassword(stdout, cfg, *resetPassword, "proxy")
	case *printAccounts:
		return guardstack.PrintAccounts(stdout, cfg, "go run ./examples/proxy")
	}
	if *upstream != "" {
		cfg.Override(func(c *guardconf.Config) { upstreamOf(c).Addr = *upstream })
	}
	p, err := Start(cfg, log)
	if err != nil {
		if len(first.Accounts) > 0 {
			fmt.Fprintf(stderr, "proxy: the new accounts' passwords are kept in %s until a start shows them\n",
				filepath.Join(*dataDir, guardstack.NewAccountsFile))
		}
		return err
	}
	fmt.Fprintln(stdout, "mqttguard proxy")
	for _, id := range []string{"tcp", "tls"} {
		if a := p.Addr(id); a != "" {
			fmt.Fprintf(stdout, "  MQTT %-4s %s → upstream %s\n", id, a, upstreamOf(cfg).Addr)
		}
	}
	if a := p.Addr("admin"); a != "" {
		fmt.Fprintf(stdout, "  admin     http://%s   token in %s\n", a, cfg.Path(cfg.Admin.TokenFile))
	}
	if len(first.Accounts) > 0 {
		fmt.Fprintln(stdout, "\nThe first run created these accounts in the proxy's password file. Their passwords are shown only this once:")
		for _, a := range first.Accounts {
			fmt.Fprintf(stdout, "  %-10s %s   %s\n", a.User, a.Password, a.Can)
		}
		fmt.Fprintln(stdout, "The upstream must accept them too (or set upstream.username): the proxy passes credentials on.")
		fmt.Fprintln(stdout, "go run ./examples/proxy -reset-password USER makes a new one.")
	}
	if err := first.Shown(); err != nil {
		log.Error("forgetting the shown passwords", "error", err)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		select {
		case <-hup:
			p.Reload()
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return p.Close(sctx)
		}
	}
}
