package mqttguard

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/internal/loglimit"
	"github.com/mqttguard/mqttguard/ratelimit"
	"golang.org/x/time/rate"
)

// Point is a decision point.
type Point uint8

const (
	PointConnect Point = iota
	PointPublish
	PointSubscribe
	PointDeliver
	PointWill // the will, when it is about to be sent
	numPoints
)

var pointNames = [numPoints]string{"connect", "publish", "subscribe", "deliver", "will"}

func (p Point) String() string {
	if p < numPoints {
		return pointNames[p]
	}
	return "Point(?)"
}

// auditor writes the audit log. Two bounds keep a flood from flooding
// it: a token bucket per client ID (AuditPerSecond, bursts of 10), and,
// because an attacker invents client IDs at will, a loglimit.Handler
// around the logger that counts by the client's address and in total
// (auditLimits: 20 lines a minute per address, 300 in all plus the
// first line of up to 300 more addresses) and writes one "N similar
// records suppressed" line a minute with what it dropped. A window
// writes at most 600 audit lines and a summary, whatever arrives; a
// real event from an address the flood has not used still appears.
type auditor struct {
	log        *slog.Logger
	limited    *loglimit.Handler
	limit      *ratelimit.Limiter
	suppressed atomic.Uint64
}

// auditLimits bound the audit log by address and in total.
var auditLimits = loglimit.Config{Keys: []string{"addr"}, PerKey: 20, Total: 300, NewKeys: 300, Interval: time.Minute}

func newAuditor(l *slog.Logger, perSecond float64) *auditor {
	if l == nil {
		return &auditor{}
	}
	if perSecond <= 0 {
		perSecond = 2
	}
	limited := loglimit.New(l.Handler(), auditLimits)
	return &auditor{log: slog.New(limited), limited: limited,
		limit: ratelimit.New(rate.Limit(perSecond), 10, ratelimit.WithMaxKeys(1<<16))}
}

// sweep forgets idle clients' buckets and writes the summary of a
// minute that ended with lines suppressed.
func (a *auditor) sweep(now time.Time) {
	if a.limit != nil {
		a.limit.Sweep(now)
	}
	if a.limited != nil {
		a.limited.Flush(now)
	}
}

// dropped is how many audit lines the bounds dropped.
func (a *auditor) dropped() uint64 {
	n := a.suppressed.Load()
	if a.limited != nil {
		n += a.limited.Stats().Suppressed
	}
	return n
}

// write logs one decision that was not a plain Allow, at the decision's
// time (which is what the address and total bounds count by).
func (a *auditor) write(p Point, d Decision, c *Client, now time.Time) {
	if a.log == nil {
		return
	}
	if !a.limit.AllowN(c.ID, now, 1) {
		a.suppressed.Add(1)
		return
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	attrs := []slog.Attr{
		slog.String("point", p.String()),
		slog.String("client", c.ID),
		slog.String("username", c.Username),
		slog.String("addr", c.Addr.String()),
		slog.String("component", d.Cause.Component.String()),
	}
	verdict, code := d.Verdict, d.Code
	if d.Observed {
		verdict, code = d.Would, d.WouldCode
		attrs = append(attrs, slog.Bool("observed", true))
	}
	attrs = append(attrs, slog.String("verdict", verdict.String()), slog.Int("code", int(code)))
	if d.Cause.Rule != "" {
		attrs = append(attrs, slog.String("rule", d.Cause.Rule))
	}
	if d.Cause.File != "" {
		attrs = append(attrs, slog.String("file", d.Cause.File))
	}
	if d.Cause.Line > 0 {
		attrs = append(attrs, slog.Int("line", d.Cause.Line))
	}
	if d.Cause.Detail != "" {
		attrs = append(attrs, slog.String("detail", d.Cause.Detail))
	}
	msg := "mqttguard: " + verdict.String()
	if d.Observed {
		msg = "mqttguard: would " + verdict.String()
	}
	r := slog.NewRecord(now, slog.LevelWarn, msg, 0)
	r.AddAttrs(attrs...)
	a.limited.Handle(ctx, r)
}

type counters struct {
	decisions [numPoints][numVerdicts]atomic.Uint64
	by        [numComponents]atomic.Uint64 // refusals, drops and disconnects, by who
	observed  [numComponents]atomic.Uint64 // what ObserveOnly let through, by who would have refused
	delayed   atomic.Uint64
}

// Stats are the Guard's counters since New. Read the counters by point,
// verdict and component with its methods (Points, Verdicts and
// Components enumerate them), so that a new decision point or component
// changes no exported type.
type Stats struct {
	decisions [numPoints][numVerdicts]uint64
	by        [numComponents]uint64
	observed  [numComponents]uint64
	// Delayed counts publishes held back (Throttled clients).
	Delayed uint64
	// AuditSuppressed counts audit lines dropped by the audit's bounds
	// (per client, per address, in total).
	AuditSuppressed uint64
}

// Decisions counts the decisions taken at p with verdict v.
func (s Stats) Decisions(p Point, v Verdict) uint64 {
	if p >= numPoints || v >= numVerdicts {
		return 0
	}
	return s.decisions[p][v]
}

// By counts the decisions that were not Allow by the component that
// took them.
func (s Stats) By(c Component) uint64 {
	if c >= numComponents {
		return 0
	}
	return s.by[c]
}

// Observed counts what ObserveOnly let through that c would have
// refused.
func (s Stats) Observed(c Component) uint64 {
	if c >= numComponents {
		return 0
	}
	return s.observed[c]
}

// Stats returns a snapshot of the counters.
func (g *Guard) Stats() Stats {
	var s Stats
	for p := range s.decisions {
		for v := range s.decisions[p] {
			s.decisions[p][v] = g.stats.decisions[p][v].Load()
		}
	}
	for c := range s.by {
		s.by[c] = g.stats.by[c].Load()
		s.observed[c] = g.stats.observed[c].Load()
	}
	s.Delayed = g.stats.delayed.Load()
	s.AuditSuppressed = g.audit.dropped()
	return s
}

// Points lists the decision points.
func Points() []Point {
	out := make([]Point, numPoints)
	for i := range out {
		out[i] = Point(i)
	}
	return out
}

// Verdicts lists the verdicts.
func Verdicts() []Verdict {
	out := make([]Verdict, numVerdicts)
	for i := range out {
		out[i] = Verdict(i)
	}
	return out
}

// Components lists the components.
func Components() []Component {
	out := make([]Component, numComponents)
	for i := range out {
		out[i] = Component(i)
	}
	return out
}

// record counts a decision and audits a refusal. (Observed decisions
// were counted and audited by refuse, where they happened.)
func (g *Guard) record(p Point, d Decision, c *Client, topic string, now time.Time) Decision {
	g.stats.decisions[p][d.Verdict].Add(1)
	switch {
	case d.Verdict != Allow:
		g.stats.by[d.Cause.Component].Add(1)
	case d.Delay > 0:
		g.stats.delayed.Add(1)
		return d
	case d.Observed:
		g.told(p, d, c, topic, now)
		return d
	default:
		return d
	}
	g.told(p, d, c, topic, now)
	g.audit.write(p, d, c, now)
	return d
}

// told hands a refusal (or, in ObserveOnly, what would have been one)
// to Config.OnRefusal.
func (g *Guard) told(p Point, d Decision, c *Client, topic string, now time.Time) {
	if f := g.cfg.OnRefusal; f != nil {
		f(Refusal{At: now, Point: p, Client: c, Topic: topic, Decision: d})
	}
}
