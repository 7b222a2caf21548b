// Package guardmetrics exports the Guard's counters and those of the
// components it composes as Prometheus metrics (mqttguard_*): decisions
// by point and verdict, refusals by component, trust states and scores,
// bans, push-interval reports, plugin health, pending connections, fleet
// sync. It is the only package of mqttguard that imports
// prometheus/client_golang.
//
// A Collector reads the counters at scrape time: nothing is counted
// twice, and nothing runs between scrapes. Register it with a registry
// and serve that with promhttp (the admin API's GET /metrics does).
package guardmetrics

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/redisstore"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over the Guard and its components.
// Guard is required; a nil component or func is not reported.
type Collector struct {
	Guard     *mqttguard.Guard
	Tracker   *trust.Tracker
	Bans      *trust.Bans
	Flapping  *anomaly.FlappingDetector
	Intervals *anomaly.IntervalDetector
	Fleet     *redisstore.Fleet
	// Connections is the number of clients connected now.
	Connections func() int
	// Pending is the packet validator's pending connections (see
	// packets.Listener); Rejected, the connections it closed by reason
	// code.
	Pending  func() packets.PendingStats
	Rejected func() map[reason.Code]uint64
	// Kicks is the number of clients the broker disconnected.
	Kicks func() uint64
}

// Describe sends the descriptions of the metrics Collect sends.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("mqttguard_"+name, help, labels, nil)
}

var (
	descConnections   = desc("connections", "Clients connected now.")
	descDecisions     = desc("decisions_total", "Guard decisions by decision point and verdict.", "point", "verdict")
	descRefusals      = desc("refusals_total", "Refusals, drops and disconnects by the component that decided.", "component")
	descObserved      = desc("observed_total", "What ObserveOnly let through, by the component that would have refused.", "component")
	descDelayed       = desc("delayed_total", "Publishes held back for throttled clients.")
	descAuditDropped  = desc("audit_suppressed_total", "Audit log lines dropped by the audit rate limit.")
	descTrustStates   = desc("trust_clients", "Trust records by state.", "state")
	descTrustScores   = desc("trust_scores", "Client trust records by score band.", "band")
	descViolations    = desc("trust_violations_total", "Violations counted, by kind.", "kind")
	descBans          = desc("bans", "Bans in force.")
	descAnomalies     = desc("push_interval_reports_total", "Push-interval reports by result.", "result")
	descFlapBans      = desc("flapping_bans_total", "Bans for connecting in a loop.")
	descPacketRejects = desc("packet_rejections_total", "Connections the packet validator closed, by reason code.", "code")
	descPending       = desc("pending_connections", "Connections accepted and not yet given a successful CONNACK.")
	descPendingClosed = desc("pending_evicted_total", "Pending connections closed to make room for newer ones, by cap: mqtt.max_pending_per_address or mqtt.max_pending.", "cap")
	descKicks         = desc("kicks_total", "Clients disconnected by the broker.")
	descWasmCalls     = desc("wasm_calls_total", "Plugin calls that ran.", "plugin")
	descWasmVerdicts  = desc("wasm_verdicts_total", "Plugin verdicts.", "plugin", "verdict")
	descWasmFailures  = desc("wasm_failures_total", "Plugin calls the failure policy decided, by kind.", "plugin", "kind")
	descWasmMemory    = desc("wasm_memory_bytes", "Linear memory of a plugin's live instances.", "plugin")
	descWasmPeak      = desc("wasm_memory_peak_bytes", "The most linear memory any instance of a plugin reached.", "plugin")
	descWasmDisabled  = desc("wasm_disabled", "1 when a plugin is disabled, 2 when quarantined.", "plugin")
	descFleetUp       = desc("fleet_connected", "1 while subscribed to Redis and in sync (fleet mode).")
	descFleetPending  = desc("fleet_pending", "Local ban and trust changes waiting for Redis.")
	descFleetEvents   = desc("fleet_events_total", "Fleet changes by direction: received from other brokers, pushed to Redis, dropped from a full queue.", "direction")
	descFleetResyncs  = desc("fleet_resyncs_total", "Full syncs with Redis, one per (re)connection.")
)

