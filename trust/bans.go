package trust

import (
	"cmp"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"
)

// BanKind says what a ban matches.
type BanKind uint8

const (
	BanClientID BanKind = iota + 1
	BanUsername
	BanIP   // one address
	BanCIDR // a network
)

func (k BanKind) String() string {
	switch k {
	case BanClientID:
		return "client"
	case BanUsername:
		return "username"
	case BanIP:
		return "ip"
	case BanCIDR:
		return "cidr"
	}
	return "BanKind?"
}

// ParseBanKind reads the names String returns.
func ParseBanKind(s string) (BanKind, error) {
	for k := BanClientID; k <= BanCIDR; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown ban kind %q; want client, username, ip or cidr", s)
}

// Ban is one entry of a ban list.
type Ban struct {
	Kind  BanKind `json:"kind"`
	Value string  `json:"value"` // client ID, username, address or CIDR
	// Username scopes a client ban to the clients that authenticated
	// with it: an automatic ban earned by bob's client "sensor2-device"
	// bans bob's use of that client ID, not sensor2's device. "" (every
	// ban an operator makes unless it says otherwise) bans the client ID
	// whoever uses it. Only client bans have one.
	Username string    `json:"username,omitempty"`
	Until    time.Time `json:"until,omitzero"` // zero: permanent
	At       time.Time `json:"at,omitzero"`    // when the ban was made
	By       string    `json:"by,omitempty"`   // who made it (an admin, "flapping", "anomaly", "auth-failures")
	Reason   string    `json:"reason,omitempty"`
	// Automatic marks a ban the broker made itself (flapping, anomalies,
	// password guessing): the list keeps at most MaxAutomatic of them,
	// dropping those that would expire soonest, and never drops an
	// operator's ban to make room.
	Automatic bool `json:"auto,omitempty"`
}

// key is where a ban is kept: its value, within its username for a
// scoped client ban.
func (b Ban) key() string {
	if b.Username != "" {
		return b.Username + "\x00" + b.Value
	}
	return b.Value
}

// Matches reports whether the ban covers the identity (expiry aside):
// its client ID (and, for a scoped client ban, its username), its
// username, its address or network. A broker uses it to find the live
// sessions a new ban must end.
func (b Ban) Matches(id Identity) bool {
	switch b.Kind {
	case BanClientID:
		return id.ClientID == b.Value && (b.Username == "" || b.Username == id.Username)
	case BanUsername:
		return id.Username != "" && id.Username == b.Value
	case BanIP:
		a, err := netip.ParseAddr(b.Value)
		return err == nil && id.Addr.IsValid() && a.Unmap() == id.Addr.Unmap()
	case BanCIDR:
		p, err := netip.ParsePrefix(b.Value)
		return err == nil && id.Addr.IsValid() && p.Contains(id.Addr.Unmap())
	}
	return false
}

// Permanent reports whether the ban never expires.
func (b Ban) Permanent() bool { return b.Until.IsZero() }

func (b Ban) active(t time.Time) bool { return b.Until.IsZero() || t.Before(b.Until) }

