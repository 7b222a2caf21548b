package trust

import (
	"cmp"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// AuthGate answers password guessing without handing the guesser a
// switch that locks others out.
//
// A client that fails to authenticate has proven nothing but its
// address, so its failures count against the address, never against
// the username or client ID it claimed (a stranger typing sensor1's
// name ten times must not lock sensor1 out). The gate spaces out the
// attempts of an address that keeps failing, the way fail2ban does:
// after Free failures each attempt from the address waits its turn, the
// turns Delay apart and doubling with every further failure up to
// MaxDelay, so however many connections a guesser opens, it gets one
// try per turn. And once an address has failed, at most Free of its
// attempts are being verified at a time, however many connections it
// opens (more are told busy). (Before its first failure an address is
// bounded by the broker's wait for a hashing slot alone — a NAT's
// devices reconnecting all at once after a restart must not queue
// behind each other.) An attempt whose turn is more than MaxDelay away is
// refused at once (the broker answers "server busy") rather than queued
// without bound. (It does not count towards a ban: fifty devices behind
// one address reconnecting at once after a restart are told to wait
// too.) After BanAfter failures within Window the address is
// banned for BanFor — unless someone authenticated from it within the
// Window: that address is a NAT (an office, a carrier) with
// well-behaved devices behind it, and banning it would lock them all
// out for one bad neighbour. There the guesser stays spaced out.
//
// Failures count against the username too, but only to slow guessing
// down: an attempt for a username that keeps failing waits (at most
// MaxDelay), never is refused, and its right password always gets in.
//
// Behind a NAT, the devices must not queue behind a guesser's turns. A
// username that authenticated from an address within Window has a lane
// of its own there: its attempts take turns only with the failures made
// for that username from that address. So a guesser behind a NAT slows
// the usernames it tries and the ones nobody used from there yet, not
// the devices that log in from there every day; and the guesses it gets
// are one per turn per lane, the lanes being the usernames that
// authenticated from there (which it cannot add to without a password).
//
// A broker asks the gate only when it must verify a password: a device
// whose password it verified a moment ago (a cache) reconnects without
// waiting, even from a guesser's address.
//
// An AuthGate is safe for concurrent use; its memory is bounded by
// MaxEntries addresses and as many usernames.
type AuthGate struct {
	cfg   AuthGateConfig
	mu    sync.Mutex
	addrs map[netip.Addr]*gateEntry
	users map[string]*gateEntry
	lanes map[lane]*gateEntry // username at address, made by a success
}

type lane struct {
	addr netip.Addr
	user string
}

// AuthGateConfig sets an AuthGate's numbers; zero fields take the
// defaults, chosen so that a person mistyping a password a few times
// never notices, a guesser gets a few thousand tries a day per address
// at most, and a NAT of devices is never banned for one of them.
type AuthGateConfig struct {
	// Free failures an address (or username) makes before its attempts
	// are spaced out (default 5).
	Free int
	// Delay is the space after the first failure past Free (default
	// 250 ms), doubling with each further one up to MaxDelay (default
	// 10 s).
	Delay, MaxDelay time.Duration
	// Window: failures older than this are forgotten (default 15
	// minutes), and a success within it marks the address as shared.
	Window time.Duration
	// BanAfter failures within Window ban an address nobody
	// authenticated from (default 50), for BanFor (default 15 minutes).
	BanAfter int
	BanFor   time.Duration
	// MaxEntries bounds the addresses, the usernames and the lanes kept
	// (default 65,536 each); the quietest go first, an address or lane
	// someone authenticated from within Window last.
	MaxEntries int
}

func (c AuthGateConfig) withDefaults() AuthGateConfig {
	c.Free = cmp.Or(c.Free, 5)
	c.Delay = cmp.Or(c.Delay, 250*time.Millisecond)
	c.MaxDelay = cmp.Or(c.MaxDelay, 10*time.Second)
	c.Window = cmp.Or(c.Window, 15*time.Minute)
	c.BanAfter = cmp.Or(c.BanAfter, 50)
	c.BanFor = cmp.Or(c.BanFor, 15*time.Minute)
	c.MaxEntries = cmp.Or(c.MaxEntries, 1<<16)
	return c
}

type gateEntry struct {
	failures  int
	lastFail  int64 // unix ns
	succeeded int64 // last success (addresses, lanes)
	next      int64 // the next free turn (addresses, lanes)
	banned    bool  // Failed has said "ban" for this run of failures
	inflight  int   // attempts reserved and not yet decided (addresses, lanes)
	reserved  int64 // the last Reserve (addresses, lanes)
}

// NewAuthGate returns an AuthGate, or an error naming the field that is
// wrong.
func NewAuthGate(cfg AuthGateConfig) (*AuthGate, error) {
	if cfg.Free < 0 || cfg.Delay < 0 || cfg.MaxDelay < 0 || cfg.Window < 0 || cfg.BanAfter < 0 || cfg.BanFor < 0 || cfg.MaxEntries < 0 {
		return nil, &ConfigError{"AuthGateConfig", "no field may be negative"}
	}
	cfg = cfg.withDefaults()
	if cfg.BanAfter <= cfg.Free {
		return nil, &ConfigError{"AuthGateConfig.BanAfter", fmt.Sprintf("%d must be above Free (%d)", cfg.BanAfter, cfg.Free)}
	}
	return &AuthGate{cfg: cfg, addrs: map[netip.Addr]*gateEntry{}, users: map[string]*gateEntry{}, lanes: map[lane]*gateEntry{}}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (g *AuthGate) Config() AuthGateConfig { return g.cfg }

// Reserve is asked before a password is verified: it returns how long
// the attempt waits for its turn (0 for an address and username with no
// recent failures past Free). ok is false when the address's turn is
// more than MaxDelay away, or when the address has failed and Free of
// its attempts are in progress already: refuse the attempt as busy,
// without verifying it. An attempt Reserve lets through is in progress until Failed,
// Succeeded or Abandon says how it ended.
func (g *AuthGate) Reserve(addr netip.Addr, username string, now time.Time) (wait time.Duration, ok bool) {
	t := now.UnixNano()
	addr = addr.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	var turns *gateEntry
	if l := g.lanes[lane{addr, username}]; l != nil && username != "" && g.recent(l.succeeded, t) {
		turns = l
	} else if addr.IsValid() {
		turns = entryOf(g, g.addrs, addr, t)
	}
	if turns != nil {
		g.forget(turns, t)
		if turns.failures > 0 && turns.inflight >= max(g.cfg.Free, 1) {
			return 0, false // Free attempts from a failing address are being decided already
		}
		if d := g.delay(turns.failures); d > 0 {
			turn := max(t, turns.next)
			if time.Duration(turn-t) > g.cfg.MaxDelay {
				return 0, false
			}
			turns.next = turn + int64(d)
			wait = time.Duration(turn - t)
		}
		turns.inflight++
		turns.reserved = t
	}
	if u := g.users[username]; u != nil && username != "" {
		g.forget(u, t)
		wait = max(wait, g.delay(u.failures))
	}
	return wait, true
}

// Failed counts a failed attempt against the address and the username,
// and reports whether the address should be banned now (for BanFor): it
// reached BanAfter failures within Window and nobody authenticated from
// it meanwhile. It says so once per run of failures.
func (g *AuthGate) Failed(addr netip.Addr, username string, now time.Time) (ban bool) {
	t := now.UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	if username != "" {
		u := entryOf(g, g.users, username, t)
		u.failures++
		u.lastFail = t
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	a := entryOf(g, g.addrs, addr, t)
	if l := g.lanes[lane{addr, username}]; l != nil && username != "" && g.recent(l.succeeded, t) {
		g.forget(l, t)
		l.failures++
		l.lastFail = t
		decided(l)
	} else {
		decided(a)
	}
	a.failures++
	a.lastFail = t
	return g.banNow(a, t)
}

// banNow says "ban" once per run of failures, at BanAfter failures
// within Window from an address nobody authenticated from meanwhile.
func (g *AuthGate) banNow(a *gateEntry, t int64) bool {
	if a.failures >= g.cfg.BanAfter && !g.recent(a.succeeded, t) && !a.banned {
		a.banned = true
		return true
	}
	return false
}

// Succeeded records a successful authentication: the username's
// failures are forgotten (its owner is here), the address is marked as
// one devices authenticate from (so it is never banned for a
// neighbour's guessing), and the username gets its lane there. The
// address's failures stay. A broker calls it for a login it let in
// from a cache too, so a device that reconnects only with a cached
// password keeps its lane.
func (g *AuthGate) Succeeded(addr netip.Addr, username string, now time.Time) {
	t := now.UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.users, username)
	if !addr.IsValid() {
		return
	}
	addr = addr.Unmap()
	a := entryOf(g, g.addrs, addr, t)
	a.succeeded = t
	if username != "" {
		l := g.lanes[lane{addr, username}]
		if l != nil && g.recent(l.succeeded, t) {
			decided(l)
		} else {
			decided(a)
			l = entryOf(g, g.lanes, lane{addr, username}, t)
		}
		l.succeeded, l.failures, l.banned = t, 0, false
	} else {
		decided(a)
	}
}

// Seen records a login that needed no verification (the broker's cache
// of recent successes let it in): like Succeeded, it keeps the address's
// mark and the username's lane there, but ends no attempt in progress.
func (g *AuthGate) Seen(addr netip.Addr, username string, now time.Time) {
	if !addr.IsValid() {
		return
	}
	t := now.UnixNano()
	addr = addr.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.users, username)
	entryOf(g, g.addrs, addr, t).succeeded = t
	if username != "" {
		l := entryOf(g, g.lanes, lane{addr, username}, t)
		l.succeeded, l.failures, l.banned = t, 0, false
	}
}

// Abandon ends an attempt Reserve let through that was neither a
// failure nor a success: its verification could not run (the broker was
// too busy), or the client went away while it waited.
func (g *AuthGate) Abandon(addr netip.Addr, username string, now time.Time) {
	if !addr.IsValid() {
		return
	}
	t := now.UnixNano()
	addr = addr.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	if l := g.lanes[lane{addr, username}]; l != nil && username != "" && g.recent(l.succeeded, t) {
		decided(l)
	} else if a := g.addrs[addr]; a != nil {
		decided(a)
	}
}

// decided ends one attempt in progress on e.
func decided(e *gateEntry) { e.inflight = max(e.inflight-1, 0) }

// recent reports whether a success at ns (0: none) is within Window of t.
func (g *AuthGate) recent(ns, t int64) bool {
	return ns != 0 && t-ns <= int64(g.cfg.Window)
}

// Failures reports the failures an address has within the window.
func (g *AuthGate) Failures(addr netip.Addr, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.addrs[addr.Unmap()]; a != nil {
		g.forget(a, now.UnixNano())
		return a.failures
	}
	return 0
}

// delay is the space between turns after n failures.
func (g *AuthGate) delay(n int) time.Duration {
	over := n - g.cfg.Free
	if over <= 0 {
		return 0
	}
	d := g.cfg.Delay
	for i := 1; i < over && d < g.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, g.cfg.MaxDelay)
}

