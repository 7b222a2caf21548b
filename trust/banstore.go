package trust

import (
	"context"
	"net/netip"
	"time"
)

// BanChange is one change to a ban list: a ban put in force, or (Lifted)
// the ban of Ban.Kind and Ban.Value taken away.
type BanChange struct {
	Ban    Ban  `json:"ban"`
	Lifted bool `json:"lifted,omitempty"`
}

// BanStore is a ban list that several brokers share, so that a device
// banned on one is refused by all (package redisstore keeps one in
// Redis). A broker never consults the store on CONNECT: it checks its own
// Bans, which the store keeps current.
//
// The wiring is the same for every store: Bans.WatchChanges sends each local
// change to PutBan or DeleteBan (from a queue, never from the caller's
// goroutine: a store may be slow or down); the store's change
// notifications reach every other broker's Bans through Apply; after a
// broker (re)connects to the store, ListBans and Replace bring its copy
// back in line with the fleet's.
type BanStore interface {
	// PutBan puts a ban in force for the whole fleet, replacing any of
	// the same kind and value; it expires on its own at Ban.Until.
	PutBan(ctx context.Context, b Ban) error
	// DeleteBan lifts the ban of b's kind, value and username
	// fleet-wide.
	DeleteBan(ctx context.Context, b Ban) error
	// ListBans returns the fleet's bans in force at t.
	ListBans(ctx context.Context, t time.Time) ([]Ban, error)
}

// Apply makes a change that came from elsewhere (another broker, through
// a BanStore): like Add or Remove, but WatchChanges is not told, so the
// change does not echo back to the store. WatchAdded is told of a ban that
// was not already in force as it is, so a broker kicks the sessions it
// matches; applying the same change twice does nothing the second time.
func (b *Bans) Apply(c BanChange) error {
	ban, pfx, err := c.Ban.normalize()
	if err != nil {
		return err
	}
	b.mu.Lock()
	if c.Lifted {
		b.deleteLocked(ban, pfx)
		b.mu.Unlock()
		return nil
	}
	old, had := b.lookupLocked(ban, pfx)
	b.putLocked(ban, pfx)
	b.mu.Unlock()
	if !(had && sameBan(old, ban)) {
		b.added.fire(ban)
	}
	return nil
}

// Replace makes the list exactly the bans of list still in force at t (a
// full resync from a BanStore) and reports how many bans it added and
// removed. WatchAdded is told of each ban that was not in force as it
// is; WatchChanges is not. Invalid entries in list are skipped and
// counted in bad.
func (b *Bans) Replace(list []Ban, t time.Time) (added, removed, bad int) {
	type entry struct {
		ban Ban
		pfx netip.Prefix
	}
	next := make([]entry, 0, len(list))
	for _, ban := range list {
		ban, pfx, err := ban.normalize()
		if err != nil {
			bad++
			continue
		}
		if ban.active(t) {
			next = append(next, entry{ban, pfx})
		}
	}
	var fresh []Ban
	b.mu.Lock()
	old := b.snapshotLocked()
	b.clients, b.users, b.nets, b.automatic, b.scoped = nil, nil, nil, 0, nil
	for _, e := range next {
		b.putLocked(e.ban, e.pfx)
	}
	for _, e := range next {
		k := banKey{e.ban.Kind, e.ban.key()}
		if o, ok := old[k]; !ok || !sameBan(o, e.ban) {
			fresh = append(fresh, e.ban)
		}
		delete(old, k)
	}
	b.mu.Unlock()
	for _, o := range old {
		if o.active(t) {
			removed++
		}
	}
	for _, ban := range fresh {
		b.added.fire(ban)
	}
	return len(fresh), removed, bad
}

type banKey struct {
	kind BanKind
	key  string // Ban.key
}

// snapshotLocked returns every ban kept, by kind and value (under mu).
func (b *Bans) snapshotLocked() map[banKey]Ban {
	m := make(map[banKey]Ban, len(b.clients)+len(b.users))
	for _, ban := range b.clients {
		m[banKey{ban.Kind, ban.key()}] = ban
	}
	for _, ban := range b.users {
		m[banKey{ban.Kind, ban.key()}] = ban
	}
	for i := range b.nets {
		for _, ban := range b.nets[i].m {
			m[banKey{ban.Kind, ban.key()}] = ban
		}
	}
	return m
}

// lookupLocked returns the ban of a normalized ban's kind and value
// (under mu).
func (b *Bans) lookupLocked(key Ban, pfx netip.Prefix) (Ban, bool) {
	var ban Ban
	var ok bool
	switch key.Kind {
	case BanClientID:
		ban, ok = b.clients[key.key()]
	case BanUsername:
		ban, ok = b.users[key.Value]
	default:
		if g := b.group(pfx, false); g != nil {
			ban, ok = g.m[pfx]
		}
	}
	return ban, ok
}

// sameBan reports whether two bans of one kind and value say the same.
func sameBan(a, b Ban) bool {
	return a.Until.Equal(b.Until) && a.By == b.By && a.Reason == b.Reason && a.Automatic == b.Automatic
}
