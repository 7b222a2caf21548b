package mochiguard

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
)

// A session belongs to the identity that created it.
//
// mochi keeps a client's session (its subscriptions and the QoS 1 and 2
// messages in flight or queued for it) after the connection ends, and
// gives it to the next connection with the same client ID that does not
// ask for a clean start: whoever that is. The hook keeps, beside each of
// mochi's clients, who it authenticated as (a session, kept while mochi
// keeps the client, connected or not, so that messages for an offline
// subscriber are filtered with the identity it will come back as), and
// at the CONNACK of every new connection:
//
//   - A session another identity created (another username, or another
//     certificate name) is not resumed: its subscriptions and messages
//     are discarded and the CONNACK says Session Present 0. So is one
//     mochi should not have kept (MQTT 5 Session Expiry 0, MQTT 3.1.1
//     clean session: mochi hands those over too while the old
//     connection is still open).
//   - The owner's session is resumed: each queued message passes the
//     receive check again, with the identity and ACL in force now;
//     those it may no longer read, and those whose Message Expiry
//     passed, are dropped; the rest go out in the order they were
//     queued (mochi sorts them by the second they were created, in no
//     order within a second).
//
// One window stays open that no hook can close: mochi hands a session
// over in steps (it copies the messages in flight to the new client,
// then clears the old one's), and a message queued for the old client in
// the microseconds between the two is lost. A publish that races a
// durable subscriber's reconnection can therefore be lost in mochi (as
// it is without the Guard); mosquitto, single-threaded, has no such
// window.
type session struct {
	c     mqttguard.Client
	owner owner
	// persistent: the client asked for its session to outlive the
	// connection (what mochi decides "expire" from).
	persistent bool
	// subscribing holds the decisions of the SUBSCRIBE being processed,
	// by filter, for OnACLCheck: mochi asks it for each filter.
	subscribing atomic.Pointer[map[string]bool]

	// expiry disconnects the client when its credentials end
	// (Client.Expires); nil for credentials without an end. Stopped when
	// the connection ends.
	expiry atomic.Pointer[time.Timer]

	// Set by begin, used at the CONNACK: the client this connection
	// takes the client ID over from, and whether it must start afresh.
	predecessor *mqtt.Client
	fresh       bool
	// superseded is set on the predecessor's session by the connection
	// that takes it over (before mochi closes the predecessor's
	// connection, so before its will): resumed or ended.
	superseded atomic.Int32

	flow        flow          // the client's Receive Maximum (flow.go)
	pacing      pacing        // publishers waiting for its queue (pace.go)
	held        held          // the bytes of its messages in flight (quota.go)
	subacks     subacks       // refusal codes for the SUBACK (subscribe.go)
	connacked   chan struct{} // closed once the CONNACK is written
	connackOnce sync.Once
	// resumed are the packet identifiers of the messages resume checked
	// and handed to mochi's resend: they go out as checked, even if one
	// expires while the resend waits on a slow client (mochi ends the
	// connection, will unsent, when a resend fails to encode).
	resumedMu sync.Mutex
	resumed   map[uint16]struct{}
}

// wasResumed reports (once) whether id is a message resume checked.
func (s *session) wasResumed(id uint16) bool {
	s.resumedMu.Lock()
	defer s.resumedMu.Unlock()
	_, ok := s.resumed[id]
	delete(s.resumed, id)
	return ok
}

const (
	supersededResumed = 1 // the session goes on in another connection
	supersededEnded   = 2 // another identity or a clean start ended it
)

// owner is who a session belongs to: what identifies an authenticated
// client beyond the client ID it chose.
type owner struct {
	username, commonName, certIdentity string
}

func ownerOf(c mqttguard.Client) owner {
	return owner{username: c.Username, commonName: c.CommonName, certIdentity: c.CertIdentity}
}

func (h *Hook) session(cl *mqtt.Client) *session {
	if s, ok := h.sessions.Load(cl); ok {
		return s.(*session)
	}
	return nil
}

// begin records an accepted connection's session, before mochi looks
// for one to hand over (its OnConnect), and settles a delayed will left
// by the client ID's last connection.
func (h *Hook) begin(cl *mqtt.Client, c mqttguard.Client, cleanStart bool) {
	s := &session{c: c, owner: ownerOf(c), connacked: make(chan struct{}),
		persistent: (cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval > 0) ||
			(cl.Properties.ProtocolVersion < 5 && !cl.Properties.Clean)}
	if cl.Properties.ProtocolVersion == 5 {
		s.flow = newFlow(cl.Properties.Props.ReceiveMaximum)
	}
	cl.State.Inflight.ResetSendQuota(0) // mochi's flow control deadlocks: flow.go
	resumes := false
	if prev, ok := h.srv.Clients.Get(cl.ID); ok {
		s.predecessor = prev
		ps := h.session(prev)
		resumes = ps != nil && ps.owner == s.owner && ps.persistent && !cleanStart
		s.fresh = !resumes
		if ps != nil {
			how := int32(supersededEnded)
			if resumes {
				how = supersededResumed
			}
			ps.superseded.Store(how)
		}
	}
	h.addSession(cl, s)
	h.wills.reconnected(cl.ID, s.owner, resumes)
	if !c.Expires.IsZero() {
		var expire func()
		expire = func() {
			if h.session(cl) != s || cl.Closed() {
				return
			}
			select {
			case <-s.connacked:
				h.kick(cl, reason.MaximumConnectTime)
			default:
				// Never a DISCONNECT before the CONNACK [MQTT-3.2.0-1].
				s.expiry.Store(time.AfterFunc(10*time.Millisecond, expire))
			}
		}
		s.expiry.Store(time.AfterFunc(time.Until(c.Expires), expire))
	}
}