// forget clears failures that are older than the window, and attempts
// in progress reserved longer ago than that (a broker that lost track
// of one must not slow an address down for good).
func (g *AuthGate) forget(e *gateEntry, t int64) {
	if e.failures > 0 && t-e.lastFail > int64(g.cfg.Window) {
		e.failures, e.banned = 0, false
	}
	if e.inflight > 0 && t-e.reserved > int64(g.cfg.Window) {
		e.inflight = 0
	}
}

// entryOf finds or makes the entry of key, making room if the map is
// full: the quietest of a sample goes, one nobody authenticated from
// within the window before any other, so that a flood of fresh
// addresses (an IPv6 prefix has plenty) cannot evict a NAT's mark and
// get it banned, nor a device's lane.
func entryOf[K comparable](g *AuthGate, m map[K]*gateEntry, key K, t int64) *gateEntry {
	if e := m[key]; e != nil {
		g.forget(e, t)
		return e
	}
	if len(m) >= g.cfg.MaxEntries {
		var victim K
		var quiet int64 = -1
		victimShared := true
		n := 0
		for k, e := range m {
			shared := g.recent(e.succeeded, t)
			last := max(e.lastFail, e.succeeded)
			if quiet < 0 || (victimShared && !shared) || (shared == victimShared && last < quiet) {
				victim, quiet, victimShared = k, last, shared
			}
			if n++; n >= 64 {
				break
			}
		}
		delete(m, victim)
	}
	e := &gateEntry{}
	m[key] = e
	return e
}
