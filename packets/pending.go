package packets

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// A connection is pending from the moment the Listener accepts it until
// the server accepts it: until the server writes a CONNACK with reason
// code 0 through the Conn (or calls Admit). Everything a pending
// connection holds — a socket, a goroutine in the server, a Reader, a
// TLS handshake — is spent on a client that has proven nothing but its
// address, so the Listener caps them: MaxPendingPerAddress from one
// address and MaxPending in all. When a new connection would go over a
// cap, the oldest pending connection under that cap is closed to make
// room. A slowloris that holds connections open loses them to newcomers,
// and a device that connects in a few milliseconds is never the oldest
// unless a flood opens more connections in those milliseconds than the
// cap; a connection whose CONNACK refuses it stays pending until it
// closes.

// ErrTooManyPending is what errors.Is finds in the error of a Conn that
// was closed to make room for a newer one (a *PendingError).
var ErrTooManyPending = errors.New("packets: too many connections waiting to be accepted")

// PendingError is the error a Conn reports when it was closed, before
// the server accepted it, to make room under a cap.
type PendingError struct {
	Addr       netip.Addr // the address (an IPv6 /64 as its first address) the cap counted
	PerAddress bool       // MaxPendingPerAddress, else MaxPending
	Limit      int
}

func (e *PendingError) Error() string {
	if e.PerAddress {
		return fmt.Sprintf("packets: closed the oldest of %d connections from %v that had not been accepted yet (ListenerConfig.MaxPendingPerAddress)", e.Limit, e.Addr)
	}
	return fmt.Sprintf("packets: closed the oldest of %d connections that had not been accepted yet (ListenerConfig.MaxPending)", e.Limit)
}

// Is makes errors.Is(err, ErrTooManyPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrTooManyPending }

// PendingStats count a Listener's pending connections.
type PendingStats struct {
	// Pending is how many connections are pending now.
	Pending int
	// Addresses is how many addresses (IPv6: /64 prefixes) they come from.
	Addresses int
	// EvictedPerAddress and EvictedTotal count the connections closed
	// to make room under MaxPendingPerAddress and MaxPending.
	EvictedPerAddress uint64
	EvictedTotal      uint64
}

// pendingSet is the pending connections of one Listener, oldest first,
// in all and by address. Adding, admitting and removing are O(1).
type pendingSet struct {
	perAddr, total int // the caps; 0: none

	mu     sync.Mutex
	all    pendingList
	byAddr map[netip.Addr]*pendingList
	n      int

	evictedAddr, evictedTotal atomic.Uint64
}

// pendingList is a doubly linked list through the Conns themselves, so
// that tracking a connection allocates nothing beyond its address's list.
type pendingList struct {
	oldest, newest *Conn
	n              int
}

// links are a Conn's places in its Listener's lists.
type links struct {
	set                    *pendingSet // nil: not tracked (no caps, or admitted or closed)
	addr                   netip.Addr
	prev, next             *Conn // in set.all
	prevByAddr, nextByAddr *Conn // in set.byAddr[addr]
	evicted                atomic.Pointer[PendingError]
}

func newPendingSet(perAddr, total int) *pendingSet {
	return &pendingSet{perAddr: max(perAddr, 0), total: max(total, 0), byAddr: map[netip.Addr]*pendingList{}}
}

// add tracks c and returns the connections to close to make room for it
// (at most one per cap), already untracked.
func (s *pendingSet) add(c *Conn) (victims [2]*Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.byAddr[c.links.addr]; s.perAddr > 0 && q != nil && q.n >= s.perAddr {
		v := q.oldest
		s.remove(v)
		v.links.evicted.Store(&PendingError{Addr: c.links.addr, PerAddress: true, Limit: s.perAddr})
		s.evictedAddr.Add(1)
		victims[0] = v
	}
	if s.total > 0 && s.n >= s.total {
		v := s.all.oldest
		s.remove(v)
		v.links.evicted.Store(&PendingError{Addr: v.links.addr, Limit: s.total})
		s.evictedTotal.Add(1)
		victims[1] = v
	}
	q := s.byAddr[c.links.addr]
	if q == nil {
		q = &pendingList{}
		s.byAddr[c.links.addr] = q
	}
	c.links.set = s
	c.links.prev = s.all.newest
	if s.all.newest != nil {
		s.all.newest.links.next = c
	} else {
		s.all.oldest = c
	}
	s.all.newest = c
	c.links.prevByAddr = q.newest
	if q.newest != nil {
		q.newest.links.nextByAddr = c
	} else {
		q.oldest = c
	}
	q.newest = c
	q.n++
	s.n++
	return victims
}

