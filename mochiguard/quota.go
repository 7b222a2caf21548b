package mochiguard

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// What one account may make the broker keep.
//
// A session outlives its connection and holds the QoS 1 and 2 messages
// queued for it; mochi copies each message for each subscriber. Without
// bounds, one account opening durable sessions and leaving them offline
// while it publishes large messages to their topics grows the broker's
// memory without end (measured: 40 sessions, 58 publishes of 500 KB,
// +796 MB). The hook bounds, per username (anonymous clients share one
// account), the sessions kept, connected or not (a CONNECT past it is
// refused with 0x97, quota exceeded), and the bytes of the messages held
// for them (past it, deliveries to that account's subscribers are
// dropped until it reads what it has, as mosquitto drops past
// max_queued_bytes); mochi's MaximumInflight bounds the messages of one
// session.

// quotas are the per-account bounds in force; zero fields mean no bound.
type quotas struct {
	SessionsPerUser    int
	QueuedBytesPerUser int64
}

type accounts struct {
	q     quotas
	mu    sync.Mutex
	users map[string]*account
}

type account struct {
	sessions int
	bytes    int64
}

func (a *accounts) get(user string) *account {
	if a.users == nil {
		a.users = map[string]*account{}
	}
	u := a.users[user]
	if u == nil {
		u = &account{}
		a.users[user] = u
	}
	return u
}

func (a *accounts) drop(user string, u *account) {
	if u.sessions <= 0 && u.bytes <= 0 {
		delete(a.users, user)
	}
}

// mayOpen reports whether user may keep one more session (replacing
// one it has does not count).
func (a *accounts) mayOpen(user string, replaces bool) bool {
	if a.q.SessionsPerUser <= 0 || replaces {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.users[user]
	return u == nil || u.sessions < a.q.SessionsPerUser
}

func (a *accounts) opened(user string) {
	a.mu.Lock()
	a.get(user).sessions++
	a.mu.Unlock()
}

func (a *accounts) closed(user string) {
	a.mu.Lock()
	u := a.get(user)
	u.sessions--
	a.drop(user, u)
	a.mu.Unlock()
}

func (a *accounts) hold(user string, n int64) {
	a.mu.Lock()
	a.get(user).bytes += n
	a.mu.Unlock()
}

func (a *accounts) release(user string, n int64) {
	a.mu.Lock()
	u := a.get(user)
	u.bytes -= n
	a.drop(user, u)
	a.mu.Unlock()
}

// full reports whether user holds its whole byte quota.
func (a *accounts) full(user string) bool {
	if a.q.QueuedBytesPerUser <= 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.users[user]
	return u != nil && u.bytes >= a.q.QueuedBytesPerUser
}

// held is what one session's messages in flight weigh, by packet
// identifier.
type held struct {
	mu  sync.Mutex
	ids map[uint16]int64
}

// holdMessage notes a QoS 1 or 2 message put in flight for s.
func (h *Hook) holdMessage(s *session, pk *packets.Packet) {
	n := int64(len(pk.Payload) + len(pk.TopicName))
	s.held.mu.Lock()
	if s.held.ids == nil {
		s.held.ids = map[uint16]int64{}
	}
	old := s.held.ids[pk.PacketID]
	s.held.ids[pk.PacketID] = n
	s.held.mu.Unlock()
	h.accounts.hold(s.c.Username, n-old)
}

// releaseMessage notes that a message left s's flight.
func (h *Hook) releaseMessage(s *session, id uint16) {
	s.held.mu.Lock()
	n, ok := s.held.ids[id]
	delete(s.held.ids, id)
	s.held.mu.Unlock()
	if ok {
		h.accounts.release(s.c.Username, n)
	}
}

// releaseAll gives back what a session held (it ended or was taken over).
func (h *Hook) releaseAll(s *session) {
	s.held.mu.Lock()
	var n int64
	for _, b := range s.held.ids {
		n += b
	}
	s.held.ids = nil
	s.held.mu.Unlock()
	if n > 0 {
		h.accounts.release(s.c.Username, n)
	}
}

func (h *Hook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup {
		return // an ack of the client's own flow, or a resend of what is held already
	}
	if s := h.session(cl); s != nil {
		h.holdMessage(s, &pk)
	}
}

func (h *Hook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if s := h.session(cl); s != nil {
		h.releaseMessage(s, pk.PacketID)
	}
}

func (h *Hook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if s := h.session(cl); s != nil {
		h.releaseMessage(s, pk.PacketID)
	}
}

// addSession and dropSession keep the sessions map and the accounts'
// session counts together.
func (h *Hook) addSession(cl *mqtt.Client, s *session) {
	if _, had := h.sessions.Swap(cl, s); !had {
		h.accounts.opened(s.c.Username)
	}
}

func (h *Hook) dropSession(cl *mqtt.Client) {
	if v, had := h.sessions.LoadAndDelete(cl); had {
		s := v.(*session)
		h.releaseAll(s)
		h.accounts.closed(s.c.Username)
	}
}
