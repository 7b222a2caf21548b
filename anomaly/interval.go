package anomaly

import (
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Result classifies one report.
type Result uint8

const (
	First      Result = iota // the device's first report: nothing to compare
	Normal                   // within the profile
	TooEarly                 // the gap is shorter than Interval − Tolerance
	TooLate                  // the gap is longer than Interval + Tolerance
	OutOfOrder               // older than the last report: ignored
	NoProfile                // the resolver has no profile for the device

	numResults = int(NoProfile) + 1
)

func (r Result) String() string {
	switch r {
	case First:
		return "first"
	case Normal:
		return "normal"
	case TooEarly:
		return "too-early"
	case TooLate:
		return "too-late"
	case OutOfOrder:
		return "out-of-order"
	case NoProfile:
		return "no-profile"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Action is what the detector recommends.
type Action uint8

const (
	Keep Action = iota // store the message as usual
	Drop               // acknowledge it, do not store or deliver it
	Flag               // drop it and flag the device (a trust violation)
	Ban                // drop it and ban the device, by client ID first
)

func (a Action) String() string {
	switch a {
	case Keep:
		return "keep"
	case Drop:
		return "drop"
	case Flag:
		return "flag"
	case Ban:
		return "ban"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Verdict is the judgement of one report.
type Verdict struct {
	Result  Result
	Gap     time.Duration // the measured gap A (0 for First, NoProfile)
	Profile Profile
	Strikes int // the device's anomalies counted so far (see Policy)
	Action  Action
}

// Policy turns anomalies into strikes and strikes into actions.
type Policy struct {
	// FlagAfter and BanAfter are the strike counts at which a device is
	// flagged and banned (defaults 3 and 10). BanAfter 0 means its
	// default; to never recommend a ban set it above 255.
	FlagAfter int
	BanAfter  int
	// PunishLate counts too-late reports as strikes and drops them. Off by
	// default: a device that was offline is not an attacker.
	PunishLate bool
	// Leaky makes a normal report take away one strike instead of all of
	// them, so anomalies count within a window rather than in a row.
	Leaky bool
}

// Config configures an IntervalDetector.
type Config struct {
	Resolver Resolver
	Policy   Policy
	// MaxDevices bounds the devices tracked (default 1<<20). When full,
	// devices not heard from for Policy-independent IdleExpiry go first,
	// then the longest-silent device without strikes; devices with
	// strikes are never dropped to make room.
	MaxDevices int
	// IdleExpiry is how long a silent device is remembered (default 24h).
	IdleExpiry time.Duration
}

// device is the state of one device: its last report and strike count.
type device struct {
	last    int64 // unix ns of the last report
	strikes uint8
}

const detectorShards = 64

type detectorShard struct {
	mu      sync.Mutex
	devices map[uint64]device
	counts  [numResults]uint64
	_       [40]byte
}

// IntervalDetector judges the gaps between a device's reports against
// its profile. It is safe for concurrent use.
type IntervalDetector struct {
	cfg      Config
	resolver atomic.Pointer[Resolver] // cfg.Resolver until SetResolver
	seed     maphash.Seed
	maxShard int
	shards   [detectorShards]detectorShard
	evicted  atomic.Uint64
}

// NewIntervalDetector returns a detector. A nil Resolver judges nothing
// (every verdict is NoProfile) until one is given.
func NewIntervalDetector(cfg Config) *IntervalDetector {
	if cfg.Policy.FlagAfter <= 0 {
		cfg.Policy.FlagAfter = 3
	}
	if cfg.Policy.BanAfter <= 0 {
		cfg.Policy.BanAfter = 10
	}
	if cfg.MaxDevices <= 0 {
		cfg.MaxDevices = 1 << 20
	}
	if cfg.IdleExpiry <= 0 {
		cfg.IdleExpiry = 24 * time.Hour
	}
	d := &IntervalDetector{cfg: cfg, seed: maphash.MakeSeed()}
	d.resolver.Store(&cfg.Resolver)
	d.maxShard = max(1, (cfg.MaxDevices+detectorShards-1)/detectorShards)
	for i := range d.shards {
		d.shards[i].devices = map[uint64]device{}
	}
	return d
}

// SetResolver puts new profiles in force at run time (nil: none). Devices
// keep their last report time and strikes, and their next report is
// judged by the profile the new resolver gives.
func (d *IntervalDetector) SetResolver(r Resolver) { d.resolver.Store(&r) }

// Observe judges a report of the device at time t, with the profile the
// resolver gives for Subject{ClientID: deviceID}.
func (d *IntervalDetector) Observe(deviceID string, t time.Time) Verdict {
	s := Subject{ClientID: deviceID}
	p, ok := d.resolve(s)
	if !ok {
		return d.count(maphash.String(d.seed, deviceID), Verdict{Result: NoProfile})
	}
	return d.observe(maphash.String(d.seed, deviceID), p, t)
}

// ObserveMessage judges a message: the device is the pair (client ID,
// topic), so a client that reports several topics at their own
// intervals is judged per topic, and the resolver sees the username and
// topic too.
func (d *IntervalDetector) ObserveMessage(s Subject, t time.Time) Verdict {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(s.ClientID)
	h.WriteByte(0)
	h.WriteString(s.Topic)
	key := h.Sum64()
	p, ok := d.resolve(s)
	if !ok {
		return d.count(key, Verdict{Result: NoProfile})
	}
	return d.observe(key, p, t)
}

// ObserveWith judges a report against a profile the caller already has.
func (d *IntervalDetector) ObserveWith(deviceID string, p Profile, t time.Time) Verdict {
	if !p.Valid() {
		return d.count(maphash.String(d.seed, deviceID), Verdict{Result: NoProfile})
	}
	return d.observe(maphash.String(d.seed, deviceID), p, t)
}

func (d *IntervalDetector) resolve(s Subject) (Profile, bool) {
	r := *d.resolver.Load()
	if r == nil {
		return Profile{}, false
	}
	p, ok := r(s)
	return p, ok && p.Valid()
}

func (d *IntervalDetector) count(key uint64, v Verdict) Verdict {
	s := &d.shards[key%detectorShards]
	s.mu.Lock()
	s.counts[v.Result]++
	s.mu.Unlock()
	return v
}

func (d *IntervalDetector) observe(key uint64, p Profile, t time.Time) Verdict {
	now := t.UnixNano()
	pol := &d.cfg.Policy
	v := Verdict{Profile: p}
	s := &d.shards[key%detectorShards]
	s.mu.Lock()
	dev, known := s.devices[key]
	switch {
	case !known:
		v.Result = First
		if len(s.devices) >= d.maxShard && !d.evictLocked(s, now) {
			// Full of devices with strikes: judge without remembering.
			s.counts[First]++
			s.mu.Unlock()
			return v
		}
		dev = device{last: now}
	case now < dev.last:
		v.Result = OutOfOrder
		v.Gap = time.Duration(now - dev.last)
		v.Strikes = int(dev.strikes)
		s.counts[OutOfOrder]++
		s.mu.Unlock()
		return v
	default:
		v.Gap = time.Duration(now - dev.last)
		v.Result = p.Judge(v.Gap)
		dev.last = now
		strike := v.Result == TooEarly || (v.Result == TooLate && pol.PunishLate)
		switch {
		case strike:
			if dev.strikes < 255 {
				dev.strikes++
			}
		case v.Result == Normal && pol.Leaky:
			if dev.strikes > 0 {
				dev.strikes--
			}
		case v.Result == Normal:
			dev.strikes = 0
		}
		v.Strikes = int(dev.strikes)
		if strike {
			v.Action = Drop
			if v.Strikes >= pol.FlagAfter {
				v.Action = Flag
			}
			if v.Strikes >= pol.BanAfter {
				v.Action = Ban
			}
		}
	}
	s.devices[key] = dev
	s.counts[v.Result]++
	s.mu.Unlock()
	return v
}

// evictLocked makes room for one device: an idle one if the sample has
// one, else the longest-silent device without strikes in it.
func (d *IntervalDetector) evictLocked(s *detectorShard, now int64) bool {
	idle := d.cfg.IdleExpiry.Nanoseconds()
	var victim uint64
	var oldest int64
	found, seen := false, 0
	for k, dev := range s.devices {
		if now-dev.last >= idle {
			delete(s.devices, k)
			d.evicted.Add(1)
			return true
		}
		if dev.strikes == 0 && (!found || dev.last < oldest) {
			victim, oldest, found = k, dev.last, true
		}
		if seen++; seen >= 64 {
			break // a bounded sample: a full detector stays cheap
		}
	}
	if found {
		delete(s.devices, victim)
		d.evicted.Add(1)
	}
	return found
}

// Forget drops a device's state (after a ban, or when it is replaced).
func (d *IntervalDetector) Forget(deviceID string) {
	key := maphash.String(d.seed, deviceID)
	s := &d.shards[key%detectorShards]
	s.mu.Lock()
	delete(s.devices, key)
	s.mu.Unlock()
}

// Sweep drops devices silent for Config.IdleExpiry at t; it returns how
// many.
func (d *IntervalDetector) Sweep(t time.Time) int {
	now, idle := t.UnixNano(), d.cfg.IdleExpiry.Nanoseconds()
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for k, dev := range s.devices {
			if now-dev.last >= idle {
				delete(s.devices, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	d.evicted.Add(uint64(n))
	return n
}

// Stats are a detector's counters.
type Stats struct {
	Devices int                // devices tracked now
	Results [numResults]uint64 // reports by result
	Evicted uint64             // devices dropped (idle, or to make room)
}

// Count returns how many reports had the given result.
func (s Stats) Count(r Result) uint64 { return s.Results[r] }

// Stats returns the counters.
func (d *IntervalDetector) Stats() Stats {
	var st Stats
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		st.Devices += len(s.devices)
		for r, n := range s.counts {
			st.Results[r] += n
		}
		s.mu.Unlock()
	}
	st.Evicted = d.evicted.Load()
	return st
}