// Collect reads the counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	gauge, counter := gaugeTo(ch), counterTo(ch)
	if c.Connections != nil {
		gauge(descConnections, float64(c.Connections()))
	}
	if c.Fleet != nil {
		fs := c.Fleet.Stats()
		up := 0.0
		if fs.Connected {
			up = 1
		}
		gauge(descFleetUp, up)
		gauge(descFleetPending, float64(fs.Pending))
		counter(descFleetEvents, fs.Received, "received")
		counter(descFleetEvents, fs.Pushed, "pushed")
		counter(descFleetEvents, fs.Dropped, "dropped")
		counter(descFleetResyncs, fs.Resyncs)
	}
	gs := c.Guard.Stats()
	for _, p := range mqttguard.Points() {
		for _, v := range mqttguard.Verdicts() {
			counter(descDecisions, gs.Decisions(p, v), p.String(), v.String())
		}
	}
	for _, comp := range mqttguard.Components() {
		if comp == mqttguard.ByNone {
			continue
		}
		counter(descRefusals, gs.By(comp), comp.String())
		counter(descObserved, gs.Observed(comp), comp.String())
	}
	counter(descDelayed, gs.Delayed)
	counter(descAuditDropped, gs.AuditSuppressed)

	if c.Tracker != nil {
		c.trust(ch, now)
	}
	if c.Bans != nil {
		gauge(descBans, float64(len(c.Bans.List(now))))
	}
	if c.Intervals != nil {
		as := c.Intervals.Stats()
		for r := anomaly.First; r <= anomaly.NoProfile; r++ {
			counter(descAnomalies, as.Count(r), r.String())
		}
	}
	if c.Flapping != nil {
		counter(descFlapBans, c.Flapping.Stats().Bans)
	}
	if c.Rejected != nil {
		for code, n := range c.Rejected() {
			counter(descPacketRejects, n, fmt.Sprintf("0x%02X", byte(code)))
		}
	}
	if c.Pending != nil {
		ps := c.Pending()
		gauge(descPending, float64(ps.Pending))
		counter(descPendingClosed, ps.EvictedPerAddress, "per_address")
		counter(descPendingClosed, ps.EvictedTotal, "total")
	}
	if c.Kicks != nil {
		counter(descKicks, c.Kicks())
	}
	c.plugins(ch)
}

func (c *Collector) trust(ch chan<- prometheus.Metric, now time.Time) {
	gauge, counter := gaugeTo(ch), counterTo(ch)
	ts := c.Tracker.Stats(now)
	for _, s := range trust.States() {
		gauge(descTrustStates, float64(ts.States(s)), s.String())
	}
	for i, n := range ts.Scores {
		lo := i*100 + 1
		if i == 0 {
			lo = 0
		}
		gauge(descTrustScores, float64(n), fmt.Sprintf("%d-%d", lo, (i+1)*100))
	}
	for _, k := range trust.Kinds() {
		counter(descViolations, ts.Violations(k), k.String())
	}
}

func (c *Collector) plugins(ch chan<- prometheus.Metric) {
	gauge, counter := gaugeTo(ch), counterTo(ch)
	for _, p := range c.Guard.Plugins() {
		s := p.Stats()
		name := p.Name()
		counter(descWasmCalls, s.Calls, name)
		counter(descWasmVerdicts, s.Allowed, name, "allow")
		counter(descWasmVerdicts, s.Denied, name, "deny")
		counter(descWasmVerdicts, s.Dropped, name, "drop")
		for kind, n := range map[string]uint64{"trap": s.Traps, "fuel": s.FuelExhausted, "call-depth": s.CallDepthExceeded,
			"timeout": s.Timeouts, "memory": s.MemoryLimit, "bad-verdict": s.BadVerdicts, "bad-buffer": s.BadBuffers,
			"too-large": s.TooLarge, "instantiate": s.InstantiateErrors, "quarantined": s.Quarantined} {
			counter(descWasmFailures, n, name, kind)
		}
		var mem uint64
		for _, in := range s.Instances {
			mem += in.MemoryBytes
		}
		gauge(descWasmMemory, float64(mem), name)
		gauge(descWasmPeak, float64(s.PeakMemoryBytes), name)
		state := 0.0
		if s.Disabled {
			state = 1
		} else if !s.QuarantinedUntil.IsZero() {
			state = 2
		}
		gauge(descWasmDisabled, state, name)
	}
}

func gaugeTo(ch chan<- prometheus.Metric) func(d *prometheus.Desc, v float64, labels ...string) {
	return func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
}

func counterTo(ch chan<- prometheus.Metric) func(d *prometheus.Desc, v uint64, labels ...string) {
	return func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
}
