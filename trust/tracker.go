package trust

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is who a client is. Records are kept by client ID (within
// its username: see Tracker), by username, and by address when
// Config.IPFactor asks for it or the client has no username.
type Identity struct {
	ClientID string
	Username string
	Addr     netip.Addr
}

// Dimension says which part of an Identity a record is about.
type Dimension uint8

const (
	ByClientID Dimension = iota
	ByUsername
	ByAddr
)

// ParseDimension reads the names String returns.
func ParseDimension(s string) (Dimension, error) {
	for d := ByClientID; d <= ByAddr; d++ {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dimension %q; want client, username or ip", s)
}

func (d Dimension) String() string {
	switch d {
	case ByClientID:
		return "client"
	case ByUsername:
		return "username"
	case ByAddr:
		return "ip"
	}
	return "dimension?"
}

// Transition is one state change of one record.
type Transition struct {
	Dimension Dimension
	Key       string // the client ID, username or address
	// Username is, for a client ID's record, the username the client
	// authenticated with: the record is that user's client's ("" for
	// an anonymous client).
	Username string
	From, To State
	At       time.Time
	// Escalation is true for a step up, caused by Kind; false for a step
	// down on recovery.
	Escalation bool
	Kind       Kind
	Reason     string
	Score      int
	// Adopted is true for a change taken from another broker (Adopt):
	// a shared store does not send it back.
	Adopted bool
}

const trackerShards = 64

type trackerShard struct {
	mu         sync.Mutex
	clients    map[string]*record
	users      map[string]*record
	addrs      map[netip.Addr]*record
	violations [numKinds]uint64 // under mu: counted where the lock is held anyway
	_          [32]byte
}

func (s *trackerShard) len() int { return len(s.clients) + len(s.users) + len(s.addrs) }

// Tracker keeps a trust record per client and answers what state each is
// in. It is safe for concurrent use; its memory is bounded by
// Config.MaxRecords. Every method takes the time as a parameter.
//
// Evidence counts only against what a client has proven to be. A client
// ID is chosen by the client, so a client ID's record belongs to the
// username it authenticated with: bob's violations under the client ID
// "sensor2-device" are bob's and never touch sensor2's device. The
// username's own record (Config.UsernameFactor, default 1) carries what
// its clients did to the next client ID it tries, so a new client ID
// does not start afresh. A client with no username has proven only its
// address: its violations count against the address too. (A broker
// never reports violations of a client that has not authenticated: see
// AuthGate for those.)
type Tracker struct {
	cfg      Config
	p        params
	mode     atomic.Uint32
	seed     maphash.Seed
	maxShard int
	shards   [trackerShards]trackerShard

	violations  [numKinds]atomic.Uint64
	transitions atomic.Uint64
	untracked   atomic.Uint64

	// factors are Config.UsernameFactor and IPFactor, which SetFactors
	// changes at run time; cfg keeps the ones given to New.
	factors atomic.Pointer[[2]float64]

	// perUser counts the client records of each username, bounded by
	// Config.MaxClientsPerUser (under umu, taken after a shard's lock).
	umu     sync.Mutex
	perUser map[string]int
}

// clientKey is a client record's key: the client ID within its username.
// MQTT strings carry no U+0000, so the separator is unambiguous.
func clientKey(username, clientID string) string { return username + "\x00" + clientID }

// splitClientKey undoes clientKey.
func splitClientKey(k string) (username, clientID string) {
	username, clientID, _ = strings.Cut(k, "\x00")
	return
}

// New returns a Tracker, or an error naming the Config field that is
// wrong.
func New(cfg Config) (*Tracker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, p: newParams(cfg), seed: maphash.MakeSeed(), perUser: map[string]int{}}
	t.mode.Store(uint32(cfg.Mode))
	t.factors.Store(&[2]float64{cfg.UsernameFactor, cfg.IPFactor})
	t.maxShard = max(1, (cfg.MaxRecords+trackerShards-1)/trackerShards)
	for i := range t.shards {
		s := &t.shards[i]
		s.clients, s.users, s.addrs = map[string]*record{}, map[string]*record{}, map[netip.Addr]*record{}
	}
	return t, nil
}

// Config returns the configuration in effect, defaults filled in.
func (t *Tracker) Config() Config {
	c := t.cfg
	c.Mode = t.Mode()
	f := t.factors.Load()
	c.UsernameFactor, c.IPFactor = f[0], f[1]
	return c
}

// SetFactors changes Config.UsernameFactor and IPFactor at run time, for
// the violations counted from then on. Records already kept by username
// or address stay; while a factor is 0 they are not consulted.
func (t *Tracker) SetFactors(username, ip float64) error {
	if username < 0 || ip < 0 {
		return &ConfigError{"UsernameFactor/IPFactor", "must not be negative (0 turns a dimension off)"}
	}
	t.factors.Store(&[2]float64{username, ip})
	return nil
}

// Mode returns the current mode.
func (t *Tracker) Mode() Mode { return Mode(t.mode.Load()) }

// SetMode switches modes at run time. Leaving ObserveOnly starts every
// client afresh at Normal with no escalation level (scores are kept): the
// states ObserveOnly recorded were never felt by the clients, and
// enforcing them at once would punish a whole fleet for the past.
func (t *Tracker) SetMode(m Mode) {
	old := Mode(t.mode.Swap(uint32(m)))
	if old != ObserveOnly || m == ObserveOnly {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.each(func(_ Dimension, _ string, _ netip.Addr, r *record) bool {
			r.state, r.cur, r.prev, r.lastBad = Normal, 0, 0, 0
			return false
		})
		s.mu.Unlock()
	}
}

// each visits the shard's records (under mu); f returns true to delete
// the record.
func (s *trackerShard) each(f func(Dimension, string, netip.Addr, *record) bool) {
	for k, r := range s.clients {
		if f(ByClientID, k, netip.Addr{}, r) {
			delete(s.clients, k)
		}
	}
	for k, r := range s.users {
		if f(ByUsername, k, netip.Addr{}, r) {
			delete(s.users, k)
		}
	}
	for k, r := range s.addrs {
		if f(ByAddr, "", k, r) {
			delete(s.addrs, k)
		}
	}
}

// locked finds (and if create, makes) the record of one identity and
// returns it with its shard locked; the caller unlocks. r is nil when no
// record exists and none can be made. For ByClientID, key is the client
// ID and user its username; the record's map key is clientKey(user,
// key), built on the stack so that a lookup allocates nothing.
func (t *Tracker) locked(dim Dimension, key, user string, addr netip.Addr, now int64, create bool) (*trackerShard, *record) {
	var h uint64
	var buf [96]byte
	var ck []byte
	switch dim {
	case ByAddr:
		h = maphash.Comparable(t.seed, addr)
	case ByClientID:
		ck = append(append(append(buf[:0], user...), 0), key...)
		h = maphash.Bytes(t.seed, ck)
	default:
		h = maphash.String(t.seed, key)
	}
	s := &t.shards[h%trackerShards]
	s.mu.Lock()
	var r *record
	switch dim {
	case ByClientID:
		r = s.clients[string(ck)]
	case ByUsername:
		r = s.users[key]
	default:
		r = s.addrs[addr]
	}
	if r != nil || !create {
		return s, r
	}
	if dim == ByClientID && !t.admitClient(user) {
		t.untracked.Add(1) // the username's quota is spent: its own record still counts
		return s, nil
	}
	if s.len() >= t.maxShard {
		t.evictLocked(s, now)
	}
	r = newRecord(&t.p, now)
	switch dim {
	case ByClientID:
		s.clients[string(ck)] = r
	case ByUsername:
		s.users[strings.Clone(key)] = r // callers' strings may live in reused buffers
	default:
		s.addrs[addr] = r
	}
	return s, r
}

// admitClient counts a new client record against its username's quota
// (under a shard's lock) and reports whether it may be made.
func (t *Tracker) admitClient(user string) bool {
	t.umu.Lock()
	defer t.umu.Unlock()
	if t.perUser[user] >= t.cfg.MaxClientsPerUser {
		return false
	}
	t.perUser[user]++
	return true
}

// clientGone gives a dropped client record's place back to its
// username's quota (under a shard's lock).
func (t *Tracker) clientGone(key string) {
	user, _ := splitClientKey(key)
	t.umu.Lock()
	defer t.umu.Unlock()
	if t.perUser[user] <= 1 {
		delete(t.perUser, user)
		return
	}
	t.perUser[user]--
}

// dims lists the identities a call touches: the client ID (within its
// username) always; the username; the address when configured, and
// always for a client without a username, which has proven nothing
// else.
func (t *Tracker) dims(id Identity) (n int, dims [3]Dimension, factors [3]float64) {
	if id.ClientID != "" {
		dims[n], factors[n] = ByClientID, 1
		n++
	}
	f := t.factors.Load()
	if f[0] > 0 && id.Username != "" {
		dims[n], factors[n] = ByUsername, f[0]
		n++
	}
	ip := f[1]
	if id.Username == "" {
		ip = max(ip, 1)
	}
	if ip > 0 && id.Addr.IsValid() {
		dims[n], factors[n] = ByAddr, ip
		n++
	}
	return
}

// keyOf is what locked needs to find the identity's record of a
// dimension.
func keyOf(id Identity, d Dimension) (key, user string, addr netip.Addr) {
	switch d {
	case ByClientID:
		return id.ClientID, id.Username, netip.Addr{}
	case ByUsername:
		return id.Username, "", netip.Addr{}
	}
	return "", "", id.Addr.Unmap()
}

// Violation counts one violation of the given kind against the client
// (and, if configured, its username and address) and returns the
// client's state afterwards. In ObserveOnly a client counts at most one
// violation per cooldown.
func (t *Tracker) Violation(id Identity, kind Kind, at time.Time) State {
	if int(kind) >= numKinds {
		kind = Other
	}
	w := t.p.weights[kind]
	now := at.UnixNano()
	mode := t.Mode()
	limit := mode.maxState()
	state := Normal
	var steps stepList
	n, dims, factors := t.dims(id)
	if n == 0 {
		t.violations[kind].Add(1) // an anonymous violation: no record to count it with
	}
	for i := 0; i < n; i++ {
		key, user, addr := keyOf(id, dims[i])
		s, r := t.locked(dims[i], key, user, addr, now, true)
		if i == 0 {
			s.violations[kind]++
		}
		if r != nil {
			mark := steps.len()
			r.advance(&t.p, now, &steps)
			repeat := r.lastBad != 0 && r.lastKind == kind && now-r.lastBad < t.p.spacing
			if w > 0 && !repeat && (mode != ObserveOnly || r.lastBad == 0 || now-r.lastBad >= t.p.cooldown) {
				r.violation(&t.p, w*factors[i], kind, now, limit, &steps)
			}
			steps.setDim(mark, dims[i])
			state = max(state, min(r.state, limit))
		}
		s.mu.Unlock()
	}
	t.emit(id, &steps)
	return state
}

// Good records well-behaved traffic: the client's score rises a little,
// at most once per Config.GoodInterval.
func (t *Tracker) Good(id Identity, at time.Time) {
	now := at.UnixNano()
	var steps stepList
	n, dims, _ := t.dims(id)
	for i := 0; i < n; i++ {
		key, user, addr := keyOf(id, dims[i])
		s, r := t.locked(dims[i], key, user, addr, now, true)
		if r != nil {
			mark := steps.len()
			r.advance(&t.p, now, &steps)
			r.good(&t.p, now)
			steps.setDim(mark, dims[i])
		}
		s.mu.Unlock()
	}
	t.emit(id, &steps)
}

// State returns the client's state: the most severe of its tracked
// identities, capped by the mode (EnforceLight never goes past
// Throttled). A client never seen is Normal.
func (t *Tracker) State(id Identity, at time.Time) State {
	return t.Verdict(id, at).State
}

// Score returns the client's trust score, 0–1000 (Config.InitialScore
// for a client never seen).
func (t *Tracker) Score(id Identity, at time.Time) int {
	return t.Verdict(id, at).Score
}

// Multiplier returns the factor for the client's rate limits: its score's
// band (see Band), or the lowest band while it is Throttled or worse.
func (t *Tracker) Multiplier(id Identity, at time.Time) float64 {
	return t.Verdict(id, at).Multiplier
}

// Verdict returns everything a broker needs to treat the client now.
func (t *Tracker) Verdict(id Identity, at time.Time) Verdict {
	now := at.UnixNano()
	mode := t.Mode()
	limit := mode.maxState()
	v := Verdict{Score: int(t.p.initial + 0.5)}
	var steps stepList
	n, dims, _ := t.dims(id)
	for i := 0; i < n; i++ {
		key, user, addr := keyOf(id, dims[i])
		s, r := t.locked(dims[i], key, user, addr, now, false)
		if r != nil {
			mark := steps.len()
			r.advance(&t.p, now, &steps)
			steps.setDim(mark, dims[i])
			v.State = max(v.State, min(r.state, limit))
			if dims[i] == ByClientID {
				v.Score = int(r.score + 0.5)
			}
		}
		s.mu.Unlock()
	}
	t.emit(id, &steps)
	v.Enforced = mode != ObserveOnly
	v.Multiplier = Band(v.Score)
	if v.State >= Throttled {
		v.Multiplier = Band(0)
	}
	if v.State == Throttled && v.Enforced {
		v.Delay = t.cfg.ThrottleDelay
	}
	return v
}

// evictLocked drops one record to make room: a baseline record if the
// sample has one, else the longest-idle Normal record in it, else (a
// shard full of punished records) the least punished one, the one that
// would recover first. An attacker cannot fill the Tracker with its own
// punished records to wash out others' (a username has at most
// Config.MaxClientsPerUser client records), and a full Tracker never
// stops tracking: the newcomer always gets a record. The sample is
// bounded, so a full tracker costs every new client the same small
// amount.
func (t *Tracker) evictLocked(s *trackerShard, now int64) {
	const sample = 64
	var victim *record
	var del func()
	seen := 0
	worse := func(a, b *record) bool { // a is a worse victim than b
		if a.state != b.state {
			return a.state > b.state
		}
		if a.state == Normal {
			return a.lastSeen > b.lastSeen
		}
		return a.lastBad > b.lastBad
	}
	consider := func(r *record, remove func()) bool {
		seen++
		if victim == nil || r.baseline(&t.p, now) || worse(victim, r) {
			victim, del = r, remove
		}
		return seen >= sample || victim.baseline(&t.p, now)
	}
	done := false
	for k, r := range s.clients {
		if done = consider(r, func() { delete(s.clients, k); t.clientGone(k) }); done {
			break
		}
	}
	if !done {
		for k, r := range s.users {
			if done = consider(r, func() { delete(s.users, k) }); done {
				break
			}
		}
	}
	if !done {
		for k, r := range s.addrs {
			if consider(r, func() { delete(s.addrs, k) }) {
				break
			}
		}
	}
	if victim != nil {
		del()
	}
}

func (t *Tracker) emit(id Identity, steps *stepList) {
	if steps.empty() {
		return
	}
	steps.each(func(st step) {
		switch st.dim {
		case ByClientID:
			t.report(st, id.ClientID, id.Username)
		case ByUsername:
			t.report(st, id.Username, "")
		default:
			t.report(st, id.Addr.Unmap().String(), "")
		}
	})
}

// reportKey reports a step of the record stored under key.
func (t *Tracker) reportKey(st step, key string) {
	if st.dim == ByClientID {
		user, id := splitClientKey(key)
		t.report(st, id, user)
		return
	}
	t.report(st, key, "")
}

func (t *Tracker) report(st step, key, username string) {
	t.transitions.Add(1)
	tr := Transition{
		Dimension: st.dim, Key: key, Username: username, From: st.from, To: st.to, At: time.Unix(0, st.at),
		Escalation: st.escalate, Kind: st.kind, Reason: st.reason(), Score: int(st.score + 0.5),
		Adopted: st.adopted,
	}
	if l := t.cfg.Logger; l != nil {
		attrs := []slog.Attr{
			slog.String(st.dim.String(), key), slog.String("from", st.from.String()), slog.String("to", st.to.String()),
			slog.String("reason", tr.Reason), slog.Int("score", tr.Score), slog.String("mode", t.Mode().String()),
		}
		if st.dim == ByClientID && username != "" {
			attrs = append(attrs, slog.String("username", username))
		}
		if st.escalate && !st.adopted {
			attrs = append(attrs, slog.String("violation", st.kind.String()))
		}
		// A step up is news for an operator; a step down is recovery.
		level := slog.LevelInfo
		if st.escalate {
			level = slog.LevelWarn
		}
		l.LogAttrs(context.Background(), level, "trust: state change", attrs...)
	}
	if f := t.cfg.OnTransition; f != nil {
		f(tr)
	}
}

// pending carries a step found while holding a shard's lock to where it
// can be reported.
type pending struct {
	key string
	st  step
}

// walk brings every record of every shard up to date, lets f look at it
// (and delete it by returning true), and reports the recovery steps found
// on the way.
func (t *Tracker) walk(now int64, f func(Dimension, *record) bool) {
	for i := range t.shards {
		s := &t.shards[i]
		var found []pending
		s.mu.Lock()
		s.each(func(d Dimension, key string, addr netip.Addr, r *record) bool {
			var sl stepList
			r.advance(&t.p, now, &sl)
			if d == ByAddr {
				key = addr.String()
			}
			sl.each(func(st step) {
				st.dim = d
				found = append(found, pending{key, st})
			})
			drop := f(d, r)
			if drop && d == ByClientID {
				t.clientGone(key)
			}
			return drop
		})
		s.mu.Unlock()
		for _, p := range found {
			t.reportKey(p.st, p.key)
		}
	}
}

// Forget drops every record of the identity: an administrator's pardon.
func (t *Tracker) Forget(id Identity) {
	for _, d := range []Dimension{ByClientID, ByUsername, ByAddr} {
		key, user, addr := keyOf(id, d)
		if (d != ByAddr && key == "") || (d == ByAddr && !addr.IsValid()) {
			continue
		}
		s, r := t.locked(d, key, user, addr, 0, false)
		if r != nil {
			s.each(func(_ Dimension, k string, _ netip.Addr, x *record) bool {
				if x == r && d == ByClientID {
					t.clientGone(k)
				}
				return x == r
			})
		}
		s.mu.Unlock()
	}
}

// Sweep drops the records that carry no information at time at (Normal,
// at the initial score, idle for Config.IdleExpiry) and returns how many.
// Records are also dropped on demand when the Tracker is full; Sweep gives
// memory back sooner.
func (t *Tracker) Sweep(at time.Time) int {
	now := at.UnixNano()
	removed := 0
	t.walk(now, func(_ Dimension, r *record) bool {
		if r.baseline(&t.p, now) {
			removed++
			return true
		}
		return false
	})
	return removed
}

// Stats are the Tracker's metrics.
//
// Read the counts by state and kind with its methods (States and Kinds
// enumerate them), so that a new state or kind changes no exported type.
type Stats struct {
	Records     int
	states      [numStates]int // records by state (as the mode caps them)
	Scores      [10]int        // client records by score: 0–100, 101–200, …, 901–1000
	violations  [numKinds]uint64
	Transitions uint64
	// Untracked counts client IDs not recorded because their username
	// had Config.MaxClientsPerUser records already (its own record
	// counted the violation).
	Untracked uint64
}

// States is the number of records in state s (as the mode caps them).
func (st Stats) States(s State) int {
	if int(s) >= numStates {
		return 0
	}
	return st.states[s]
}

// Violations counts the violations of kind k.
func (st Stats) Violations(k Kind) uint64 {
	if int(k) >= numKinds {
		return 0
	}
	return st.violations[k]
}

// Stats walks the records; call it from a metrics scrape.
func (t *Tracker) Stats(at time.Time) Stats {
	now := at.UnixNano()
	limit := t.Mode().maxState()
	var st Stats
	t.walk(now, func(d Dimension, r *record) bool {
		st.Records++
		st.states[min(r.state, limit)]++
		if d == ByClientID {
			b := (int(r.score+0.5) - 1) / 100
			st.Scores[min(max(b, 0), 9)]++
		}
		return false
	})
	for k := range st.violations {
		st.violations[k] = t.violations[k].Load()
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, n := range s.violations {
			st.violations[k] += n
		}
		s.mu.Unlock()
	}
	st.Transitions = t.transitions.Load()
	st.Untracked = t.untracked.Load()
	return st
}
