package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/examples/internal/mochibroker"
	"github.com/mqttguard/mqttguard/guardstack"
)

// Demo is the sensor network: the example broker, the sensors, the
// aggregator and, if set, the rogue device.
type Demo struct {
	Dir        string // the broker's data directory
	Devices    []*Device
	AlertAbove float64       // °C
	Rogue      *Rogue        // nil: no attacker
	RogueAfter time.Duration // the attacks start this long after the sensors
	Every      time.Duration // a summary this often
	Out        io.Writer
	Log        *slog.Logger // the broker's log, the Guard's audit lines among it
	LogPath    string       // where Log writes, to tell the user ("": stderr)
	// RogueDone, if not nil, is closed when the rogue has tried
	// everything.
	RogueDone chan struct{}
	// Started, if not nil, hears where the broker is once it runs and
	// before any device connects.
	Started func(Started)
	// For is how long to run once the devices are connected (0: until
	// the context of Run ends): the broker's start, which hashes
	// passwords, does not eat into it.
	For time.Duration

	// After Run: what happened.
	Agg   *Aggregator
	Stats map[string]*sensorStats
}

// Started is where a running demo's broker is.
type Started struct {
	MQTT      string      // the TLS listener
	TLS       *tls.Config // trusts the broker's certificate
	Admin     string      // the admin API and dashboard
	TokenFile string      // the admin token
	Accounts  map[string]account
}

// defaultDevices is the demo's fleet. temp-2's cooler is failing: it
// crosses the alert threshold within seconds.
func defaultDevices() []*Device {
	return []*Device{
		{ID: "temp-1", Kind: "temperature", Interval: 2 * time.Second, Celsius: 21.0},
		{ID: "temp-2", Kind: "temperature", Interval: 2 * time.Second, Celsius: 29.0, Heating: 0.4},
		{ID: "motion-1", Kind: "motion", Interval: time.Second},
		{ID: "door-1", Kind: "door", Interval: 2 * time.Second},
	}
}

