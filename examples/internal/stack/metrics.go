package stack

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the components' counters into Prometheus metrics at
// scrape time: nothing is counted twice, and nothing runs between
// scrapes.
type collector struct{ st *Stack }

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

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

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st, now := c.st, time.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if sess := st.sessionsOrNil(); sess != nil {
		gauge(descConnections, float64(len(sess.Clients())))
	}
	if st.Fleet != nil {
		fs := st.Fleet.Stats()
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
	gs := st.Guard.Stats()
	for _, p := range mqttguard.Points() {
		for _, v := range mqttguard.Verdicts() {
			counter(descDecisions, gs.Decisions[p][v], p.String(), v.String())
		}
	}
	for _, comp := range mqttguard.Components() {
		if comp == mqttguard.ByNone {
			continue
		}
		counter(descRefusals, gs.By[comp], comp.String())
		counter(descObserved, gs.Observed[comp], comp.String())
	}
	counter(descDelayed, gs.Delayed)
	counter(descAuditDropped, gs.AuditSuppressed)

	ts := st.Tracker.Stats(now)
	for s := trust.Normal; s <= trust.Disconnected; s++ {
		gauge(descTrustStates, float64(ts.States[s]), s.String())
	}
	for i, n := range ts.Scores {
		lo := i*100 + 1
		if i == 0 {
			lo = 0
		}
		gauge(descTrustScores, float64(n), fmt.Sprintf("%d-%d", lo, (i+1)*100))
	}
	for k := trust.RateLimited; k <= trust.Other; k++ {
		counter(descViolations, ts.Violations[k], k.String())
	}
	gauge(descBans, float64(len(st.Bans.List(now))))
	if st.Intervals != nil {
		as := st.Intervals.Stats()
		for r := anomaly.First; r <= anomaly.NoProfile; r++ {
			counter(descAnomalies, as.Count(r), r.String())
		}
	}
	counter(descFlapBans, st.Flapping.Stats().Bans)
	for code, n := range st.rejected.snapshot() {
		counter(descPacketRejects, n, fmt.Sprintf("0x%02X", code))
	}
	ps := st.Pending()
	gauge(descPending, float64(ps.Pending))
	counter(descPendingClosed, ps.EvictedPerAddress, "per_address")
	counter(descPendingClosed, ps.EvictedTotal, "total")
	counter(descKicks, st.Kicks.Load())
	for _, p := range st.Guard.Plugins() {
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
