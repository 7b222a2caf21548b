package mqttguard

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
	"golang.org/x/time/rate"
)

// Guard answers a broker's decision points. It is safe for concurrent
// use; its memory is bounded by its components'.
type Guard struct {
	cfg  Config
	mode atomic.Uint32

	// lim are the token buckets in force; SetRateLimits swaps them as one
	// (under limMu, so that two calls do not build from the same old set).
	lim   atomic.Pointer[limiters]
	limMu sync.Mutex

	plugins atomic.Pointer[[]*wasmguard.Plugin]
	audit   *auditor
	stats   counters
}

// New checks the configuration and builds a Guard.
func New(cfg Config) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.AnomalyBanFor == 0 {
		cfg.AnomalyBanFor = time.Hour
	}
	g := &Guard{cfg: cfg}
	g.mode.Store(uint32(cfg.Mode))
	if cfg.Trust != nil && cfg.Trust.Mode() != cfg.Mode {
		cfg.Trust.SetMode(cfg.Mode)
	}
	lim, err := newLimiters(cfg.RateLimits, nil, cfg.Logger, cfg.CannotDelay)
	if err != nil {
		return nil, err
	}
	g.lim.Store(lim)
	if cfg.Mode == trust.ObserveOnly && cfg.hasAbuseLayer() && cfg.Logger != nil {
		// The zero Mode is a safe default for a rollout, but a Guard
		// built without thinking of modes would look enforcing and not be.
		cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn,
			"mqttguard: Config.Mode is ObserveOnly (the zero value): rate limits, trust states, anomaly drops and automatic bans are only recorded, never enforced; set Mode to trust.EnforceLight or trust.EnforceFull to enforce them")
	}
	plugins := append([]*wasmguard.Plugin(nil), cfg.Plugins...)
	g.plugins.Store(&plugins)
	g.audit = newAuditor(cfg.Logger, cfg.AuditPerSecond)
	return g, nil
}

// Mode returns the mode in force.
func (g *Guard) Mode() trust.Mode { return trust.Mode(g.mode.Load()) }

// SetMode switches modes at run time (a staged rollout), for
// the Trust tracker too (see trust.Tracker.SetMode).
func (g *Guard) SetMode(m trust.Mode) {
	g.mode.Store(uint32(m))
	if g.cfg.Trust != nil {
		g.cfg.Trust.SetMode(m)
	}
}

// Plugins returns the plugins in force.
func (g *Guard) Plugins() []*wasmguard.Plugin { return *g.plugins.Load() }

// SetPlugins puts a new set of plugins in force and returns the old one,
// for the caller to Close once calls in progress are done (Plugin.Close
// waits for them).
func (g *Guard) SetPlugins(ps []*wasmguard.Plugin) (old []*wasmguard.Plugin) {
	ps = append([]*wasmguard.Plugin(nil), ps...)
	return *g.plugins.Swap(&ps)
}

// Config returns the configuration in force: the one the Guard was built
// with, with the Mode and RateLimits set since.
func (g *Guard) Config() Config {
	c := g.cfg
	c.Mode = g.Mode()
	c.RateLimits = g.lim.Load().cfg
	return c
}

// Sweep gives back memory held for clients that have gone quiet: idle
// rate-limit buckets, trust records, detector state and expired bans.
// Nothing in the Guard needs it to be correct; a broker calls it every
// minute or so to return memory sooner.
func (g *Guard) Sweep(now time.Time) {
	g.lim.Load().sweep(now)
	if g.cfg.Trust != nil {
		g.cfg.Trust.Sweep(now)
	}
	if g.cfg.Flapping != nil {
		g.cfg.Flapping.Sweep(now)
	}
	if g.cfg.Intervals != nil {
		g.cfg.Intervals.Sweep(now)
	}
	if g.cfg.Bans != nil {
		g.cfg.Bans.Sweep(now)
	}
	g.audit.sweep(now)
}

// refuse applies the mode to a refusal by the abuse layer. Enforcing,
// it returns d and stop. In ObserveOnly it counts and audits what would
// have happened, remembers the first such decision in obs (returned to
// the broker as an Allow with Observed set), and lets the checks go on.
func (g *Guard) refuse(p Point, d Decision, c *Client, now time.Time, obs *Decision) (Decision, bool) {
	if g.enforcing() {
		return d, true
	}
	o := Decision{Verdict: Allow, Cause: d.Cause, Observed: true, Would: d.Verdict, WouldCode: d.Code}
	g.stats.observed[d.Cause.Component].Add(1)
	if p != PointDeliver {
		g.audit.write(p, o, c, now)
	}
	if !obs.Observed {
		*obs = o
	}
	return Decision{}, false
}

func (g *Guard) enforcing() bool { return trust.Mode(g.mode.Load()) != trust.ObserveOnly }

// limiters are the Guard's token buckets, built from one RateLimits and
// swapped as one by SetRateLimits, so a decision never sees half of an
// old set and half of a new one.
type limiters struct {
	cfg RateLimits

	connAddr, connListener                              *ratelimit.Limiter
	msgClient, bytesClient, msgUser, msgTopic, msgTotal *ratelimit.Limiter
	// The fleet-wide limits, with RateLimits.Store; the Limiter of the
	// same name is nil then.
	sharedAddr, sharedUser, sharedTotal *ratelimit.Shared
}