// Run starts the broker and the devices and runs until ctx ends; it
// ends with a last summary that compares what each sensor had
// acknowledged with what the aggregator received.
func (d *Demo) Run(ctx context.Context) error {
	out := &syncWriter{w: d.Out}
	text, err := demoConfig()
	if err != nil {
		return err
	}
	cfg, _, err := guardstack.Open(d.Dir, "", text, nil)
	if err != nil {
		return err
	}
	accounts, err := provision(d.Dir)
	if err != nil {
		return err
	}
	// Each run starts with no bans: the last run's rogue stays banned
	// otherwise, which is the point of bans, and spoils a demo.
	if err := os.Remove(cfg.Path(cfg.Security.BanFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b, err := mochibroker.Start(cfg, d.Log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(cctx)
	}()
	tc, err := clientTLS(cfg.Path(cfg.MQTT.TLSCACertPath))
	if err != nil {
		return err
	}
	addr := b.Addr("tls")
	fmt.Fprintf(d.Out, "mqttguard sensors demo: the example broker on %s (TLS)\n  dashboard http://%s/dashboard/ and admin API http://%[2]s (the token is in %s)\n",
		addr, b.Addr("admin"), cfg.Path(cfg.Admin.TokenFile))
	fmt.Fprintf(d.Out, "  %d sensors, an aggregator on sensors/# raising alerts on alerts/critical", len(d.Devices))
	if d.Rogue != nil {
		fmt.Fprintf(d.Out, ", and a rogue device from %v on", d.RogueAfter)
	}
	fmt.Fprintf(d.Out, "\n  accounts and ACL: %s\n", d.Dir)
	if d.LogPath != "" {
		fmt.Fprintf(d.Out, "  the broker's log, the Guard's refusals among it: %s\n", d.LogPath)
	}
	fmt.Fprintln(d.Out)

	if d.Started != nil {
		d.Started(Started{MQTT: addr, TLS: tc, Admin: b.Addr("admin"), TokenFile: cfg.Path(cfg.Admin.TokenFile), Accounts: accounts})
	}

	d.Agg = &Aggregator{AlertAbove: d.AlertAbove}
	if err := d.Agg.connect(ctx, addr, tc, accounts["aggregator"]); err != nil {
		return err
	}
	defer d.Agg.close()

	devCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	d.Stats = map[string]*sensorStats{}
	for i, dev := range d.Devices {
		st := &sensorStats{}
		d.Stats[dev.ID] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			runSensor(devCtx, addr, tc, dev, accounts[dev.ID], uint64(i+1), st)
		}()
	}
	if r := d.Rogue; r != nil {
		r.Account, r.Out = accounts["rogue-1"], out
		r.Received = func() int { return d.Agg.Count("rogue-1") }
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-devCtx.Done():
				return
			case <-time.After(d.RogueAfter):
			}
			r.run(devCtx, addr, tc)
			if d.RogueDone != nil {
				close(d.RogueDone)
			}
		}()
	}

	runCtx := ctx
	if d.For > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, d.For)
		defer cancel()
	}
	t := time.NewTicker(d.Every)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-runCtx.Done():
			done = true
		case now := <-t.C:
			var buf bytes.Buffer // one write: the rogue's lines go between summaries, not into them
			fmt.Fprintf(&buf, "── %s\n", now.Format("15:04:05"))
			d.Agg.summary(&buf, now)
			guardLine(&buf, b.Guard.Stats())
			out.Write(buf.Bytes())
		}
	}
	stop()
	wg.Wait()                          // from here on, d.Out is ours alone
	time.Sleep(300 * time.Millisecond) // the last PUBLISHes reach the aggregator
	fmt.Fprintln(d.Out, "── the end: what each sensor had acknowledged, and what the aggregator received")
	for _, dev := range d.Devices {
		st := d.Stats[dev.ID]
		line := fmt.Sprintf("  %-9s sent %4d  acknowledged %4d  received %4d", dev.ID, st.Sent.Load(), st.Acked.Load(), d.Agg.Count(dev.ID))
		if e, _ := st.Err.Load().(string); e != "" {
			line += "  (" + e + ")"
		}
		fmt.Fprintln(d.Out, line)
	}
	if d.Rogue != nil {
		fmt.Fprintf(d.Out, "  rogue-1   received %4d\n", d.Agg.Count("rogue-1"))
	}
	guardLine(d.Out, b.Guard.Stats())
	if d.LogPath != "" {
		fmt.Fprintf(d.Out, "  the broker's log: %s\n", d.LogPath)
	}
	return nil
}

// clientTLS trusts the broker's (development) CA.
func clientTLS(caPath string) (*tls.Config, error) {
	pem, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate in it", caPath)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, nil
}

// guardLine is the Guard's counters on one line: decisions by point,
// and who refused what.
func guardLine(w io.Writer, s mqttguard.Stats) {
	var parts []string
	for _, p := range mqttguard.Points() {
		var allowed, refused uint64
		for _, v := range mqttguard.Verdicts() {
			if v == mqttguard.Allow {
				allowed += s.Decisions(p, v)
			} else {
				refused += s.Decisions(p, v)
			}
		}
		if allowed+refused > 0 {
			parts = append(parts, fmt.Sprintf("%s %d/%d", p, allowed, refused))
		}
	}
	var by []string
	for _, c := range mqttguard.Components() {
		if n := s.By(c); n > 0 && c != mqttguard.ByNone {
			by = append(by, fmt.Sprintf("%s %d", c, n))
		}
	}
	fmt.Fprintf(w, "  guard (allowed/refused): %s", strings.Join(parts, ", "))
	if len(by) > 0 {
		fmt.Fprintf(w, "; refused by %s", strings.Join(by, ", "))
	}
	fmt.Fprintln(w)
}

// syncWriter serialises the summaries and the rogue's lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