// normalize validates a ban and puts its value in canonical form.
func (b Ban) normalize() (Ban, netip.Prefix, error) {
	if b.Username != "" && b.Kind != BanClientID {
		return b, netip.Prefix{}, fmt.Errorf("a %s ban cannot be scoped to a username (only client bans are)", b.Kind)
	}
	switch b.Kind {
	case BanClientID, BanUsername:
		if b.Value == "" {
			return b, netip.Prefix{}, fmt.Errorf("a %s ban needs a value", b.Kind)
		}
		b.Value, b.Username = strings.Clone(b.Value), strings.Clone(b.Username)
		return b, netip.Prefix{}, nil
	case BanIP:
		a, err := netip.ParseAddr(b.Value)
		if err != nil {
			return b, netip.Prefix{}, fmt.Errorf("ip ban: %q is not an IP address", b.Value)
		}
		a = a.Unmap()
		b.Value = a.String()
		return b, netip.PrefixFrom(a, a.BitLen()), nil
	case BanCIDR:
		p, err := netip.ParsePrefix(b.Value)
		if err != nil {
			return b, netip.Prefix{}, fmt.Errorf("cidr ban: %q is not a CIDR prefix such as 10.0.0.0/8", b.Value)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		b.Value = p.String()
		return b, p, nil
	}
	return b, netip.Prefix{}, fmt.Errorf("unknown ban kind %d", b.Kind)
}

// Bans is a ban list by client ID, username, address and network, checked
// on every CONNECT. Expired bans stop matching at once and are dropped by
// List and Sweep. It is safe for concurrent use; the zero value is an
// empty list.
//
// The list is bounded where an attacker could grow it: automatic bans
// (Ban.Automatic) are kept to MaxAutomatic, the soonest to expire going
// first, and a username that earns more than MaxScopedPerUser automatic
// client bans (a client inventing client IDs to dodge them) is banned
// as a username instead. An operator's bans are never dropped.
type Bans struct {
	mu      sync.RWMutex
	clients map[string]Ban // by Ban.key
	users   map[string]Ban
	nets    []banGroup // CIDR and IP bans grouped by family and prefix length

	// MaxAutomatic bounds the automatic bans (default 100,000).
	// MaxScopedPerUser bounds the automatic client bans of one username
	// (default 16). Set them before the list is used.
	MaxAutomatic     int
	MaxScopedPerUser int
	automatic        int            // automatic bans kept (under mu)
	scoped           map[string]int // automatic client bans by username (under mu)

	added   watchers[Ban]       // WatchAdded
	changed watchers[BanChange] // WatchChanges
}

type banGroup struct {
	bits int
	v6   bool
	m    map[netip.Prefix]Ban
}

const (
	defaultMaxAutomatic     = 100_000
	defaultMaxScopedPerUser = 16
)

// ErrBansFull is Add's error when no room can be made for an automatic
// ban: it is not added.
var ErrBansFull = fmt.Errorf("trust: the ban list is full")

// Add puts a ban in force, replacing any ban of the same kind and value
// (and username). An automatic client ban for a username that has
// MaxScopedPerUser of them becomes a username ban.
func (b *Bans) Add(ban Ban) error {
	ban, pfx, err := ban.normalize()
	if err != nil {
		return err
	}
	b.mu.Lock()
	if ban.Automatic && ban.Username != "" && b.scoped[ban.Username] >= cmp.Or(b.MaxScopedPerUser, defaultMaxScopedPerUser) {
		if _, had := b.clients[ban.key()]; !had {
			ban = Ban{Kind: BanUsername, Value: ban.Username, Until: ban.Until, At: ban.At, By: ban.By, Automatic: true,
				Reason: fmt.Sprintf("more than %d automatic client bans; the last: %s", cmp.Or(b.MaxScopedPerUser, defaultMaxScopedPerUser), ban.Reason)}
			pfx = netip.Prefix{}
		}
	}
	if ban.Automatic && !b.roomLocked(ban, pfx) {
		b.mu.Unlock()
		return ErrBansFull
	}
	b.putLocked(ban, pfx)
	b.mu.Unlock()
	b.added.fire(ban)
	b.changed.fire(BanChange{Ban: ban})
	return nil
}

// roomLocked makes room for one more automatic ban if the list is at
// MaxAutomatic: expired bans go first, then, of a bounded sample, the
// automatic ban that would expire soonest. It reports whether there is
// room.
func (b *Bans) roomLocked(ban Ban, pfx netip.Prefix) bool {
	max := cmp.Or(b.MaxAutomatic, defaultMaxAutomatic)
	if b.automatic < max {
		return true
	}
	if old, had := b.lookupLocked(ban, pfx); had && old.Automatic {
		return true // a replacement
	}
	now := time.Now()
	var victim Ban
	var victimPfx netip.Prefix
	found, seen := false, 0
	consider := func(x Ban, p netip.Prefix) bool {
		if !x.Automatic {
			return false
		}
		seen++
		if !x.active(now) || !found || (!x.Permanent() && (victim.Permanent() || x.Until.Before(victim.Until))) {
			victim, victimPfx, found = x, p, true
		}
		return seen >= 64 || !x.active(now)
	}
	done := false
	for _, x := range b.clients {
		if done = consider(x, netip.Prefix{}); done {
			break
		}
	}
	for _, x := range b.users {
		if done || consider(x, netip.Prefix{}) {
			done = true
			break
		}
	}
	for i := range b.nets {
		for p, x := range b.nets[i].m {
			if done || consider(x, p) {
				done = true
				break
			}
		}
	}
	if !found {
		return false
	}
	b.deleteLocked(victim, victimPfx)
	return true
}

// putLocked stores a normalized ban (under mu), replacing the one of
// the same kind and value.
func (b *Bans) putLocked(ban Ban, pfx netip.Prefix) {
	if old, had := b.lookupLocked(ban, pfx); had {
		b.uncount(old)
	}
	switch ban.Kind {
	case BanClientID:
		if b.clients == nil {
			b.clients = map[string]Ban{}
		}
		b.clients[ban.key()] = ban
	case BanUsername:
		if b.users == nil {
			b.users = map[string]Ban{}
		}
		b.users[ban.Value] = ban
	default:
		b.group(pfx, true).m[pfx] = ban
	}
	if ban.Automatic {
		b.automatic++
		if ban.Username != "" {
			if b.scoped == nil {
				b.scoped = map[string]int{}
			}
			b.scoped[ban.Username]++
		}
	}
}

// uncount takes a ban that leaves the list out of the bounds' counts
// (under mu).
func (b *Bans) uncount(ban Ban) {
	if !ban.Automatic {
		return
	}
	b.automatic--
	if ban.Username != "" {
		if b.scoped[ban.Username] <= 1 {
			delete(b.scoped, ban.Username)
		} else {
			b.scoped[ban.Username]--
		}
	}
}

// group returns the group for pfx's family and length (under mu).
func (b *Bans) group(pfx netip.Prefix, create bool) *banGroup {
	v6 := pfx.Addr().Is6()
	for i := range b.nets {
		if g := &b.nets[i]; g.bits == pfx.Bits() && g.v6 == v6 {
			return g
		}
	}
	if !create {
		return nil
	}
	b.nets = append(b.nets, banGroup{bits: pfx.Bits(), v6: v6, m: map[netip.Prefix]Ban{}})
	// Longest prefixes first: the most specific ban is the one reported.
	sort.Slice(b.nets, func(i, j int) bool { return b.nets[i].bits > b.nets[j].bits })
	return b.group(pfx, false)
}

// Remove lifts the ban of that kind and value (for a client ban, the one
// scoped to no username); it reports whether there was one.
func (b *Bans) Remove(kind BanKind, value string) bool {
	return b.Lift(Ban{Kind: kind, Value: value})
}

// Lift lifts the ban of ban's kind, value and username; it reports
// whether there was one.
func (b *Bans) Lift(ban Ban) bool {
	key, pfx, err := Ban{Kind: ban.Kind, Value: ban.Value, Username: ban.Username}.normalize()
	if err != nil {
		return false
	}
	b.mu.Lock()
	ok := b.deleteLocked(key, pfx)
	b.mu.Unlock()
	if ok {
		b.changed.fire(BanChange{Ban: key, Lifted: true})
	}
	return ok
}

// deleteLocked removes the ban of key's kind and value (under mu).
func (b *Bans) deleteLocked(key Ban, pfx netip.Prefix) bool {
	old, ok := b.lookupLocked(key, pfx)
	if !ok {
		return false
	}
	b.uncount(old)
	switch key.Kind {
	case BanClientID:
		delete(b.clients, key.key())
	case BanUsername:
		delete(b.users, key.Value)
	default:
		delete(b.group(pfx, false).m, pfx)
	}
	return true
}

// Banned reports the ban in force at time t that matches the identity,
// checking client ID, then username, then address (most specific network
// first). It does not allocate.
func (b *Bans) Banned(id Identity, t time.Time) (Ban, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if id.ClientID != "" && len(b.clients) > 0 {
		if ban, ok := b.clients[id.ClientID]; ok && ban.active(t) {
			return ban, true
		}
		if id.Username != "" {
			var buf [96]byte
			k := append(append(append(buf[:0], id.Username...), 0), id.ClientID...)
			if ban, ok := b.clients[string(k)]; ok && ban.active(t) {
				return ban, true
			}
		}
	}
	if id.Username != "" {
		if ban, ok := b.users[id.Username]; ok && ban.active(t) {
			return ban, true
		}
	}
	if id.Addr.IsValid() && len(b.nets) > 0 {
		a := id.Addr.Unmap()
		for i := range b.nets {
			g := &b.nets[i]
			if g.v6 != a.Is6() {
				continue
			}
			if p, err := a.Prefix(g.bits); err == nil {
				if ban, ok := g.m[p]; ok && ban.active(t) {
					return ban, true
				}
			}
		}
	}
	return Ban{}, false
}

// List returns the bans in force at t, sorted by kind and value, and
// drops the expired ones.
func (b *Bans) List(t time.Time) []Ban {
	b.Sweep(t)
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []Ban
	for _, ban := range b.clients {
		out = append(out, ban)
	}
	for _, ban := range b.users {
		out = append(out, ban)
	}
	for i := range b.nets {
		for _, ban := range b.nets[i].m {
			out = append(out, ban)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// Len is the number of bans kept, expired ones not yet swept included.
func (b *Bans) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := len(b.clients) + len(b.users)
	for i := range b.nets {
		n += len(b.nets[i].m)
	}
	return n
}

// Sweep drops the bans expired at t and returns how many.
func (b *Bans) Sweep(t time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, ban := range b.clients {
		if !ban.active(t) {
			b.uncount(ban)
			delete(b.clients, k)
			n++
		}
	}
	for k, ban := range b.users {
		if !ban.active(t) {
			b.uncount(ban)
			delete(b.users, k)
			n++
		}
	}
	for i := range b.nets {
		for k, ban := range b.nets[i].m {
			if !ban.active(t) {
				b.uncount(ban)
				delete(b.nets[i].m, k)
				n++
			}
		}
	}
	return n
}
