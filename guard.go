package mqttguard

import (
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

	connAddr, connListener                              *ratelimit.Limiter
	msgClient, bytesClient, msgUser, msgTopic, msgTotal *ratelimit.Limiter
	// The fleet-wide limits, with RateLimits.Store; the Limiter of the
	// same name is nil then.
	sharedAddr, sharedUser, sharedTotal *ratelimit.Shared

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
	rl := cfg.RateLimits
	var opts []ratelimit.Option
	if rl.MaxKeys > 0 {
		opts = append(opts, ratelimit.WithMaxKeys(rl.MaxKeys))
	}
	limiter := func(r Rate) *ratelimit.Limiter {
		if !r.on() {
			return nil
		}
		return ratelimit.New(rate.Limit(r.PerSecond), r.burst(), opts...)
	}
	g.connListener = limiter(rl.ConnectionsPerListener)
	g.msgClient = limiter(rl.MessagesPerClient)
	g.bytesClient = limiter(rl.BytesPerClient)
	g.msgTopic = limiter(rl.MessagesPerTopic)
	if rl.Store == nil {
		g.connAddr = limiter(rl.ConnectionsPerAddr)
		g.msgUser = limiter(rl.MessagesPerUser)
		g.msgTotal = limiter(rl.MessagesTotal)
	} else {
		shared := func(prefix string, r Rate) (*ratelimit.Shared, error) {
			if !r.on() {
				return nil, nil
			}
			return ratelimit.NewShared(ratelimit.SharedConfig{Store: rl.Store, Prefix: prefix,
				Limit: rate.Limit(r.PerSecond), Burst: r.burst(), MaxKeys: rl.MaxKeys,
				Timeout: rl.StoreTimeout, WhenDown: rl.WhenStoreDown, Logger: cfg.Logger})
		}
		var err error
		if g.sharedAddr, err = shared("ip:", rl.ConnectionsPerAddr); err != nil {
			return nil, &ConfigError{Field: "RateLimits.ConnectionsPerAddr", Msg: err.Error()}
		}
		if g.sharedUser, err = shared("user:", rl.MessagesPerUser); err != nil {
			return nil, &ConfigError{Field: "RateLimits.MessagesPerUser", Msg: err.Error()}
		}
		if g.sharedTotal, err = shared("total:", rl.MessagesTotal); err != nil {
			return nil, &ConfigError{Field: "RateLimits.MessagesTotal", Msg: err.Error()}
		}
	}
	plugins := append([]*wasmguard.Plugin(nil), cfg.Plugins...)
	g.plugins.Store(&plugins)
	g.audit = newAuditor(cfg.Logger, cfg.AuditPerSecond)
	return g, nil
}

// Mode returns the mode in force.
func (g *Guard) Mode() trust.Mode { return trust.Mode(g.mode.Load()) }

// SetMode switches modes at run time (the seed's staged rollout), for
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

// Config returns the configuration the Guard was built with.
func (g *Guard) Config() Config { return g.cfg }

// Sweep gives back memory held for clients that have gone quiet: idle
// rate-limit buckets, trust records, detector state and expired bans.
// Nothing in the Guard needs it to be correct; a broker calls it every
// minute or so to return memory sooner.
func (g *Guard) Sweep(now time.Time) {
	for _, l := range []*ratelimit.Limiter{g.connAddr, g.connListener, g.msgClient, g.bytesClient, g.msgUser, g.msgTopic, g.msgTotal} {
		if l != nil {
			l.Sweep(now)
		}
	}
	for _, s := range []*ratelimit.Shared{g.sharedAddr, g.sharedUser, g.sharedTotal} {
		if s != nil {
			s.Sweep(now)
		}
	}
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
