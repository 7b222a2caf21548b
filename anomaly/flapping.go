package anomaly

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// FlappingConfig configures a FlappingDetector; zero fields take EMQX's
// defaults.
type FlappingConfig struct {
	MaxConnects int           // connects allowed within Window (default 15)
	Window      time.Duration // default 1 minute
	BanFor      time.Duration // default 5 minutes
	MaxClients  int           // clients tracked (default 1<<20)
}

// FlapVerdict is the judgement of one connect.
type FlapVerdict struct {
	// Count is the connects in the current window, this one included.
	Count int
	// Ban is true when this connect reached MaxConnects: ban the client
	// ID until BanUntil. It is true once per window, so the caller bans
	// once, not on every further connect.
	Ban      bool
	BanUntil time.Time
}

type flapState struct {
	start int64 // window start (unix ns)
	count uint32
}

type flapShard struct {
	mu      sync.Mutex
	clients map[uint64]flapState
	_       [48]byte
}

// FlappingDetector counts connects per client ID in fixed windows that
// start at the first connect, as EMQX's flapping detection does. It is
// safe for concurrent use and bounded by MaxClients: when full, a client
// whose window has ended makes room, and a new client that finds none is
// not counted (never another client's open window forgotten).
type FlappingDetector struct {
	cfg       atomic.Pointer[FlappingConfig] // SetConfig swaps it
	seed      maphash.Seed
	maxShard  int
	shards    [detectorShards]flapShard
	bans      atomic.Uint64
	untracked atomic.Uint64
}

// NewFlappingDetector returns a detector with cfg's zero fields set to
// the defaults.
func NewFlappingDetector(cfg FlappingConfig) *FlappingDetector {
	cfg = cfg.withDefaults()
	f := &FlappingDetector{seed: maphash.MakeSeed()}
	f.cfg.Store(&cfg)
	f.maxShard = max(1, (cfg.MaxClients+detectorShards-1)/detectorShards)
	for i := range f.shards {
		f.shards[i].clients = map[uint64]flapState{}
	}
	return f
}

func (cfg FlappingConfig) withDefaults() FlappingConfig {
	if cfg.MaxConnects <= 0 {
		cfg.MaxConnects = 15
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.BanFor <= 0 {
		cfg.BanFor = 5 * time.Minute
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1 << 20
	}
	return cfg
}

// Config returns the configuration in force, with defaults filled in.
func (f *FlappingDetector) Config() FlappingConfig { return *f.cfg.Load() }

// SetConfig changes MaxConnects, Window and BanFor at run time (zero
// fields: the defaults); MaxClients stays what it was at
// NewFlappingDetector, as the memory was sized for it. Open windows keep
// their counts and are judged by the new values from the next connect.
func (f *FlappingDetector) SetConfig(cfg FlappingConfig) {
	cfg.MaxClients = f.Config().MaxClients
	cfg = cfg.withDefaults()
	f.cfg.Store(&cfg)
}

// Connect counts a connect of the client at time t.
func (f *FlappingDetector) Connect(clientID string, t time.Time) FlapVerdict {
	key := maphash.String(f.seed, clientID)
	cfg := f.cfg.Load()
	now := t.UnixNano()
	window := cfg.Window.Nanoseconds()
	s := &f.shards[key%detectorShards]
	s.mu.Lock()
	st, ok := s.clients[key]
	if !ok || now-st.start >= window || now < st.start {
		if !ok && len(s.clients) >= f.maxShard && !f.evictLocked(s, now, window) {
			// Full of clients in the middle of a window: counting this one
			// would mean forgetting another's count, which a flood of new
			// client IDs could use to wash out its own. Let it pass
			// uncounted.
			s.mu.Unlock()
			f.untracked.Add(1)
			return FlapVerdict{Count: 1}
		}
		st = flapState{start: now}
	}
	if st.count < 1<<31 {
		st.count++
	}
	s.clients[key] = st
	s.mu.Unlock()
	v := FlapVerdict{Count: int(st.count)}
	if v.Count == cfg.MaxConnects {
		v.Ban = true
		v.BanUntil = t.Add(cfg.BanFor)
		f.bans.Add(1)
	}
	return v
}

// evictLocked makes room by dropping one client whose window has ended,
// looking at a bounded sample so that a full detector costs every new
// client the same small amount.
func (f *FlappingDetector) evictLocked(s *flapShard, now, window int64) bool {
	seen := 0
	for k, st := range s.clients {
		if now-st.start >= window {
			delete(s.clients, k)
			return true
		}
		if seen++; seen >= 64 {
			break
		}
	}
	return false
}

// Sweep drops the clients whose window ended at t.
func (f *FlappingDetector) Sweep(t time.Time) int {
	now, window := t.UnixNano(), f.cfg.Load().Window.Nanoseconds()
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		for k, st := range s.clients {
			if now-st.start >= window {
				delete(s.clients, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// FlapStats are the detector's counters.
type FlapStats struct {
	Clients   int    // clients with an open window
	Bans      uint64 // bans recommended
	Untracked uint64 // connects not counted because the detector was full
}

// Stats returns the counters.
func (f *FlappingDetector) Stats() FlapStats {
	var st FlapStats
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		st.Clients += len(s.clients)
		s.mu.Unlock()
	}
	st.Bans = f.bans.Load()
	st.Untracked = f.untracked.Load()
	return st
}