// newLimiters builds the buckets rl asks for. A bucket whose Rate is the
// same as in old (nil on New) is carried over with what its keys have
// spent, so a reload that changes one limit does not hand every client a
// fresh burst on the others. noWait (Config.CannotDelay) keeps the
// shared limits' store round trips off the caller.
func newLimiters(rl RateLimits, old *limiters, log *slog.Logger, noWait bool) (*limiters, error) {
	if old == nil {
		old = &limiters{}
	}
	l := &limiters{cfg: rl}
	var opts []ratelimit.Option
	if rl.MaxKeys > 0 {
		opts = append(opts, ratelimit.WithMaxKeys(rl.MaxKeys))
	}
	local := func(r, was Rate, prev *ratelimit.Limiter) *ratelimit.Limiter {
		switch {
		case !r.on():
			return nil
		case prev != nil && r == was:
			return prev
		}
		return ratelimit.New(rate.Limit(r.PerSecond), r.burst(), opts...)
	}
	o := old.cfg
	l.connListener = local(rl.ConnectionsPerListener, o.ConnectionsPerListener, old.connListener)
	l.msgClient = local(rl.MessagesPerClient, o.MessagesPerClient, old.msgClient)
	l.bytesClient = local(rl.BytesPerClient, o.BytesPerClient, old.bytesClient)
	l.msgTopic = local(rl.MessagesPerTopic, o.MessagesPerTopic, old.msgTopic)
	if rl.Store == nil {
		l.connAddr = local(rl.ConnectionsPerAddr, o.ConnectionsPerAddr, old.connAddr)
		l.msgUser = local(rl.MessagesPerUser, o.MessagesPerUser, old.msgUser)
		l.msgTotal = local(rl.MessagesTotal, o.MessagesTotal, old.msgTotal)
		return l, nil
	}
	shared := func(field, prefix string, r, was Rate, prev *ratelimit.Shared) (*ratelimit.Shared, error) {
		switch {
		case !r.on():
			return nil, nil
		case prev != nil && r == was:
			return prev, nil
		}
		s, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: rl.Store, Prefix: prefix,
			Limit: rate.Limit(r.PerSecond), Burst: r.burst(), MaxKeys: rl.MaxKeys,
			Timeout: rl.StoreTimeout, WhenDown: rl.WhenStoreDown, NoWait: noWait, Logger: log})
		if err != nil {
			return nil, &ConfigError{Field: "RateLimits." + field, Msg: err.Error()}
		}
		return s, nil
	}
	var err error
	if l.sharedAddr, err = shared("ConnectionsPerAddr", "ip:", rl.ConnectionsPerAddr, o.ConnectionsPerAddr, old.sharedAddr); err != nil {
		return nil, err
	}
	if l.sharedUser, err = shared("MessagesPerUser", "user:", rl.MessagesPerUser, o.MessagesPerUser, old.sharedUser); err != nil {
		return nil, err
	}
	if l.sharedTotal, err = shared("MessagesTotal", "total:", rl.MessagesTotal, o.MessagesTotal, old.sharedTotal); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *limiters) sweep(now time.Time) {
	for _, b := range []*ratelimit.Limiter{l.connAddr, l.connListener, l.msgClient, l.bytesClient, l.msgUser, l.msgTopic, l.msgTotal} {
		if b != nil {
			b.Sweep(now)
		}
	}
	for _, s := range []*ratelimit.Shared{l.sharedAddr, l.sharedUser, l.sharedTotal} {
		if s != nil {
			s.Sweep(now)
		}
	}
}

// SetRateLimits puts new rate limits in force at run time, for the
// decisions that start after it returns. A limit whose Rate is unchanged
// keeps its buckets; a changed or new one starts every key with a full
// burst; a limit set to the zero Rate is off. The Store and its settings
// (WhenStoreDown, StoreTimeout) and MaxKeys are fixed at New: a
// RateLimits that changes them is refused with a *ConfigError naming the
// field, as is a negative Rate, and the limits in force stay.
func (g *Guard) SetRateLimits(rl RateLimits) error {
	c := g.cfg
	c.RateLimits = rl
	if err := c.validate(); err != nil {
		return err
	}
	g.limMu.Lock()
	defer g.limMu.Unlock()
	old := g.lim.Load()
	o := old.cfg
	switch {
	case (rl.Store == nil) != (o.Store == nil) || (rl.Store != nil && !sameStore(rl.Store, o.Store)):
		return &ConfigError{Field: "RateLimits.Store", Msg: "the store is fixed when the Guard is built; restart to change it"}
	case rl.WhenStoreDown != o.WhenStoreDown:
		return &ConfigError{Field: "RateLimits.WhenStoreDown", Msg: fmt.Sprintf("%v is fixed when the Guard is built; restart to change it", o.WhenStoreDown)}
	case rl.StoreTimeout != o.StoreTimeout:
		return &ConfigError{Field: "RateLimits.StoreTimeout", Msg: fmt.Sprintf("%v is fixed when the Guard is built; restart to change it", o.StoreTimeout)}
	case rl.MaxKeys != o.MaxKeys:
		return &ConfigError{Field: "RateLimits.MaxKeys", Msg: fmt.Sprintf("%d is fixed when the Guard is built; restart to change it", o.MaxKeys)}
	}
	lim, err := newLimiters(rl, old, g.cfg.Logger, g.cfg.CannotDelay)
	if err != nil {
		return err
	}
	g.lim.Store(lim)
	return nil
}

// sameStore compares two stores without panicking on a store type that
// is not comparable (which is then never "the same").
func sameStore(a, b ratelimit.Store) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
