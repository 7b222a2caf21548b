package trust

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Records returns the records in state least or worse at time at (for
// least Throttled: every punished client, username and address), most
// severe first, then the most recently punished, then by dimension and
// key. It is what an operator
// lists, and what a broker saves to keep punishments over a restart
// (Restore).
func (t *Tracker) Records(least State, at time.Time) []Record {
	now := at.UnixNano()
	limit := t.Mode().maxState()
	var out []Record
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
			if min(r.state, limit) >= least {
				user := ""
				if d == ByClientID {
					user, key = splitClientKey(key)
				}
				out = append(out, recordOf(d, key, user, r, at))
			}
			return false
		})
		s.mu.Unlock()
		for _, p := range found {
			t.reportKey(p.st, p.key)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(b.State, a.State), b.Since.Compare(a.Since), cmp.Compare(a.Dimension, b.Dimension),
			cmp.Compare(a.Key, b.Key), cmp.Compare(a.Username, b.Username))
	})
	return out
}

// Pardon puts one record back where a newcomer starts: Normal, at the
// initial score, with no violations in its window. It is an operator's
// undo for a punishment that was wrong, and reports whether there was a
// record. The change goes to the log and to Config.OnTransition (Reason
// "pardoned"). key is the client ID (of username's client), the
// username, or the address. A client is in the most severe state of its
// identities: pardon its username too, if that was punished.
func (t *Tracker) Pardon(dim Dimension, key, username string, at time.Time) bool {
	addr, err := recordAddr(dim, key)
	if err != nil {
		return false
	}
	skey := key
	if dim == ByClientID {
		skey = clientKey(username, key)
	} else {
		username = ""
	}
	now := at.UnixNano()
	var steps stepList
	s, r := t.locked(dim, key, username, addr, now, false)
	if r != nil {
		r.advance(&t.p, now, &steps)
		steps.add(step{from: r.state, to: Normal, at: now, score: float32(t.p.initial), pardoned: true})
		*r = *newRecord(&t.p, now)
		steps.setDim(0, dim)
	}
	s.mu.Unlock()
	if dim == ByAddr {
		skey = addr.String()
	}
	t.emitKey(skey, &steps)
	return r != nil
}