// untrack removes c if it is still pending.
func (s *pendingSet) untrack(c *Conn) {
	s.mu.Lock()
	if c.links.set == s {
		s.remove(c)
	}
	s.mu.Unlock()
}

// remove unlinks c; s.mu is held and c is tracked.
func (s *pendingSet) remove(c *Conn) {
	l := &c.links
	if l.prev != nil {
		l.prev.links.next = l.next
	} else {
		s.all.oldest = l.next
	}
	if l.next != nil {
		l.next.links.prev = l.prev
	} else {
		s.all.newest = l.prev
	}
	q := s.byAddr[l.addr]
	if l.prevByAddr != nil {
		l.prevByAddr.links.nextByAddr = l.nextByAddr
	} else {
		q.oldest = l.nextByAddr
	}
	if l.nextByAddr != nil {
		l.nextByAddr.links.prevByAddr = l.prevByAddr
	} else {
		q.newest = l.prevByAddr
	}
	if q.n--; q.n == 0 {
		delete(s.byAddr, l.addr)
	}
	s.n--
	l.set, l.prev, l.next, l.prevByAddr, l.nextByAddr = nil, nil, nil, nil, nil
}

func (s *pendingSet) stats() PendingStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return PendingStats{Pending: s.n, Addresses: len(s.byAddr),
		EvictedPerAddress: s.evictedAddr.Load(), EvictedTotal: s.evictedTotal.Load()}
}

// evict closes a connection the set made room with. A TLS connection's
// socket is closed under it, so that no close_notify is written (a
// client that reads nothing could hold the accepting goroutine up).
func (c *Conn) evict() {
	nc := c.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	nc.Close()
}

// addrKey is the address a cap counts by: the client's IP, and for IPv6
// its /64, the block one subscriber usually holds whole.
func addrKey(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	if t, ok := a.(*net.TCPAddr); ok {
		ap = t.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip
}

// connackWatch follows what the server writes until its CONNACK decides:
// packets before it (an MQTT 5.0 AUTH exchange) are skipped by their
// remaining length, and the CONNACK's second byte, its return code (3.1.1)
// or reason code (5.0), says whether the server accepted the client.
// Writes may cut the stream anywhere — a buffered writer may hand over a
// CONNACK split in two, or together with the packets after it — so the
// watch keeps its place between writes.
type connackWatch struct {
	decided bool
	inPkt   bool // the first byte of a packet has been seen
	first   byte
	inBody  bool // its remaining length has been read
	lenN    int  // remaining length bytes read
	mult    int
	rem     int // the remaining length, then the body bytes still to come
	seen    int // body bytes of a CONNACK seen
}

// feed reads p and reports, once, whether the CONNACK decided and
// whether it accepted.
func (w *connackWatch) feed(p []byte) (decided, accepted bool) {
	for len(p) > 0 && !w.decided {
		switch {
		case !w.inPkt:
			w.inPkt, w.first, w.inBody, w.lenN, w.mult, w.rem, w.seen = true, p[0], false, 0, 1, 0, 0
			p = p[1:]
			continue
		case !w.inBody:
			b := p[0]
			p = p[1:]
			w.rem += int(b&0x7f) * w.mult
			w.mult <<= 7
			w.lenN++
			if b&0x80 != 0 && w.lenN < 4 {
				continue
			}
			w.inBody = true
		case w.first == byte(CONNACK)<<4:
			if w.seen == 1 {
				w.decided = true
				return true, p[0] == 0
			}
			w.seen++
			w.rem--
			p = p[1:]
		default:
			k := min(len(p), w.rem)
			w.rem -= k
			p = p[k:]
		}
		if w.inBody && w.rem <= 0 { // the packet is complete
			if w.first>>4 == byte(CONNACK) {
				// A CONNACK with the wrong flags or too short to carry
				// a code accepts no one.
				w.decided = true
				return true, false
			}
			w.inPkt = false
		}
	}
	return false, false
}
