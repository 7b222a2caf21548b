package trust

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Record is the part of a trust record that follows a client from broker
// to broker: its state (a client shadow-banned or disconnected on one
// broker must not start afresh on the next), since when, and its score.
// The escalation level stays local: it is a short window of evidence.
type Record struct {
	Dimension Dimension `json:"dim"`
	Key       string    `json:"key"` // client ID, username or address
	// Username is, for a client ID's record, the username it belongs to
	// (see Tracker): "" for an anonymous client.
	Username string    `json:"user,omitempty"`
	State    State     `json:"state"`
	Since    time.Time `json:"since"` // when the record entered State
	Score    int       `json:"score"`
	At       time.Time `json:"at"` // when the snapshot was taken
	// Reason is the kind of the last violation counted against the
	// record ("" if none): what an operator reads in a listing.
	Reason string `json:"reason,omitempty"`
}

// RecordStore keeps trust records for a fleet of brokers (package
// redisstore keeps them in Redis, with expiry). A broker never waits on
// the store to decide: it sends each transition's Record (Tracker.Record)
// to PutRecord from a queue, and Adopts the records other brokers put,
// which the store delivers as they change and in full after a reconnect.
type RecordStore interface {
	// PutRecord stores a record until ttl has passed.
	PutRecord(ctx context.Context, r Record, ttl time.Duration) error
	// ListRecords returns every record kept.
	ListRecords(ctx context.Context) ([]Record, error)
}

// Record returns the shareable part of the record of one identity,
// brought up to time at; ok is false when the Tracker keeps none. key is
// the client ID (of username's client), the username, or the address.
func (t *Tracker) Record(dim Dimension, key, username string, at time.Time) (r Record, ok bool) {
	addr, err := recordAddr(dim, key)
	if err != nil {
		return Record{}, false
	}
	skey := key
	if dim == ByClientID {
		skey = clientKey(username, key)
	} else {
		username = ""
	}
	now := at.UnixNano()
	var steps stepList
	s, rec := t.locked(dim, key, username, addr, now, false)
	if rec != nil {
		rec.advance(&t.p, now, &steps)
		steps.setDim(0, dim)
		r = recordOf(dim, key, username, rec, at)
	}
	s.mu.Unlock()
	if dim == ByAddr {
		skey = addr.String()
		r.Key = skey
	}
	t.emitKey(skey, &steps)
	return r, rec != nil
}

func recordOf(dim Dimension, key, username string, rec *record, at time.Time) Record {
	r := Record{Dimension: dim, Key: key, Username: username, State: rec.state, Since: time.Unix(0, rec.since),
		Score: int(rec.score + 0.5), At: at}
	if rec.lastBad != 0 {
		r.Reason = rec.lastKind.String()
	}
	return r
}

// TTL is how long a Record stays worth sharing: until a client in it
// would have stepped down to Normal with no further violation (a ban
// period for Disconnected, then a quiet period per state) and its score
// has had an idle period to settle.
func (t *Tracker) TTL(r Record, at time.Time) time.Duration {
	d := time.Duration(r.State) * time.Duration(t.p.quiet)
	if r.State == Disconnected {
		d += time.Duration(t.p.ban) - time.Duration(t.p.quiet)
	}
	d += r.Since.Sub(at) // time already served counts
	return max(d, 0) + time.Duration(t.p.idle)
}

// Adopt merges a Record made by another broker into the Tracker (it is
// how a shared RecordStore's changes arrive) and reports the transition
// it caused, with Transition.Adopted set, so that OnTransition kicks a
// client adopted as Disconnected. The more severe state wins, with the
// other broker's Since, so both brokers bring the client back down at
// the same time; the score is the newer of the two. A record of a
// dimension the Tracker does not track (Config.UsernameFactor or
// IPFactor zero) is ignored, but a client without a username's address.
func (t *Tracker) Adopt(r Record, at time.Time) error { return t.adopt(r, at, false) }

// Restore is Adopt for the records an earlier run of this broker saved
// (Records): the punishments outlive a restart, each ending when it
// would have.
func (t *Tracker) Restore(r Record, at time.Time) error { return t.adopt(r, at, true) }

func (t *Tracker) adopt(r Record, at time.Time, restored bool) error {
	if r.State > Disconnected {
		return fmt.Errorf("trust: record for %s %q: unknown state %d", r.Dimension, r.Key, r.State)
	}
	addr, err := recordAddr(r.Dimension, r.Key)
	if err != nil {
		return err
	}
	if f := t.factors.Load(); r.Dimension == ByUsername && f[0] <= 0 {
		return nil
	}
	now := at.UnixNano()
	since := min(r.Since.UnixNano(), now)
	var steps stepList
	skey := r.Key
	user := ""
	if r.Dimension == ByClientID {
		skey, user = clientKey(r.Username, r.Key), r.Username
	}
	s, rec := t.locked(r.Dimension, r.Key, user, addr, now, true)
	if rec != nil {
		rec.advance(&t.p, now, &steps)
		if r.At.UnixNano() >= max(rec.lastBad, rec.lastGood) {
			rec.score = float64(min(max(r.Score, 0), MaxScore))
		}
		if r.State > rec.state {
			steps.add(step{from: rec.state, to: r.State, at: now, score: float32(rec.score), kind: Other, escalate: true,
				adopted: true, restored: restored})
			rec.state, rec.since = r.State, since
			rec.lastBad = max(rec.lastBad, since)
		}
		rec.lastSeen = max(rec.lastSeen, now)
		steps.setDim(0, r.Dimension)
	}
	s.mu.Unlock()
	if r.Dimension == ByAddr {
		skey = addr.String()
	}
	t.emitKey(skey, &steps)
	return nil
}

func recordAddr(dim Dimension, key string) (netip.Addr, error) {
	switch dim {
	case ByClientID, ByUsername:
		if key == "" {
			return netip.Addr{}, fmt.Errorf("trust: a %s record needs a key", dim)
		}
		return netip.Addr{}, nil
	case ByAddr:
		a, err := netip.ParseAddr(key)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("trust: ip record: %q is not an address", key)
		}
		return a.Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("trust: unknown record dimension %d", dim)
}

// emitKey reports the steps of the record stored under key.
func (t *Tracker) emitKey(key string, steps *stepList) {
	steps.each(func(st step) { t.reportKey(st, key) })
}