// atConnack runs as mochi encodes a successful CONNACK: after it has
// handed the client ID's session over to this connection, before it
// resends what the session holds. It settles what is handed over.
func (h *Hook) atConnack(cl *mqtt.Client, pk *packets.Packet) {
	s := h.session(cl)
	if s == nil {
		return
	}
	if prev := s.predecessor; prev != nil {
		h.dropSession(prev)
		s.predecessor = nil
	}
	cl.State.Inflight.ResetSendQuota(0) // mochi set it again handing the session over: flow.go
	if s.fresh {
		if pk.SessionPresent {
			h.srv.UnsubscribeClient(cl)
			cl.ClearInflights()
		}
		pk.SessionPresent = false
		return
	}
	if pk.SessionPresent {
		h.resume(cl, s, time.Now())
	}
}

// resume filters the messages the session holds and orders them for
// mochi's resend, which sorts by Created (seconds) truncated to 16 bits:
// Created is rewritten to count up in the order the packet identifiers
// were given out. mochi uses Created for nothing else once a message
// is in flight (the broker runs with no maximum message expiry, which
// would compare it with the clock).
func (h *Hook) resume(cl *mqtt.Client, s *session, now time.Time) {
	var keep []packets.Packet
	for _, p := range cl.State.Inflight.GetAll(false) {
		if p.FixedHeader.Type != packets.Publish {
			continue // PUBREL, PUBREC: the ends of QoS 2 flows, resent as they are
		}
		// Onward delivery starts here: what has not expired now goes
		// out, even if the resend takes long (see session.resumed).
		expired := p.Expiry > 0 && now.Unix() > p.Expiry
		if expired || h.g.Deliver(&s.c, &mqttguard.Message{Topic: p.TopicName, QoS: p.FixedHeader.Qos, Retain: p.FixedHeader.Retain}).Verdict != mqttguard.Allow {
			if cl.State.Inflight.Delete(p.PacketID) {
				atomic.AddInt64(&h.srv.Info.Inflight, -1)
			}
			continue
		}
		keep = append(keep, p)
	}
	ids := make([]uint16, len(keep))
	for i, p := range keep {
		ids[i] = p.PacketID
	}
	order := allocationOrder(ids)
	byID := make(map[uint16]packets.Packet, len(keep))
	for _, p := range keep {
		byID[p.PacketID] = p
	}
	base := now.Unix() - int64(len(order))
	if int64(uint16(base))+int64(len(order)) > 1<<16 {
		base = base&^0xffff + 1<<16 // the low 16 bits would wrap: start at the next multiple
	}
	s.resumedMu.Lock()
	s.resumed = make(map[uint16]struct{}, len(order))
	for i, id := range order {
		p := byID[id]
		p.Created = base + int64(i)
		cl.State.Inflight.Set(p)
		s.resumed[id] = struct{}{}
		h.holdMessage(s, &p)
	}
	s.resumedMu.Unlock()
}

// allocationOrder sorts packet identifiers in the order mochi gave them
// out: counting up from 1 to 65535 and round again, so the oldest
// identifier is the one after the widest gap.
func allocationOrder(ids []uint16) []uint16 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	if len(ids) < 2 {
		return ids
	}
	start, widest := 0, int(ids[0])+1<<16-int(ids[len(ids)-1]) // the gap across the wrap
	for i := 1; i < len(ids); i++ {
		if gap := int(ids[i]) - int(ids[i-1]); gap > widest {
			start, widest = i, gap
		}
	}
	return append(ids[start:], ids[:start]...)
}

func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if s := h.session(cl); s != nil {
		if t := s.expiry.Load(); t != nil {
			t.Stop()
		}
		s.pacing.drained() // nothing will drain it now: waiting publishers go on
	}
	if expire || cl.IsTakenOver() {
		h.dropSession(cl)
	}
	// Otherwise the session lives on, offline, until it is taken over
	// (atConnack) or expires (OnClientExpired).
}

func (h *Hook) OnClientExpired(cl *mqtt.Client) {
	h.dropSession(cl)
}

// connected calls fn for each connected client's session.
func (h *Hook) connected(fn func(cl *mqtt.Client, s *session)) {
	h.sessions.Range(func(k, v any) bool {
		if cl := k.(*mqtt.Client); !cl.Closed() {
			fn(cl, v.(*session))
		}
		return true
	})
}

// Kick disconnects the connected clients a ban matches (trust.Ban.Matches),
// with code: a DISCONNECT with it for MQTT 5, a plain close for 3.1.1.
// It says how many there were.
func (h *Hook) Kick(match trust.Ban, code reason.Code) int {
	n := 0
	h.connected(func(cl *mqtt.Client, s *session) {
		if match.Matches(trust.Identity{ClientID: s.c.ID, Username: s.c.Username, Addr: s.c.Addr}) {
			h.kick(cl, code)
			n++
		}
	})
	return n
}

// Clients lists the connected clients.
func (h *Hook) Clients() []mqttguard.Client {
	var out []mqttguard.Client
	h.connected(func(_ *mqtt.Client, s *session) { out = append(out, s.c) })
	return out
}
