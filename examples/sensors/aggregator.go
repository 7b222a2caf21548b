package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Aggregator keeps every device's latest reading and raises alerts on
// alerts/critical: a temperature above AlertAbove, motion, an open door.
// An alert is raised when its condition starts, not on every reading
// while it lasts.
type Aggregator struct {
	AlertAbove float64 // °C

	mu       sync.Mutex
	latest   map[string]Reading
	seen     map[string]time.Time // when the latest arrived
	counts   map[string]int       // readings per device
	raised   map[string]bool      // the device's alert condition holds
	alerts   []string
	bad      int // payloads that were not readings
	c        *client
	closed   bool           // under mu: no more alerts
	alerting sync.WaitGroup // the alerts being published
}

// Alert is what the aggregator publishes on alerts/critical.
type Alert struct {
	Device string    `json:"device"`
	Alert  string    `json:"alert"`
	At     time.Time `json:"at"`
}

// connect subscribes to sensors/# as the aggregator account.
func (g *Aggregator) connect(ctx context.Context, addr string, tc *tls.Config, a account) error {
	g.latest, g.seen, g.counts, g.raised = map[string]Reading{}, map[string]time.Time{}, map[string]int{}, map[string]bool{}
	c, err := dial(ctx, addr, tc, "aggregator", a, g.receive)
	if err != nil {
		return fmt.Errorf("aggregator: %w", err)
	}
	g.c = c
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sensors/#", QoS: 1}}})
	if err != nil || sa.Reasons[0] >= 0x80 {
		c.Disconnect(&paho.Disconnect{})
		return fmt.Errorf("aggregator: subscribe sensors/#: %v %v", err, sa)
	}
	return nil
}

// close waits for the alerts in flight, then disconnects.
func (g *Aggregator) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.alerting.Wait()
	if g.c != nil {
		g.c.Disconnect(&paho.Disconnect{})
	}
}

// receive runs on paho's goroutine; the alert goes out on another, as
// a client may not wait for its own PUBACK inside the handler.
func (g *Aggregator) receive(p *paho.Publish) {
	r, err := parseReading(p.Payload)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil || !strings.HasSuffix(p.Topic, "/"+r.Device) {
		g.bad++ // a device may only speak for itself: the ACL sees to it, and so does the aggregator
		return
	}
	g.latest[r.Device] = r
	g.seen[r.Device] = time.Now()
	g.counts[r.Device]++
	var cond bool
	var what string
	switch {
	case r.Celsius != nil:
		cond, what = *r.Celsius > g.AlertAbove, fmt.Sprintf("temperature %.1f °C above %.1f °C", *r.Celsius, g.AlertAbove)
	case r.Motion != nil:
		cond, what = *r.Motion, "motion detected"
	case r.Open != nil:
		cond, what = *r.Open, "door open"
	}
	was := g.raised[r.Device]
	g.raised[r.Device] = cond
	if !cond || was {
		return
	}
	g.alerts = append(g.alerts, r.Device+": "+what)
	if g.closed {
		return
	}
	payload, _ := json.Marshal(Alert{Device: r.Device, Alert: what, At: r.At})
	g.alerting.Add(1)
	go func() {
		defer g.alerting.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.c.Publish(ctx, &paho.Publish{Topic: "alerts/critical", QoS: 1, Payload: payload})
	}()
}

// Count is how many readings arrived from a device.
func (g *Aggregator) Count(device string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.counts[device]
}

// Alerts are the alerts raised so far.
func (g *Aggregator) Alerts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.alerts)
}

// summary writes the latest reading of every device.
func (g *Aggregator) summary(w io.Writer, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.latest))
	for id := range g.latest {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := g.latest[id]
		flag := ""
		if g.raised[id] {
			flag = "  ALERT"
		}
		fmt.Fprintf(w, "  %-9s %-12s %-10s %3.0fs ago  %4d readings%s\n", id, r.Kind, r.Value(), now.Sub(g.seen[id]).Seconds(), g.counts[id], flag)
	}
	if n := len(g.alerts); n > 0 {
		fmt.Fprintf(w, "  alerts on alerts/critical: %d, last: %s\n", n, g.alerts[n-1])
	}
	if g.bad > 0 {
		fmt.Fprintf(w, "  payloads that were not readings: %d\n", g.bad)
	}
}
