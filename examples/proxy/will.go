package main

import (
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/packets"
)

// Wills with a delay.
//
// The upstream publishes a client's will when its upstream connection
// ends without a normal DISCONNECT. The proxy decides a will when the
// client's connection ends (closeBoth) and ends the upstream connection
// accordingly. A will with a delay (MQTT 5 Will Delay Interval) must be
// decided when the delay is over — a ban or an ACL change in between
// stops it — so the proxy takes the delay away from the CONNECT it
// passes on and waits itself: the upstream connection is held open,
// quiet (pinged, read and not acknowledged, so what the upstream sends
// stays in flight for the session), until the delay or the session is
// over; then the Guard decides, and the proxy ends the connection the
// way that sends or discards the will. A client that comes back within
// the delay and resumes its session cancels the will [MQTT-3.1.3-9]
// (a normal DISCONNECT on the held connection, before the new CONNECT
// goes upstream); one that does not ends the session, and the will is
// decided then.

// willDelay is how long a CONNECT's will waits: its Will Delay Interval,
// or the Session Expiry Interval if the session ends first (0: at once),
// at most maxWillDelay. Zero for MQTT 3.1.1, which has no delays.
func willDelay(pkt *packets.Packet) time.Duration {
	cn := &pkt.Connect
	if pkt.Connect.Level != packets.V5 || !cn.WillFlag || cn.WillProps.WillDelay == 0 {
		return 0
	}
	return min(time.Duration(min(cn.WillProps.WillDelay, pkt.Props.SessionExpiry))*time.Second, maxWillDelay)
}

// Holding a will costs an upstream connection and two goroutines until
// it is decided: bounded per username and in total, and in time. A will
// past a bound is decided when its client leaves, as if it had no delay.
const (
	maxWillDelay   = 24 * time.Hour
	maxHeld        = 1000
	maxHeldPerUser = 16
)

// heldWills are the upstream connections held for a delayed will, by
// client ID. Close decides them all and waits.
type heldWills struct {
	p       *Proxy
	mu      sync.Mutex
	pending map[string]*heldWill
	perUser map[string]int
	closed  bool
	wg      sync.WaitGroup
}

// room reports whether a will of username's may be held.
func (w *heldWills) room(username string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) < maxHeld && w.perUser[username] < maxHeldPerUser
}

type heldWill struct {
	s      *session // ended: its upstream connection, reader and will
	owner  owner
	cancel chan bool     // true: resumed, discard the will; false: decide it now
	done   chan struct{} // closed when the upstream connection has ended
}

// owner is who a session belongs to, beyond the client ID it chose.
type owner struct {
	username, commonName, certIdentity string
}

func ownerOf(c mqttguard.Client) owner {
	return owner{username: c.Username, commonName: c.CommonName, certIdentity: c.CertIdentity}
}

// hold takes over s's upstream connection until its will's delay is
// over. The relays have ended.
func (w *heldWills) hold(s *session) {
	hw := &heldWill{s: s, owner: ownerOf(s.gc), cancel: make(chan bool, 1), done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.p.endUpstream(s, time.Now())
		return
	}
	if w.pending == nil {
		w.pending = map[string]*heldWill{}
	}
	if old := w.pending[s.gc.ID]; old != nil {
		old.cancel <- false
	}
	if w.perUser == nil {
		w.perUser = map[string]int{}
	}
	w.pending[s.gc.ID] = hw
	w.perUser[hw.s.gc.Username]++
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		w.run(hw)
	}()
}

func (w *heldWills) run(hw *heldWill) {
	defer close(hw.done)
	s := hw.s
	s.up.SetReadDeadline(time.Time{})
	gone := make(chan struct{})
	go func() { // drain: nothing is acknowledged, so it stays the session's
		defer close(gone)
		for {
			if _, err := s.upR.Read(); err != nil {
				return
			}
		}
	}()
	var ping <-chan time.Time
	if s.ka > 0 {
		t := time.NewTicker(time.Duration(s.ka) * time.Second / 2)
		defer t.Stop()
		ping = t.C
	}
	timer := time.NewTimer(s.willDelay)
	defer timer.Stop()
	resumed := false
loop:
	for {
		select {
		case <-ping:
			s.toUpstream([]byte{byte(packets.PINGREQ) << 4, 0})
			s.flush()
		case <-timer.C:
			break loop
		case resumed = <-hw.cancel:
			break loop
		case <-gone:
			break loop // the upstream ended it: nothing left to decide
		}
	}
	w.mu.Lock()
	if w.pending[s.gc.ID] == hw {
		delete(w.pending, s.gc.ID)
	}
	if w.perUser[s.gc.Username]--; w.perUser[s.gc.Username] <= 0 {
		delete(w.perUser, s.gc.Username)
	}
	w.mu.Unlock()
	if resumed {
		s.toUpstream(normalDisconnect(s)) // the will is discarded
		s.flush()
		select { // the upstream has taken it in when it closes the connection
		case <-gone:
		case <-time.After(2 * time.Second):
		}
		s.up.Close()
	} else {
		w.p.endUpstream(s, time.Now())
	}
	<-gone
}

// reconnected settles the will held for a client ID that has just
// connected again, before its CONNECT goes upstream: cancelled if the
// connection resumes the session, decided now if it ends it.
func (w *heldWills) reconnected(id string, o owner, resumes bool) {
	w.mu.Lock()
	hw := w.pending[id]
	if hw != nil {
		delete(w.pending, id)
	}
	w.mu.Unlock()
	if hw == nil {
		return
	}
	hw.cancel <- resumes && hw.owner == o
	<-hw.done // the upstream sees the held connection end before the new CONNECT
}

// close decides every held will now and waits.
func (w *heldWills) close() {
	w.mu.Lock()
	w.closed = true
	for _, hw := range w.pending {
		hw.cancel <- false
	}
	w.pending = nil
	w.mu.Unlock()
	w.wg.Wait()
}

// endUpstream ends s's upstream connection the way that sends its will
// if the Guard allows it now (an abrupt close), and discards it if not
// (a normal DISCONNECT first).
func (p *Proxy) endUpstream(s *session, now time.Time) {
	if s.will != nil {
		d := p.Guard.Disconnect(&s.gc, s.will, now)
		switch {
		case d.Verdict != mqttguard.Allow:
			s.toUpstream(normalDisconnect(s))
			s.flush()
		case s.disc != nil:
			s.toUpstream(s.disc) // the client's own 0x04, with its properties
			s.flush()
		}
	}
	s.up.Close()
}

// normalDisconnect is a DISCONNECT that discards the will: reason 0,
// with the properties of the client's 0x04 DISCONNECT if it sent one
// (its new Session Expiry Interval still applies).
func normalDisconnect(s *session) []byte {
	if s.disc == nil || s.version != packets.V5 {
		return packets.AppendDisconnect(nil, s.version, 0)
	}
	out := append([]byte(nil), s.disc...)
	i := 1
	for out[i]&0x80 != 0 { // the remaining length's bytes
		i++
	}
	out[i+1] = 0 // the reason code, first in the variable header
	return out
}
