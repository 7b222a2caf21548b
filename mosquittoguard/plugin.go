package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
)

// mosquitto's return codes (mosquitto.h, enum mosq_err_t) and ACL access
// kinds (mosquitto_broker.h) the plugin answers with, here so that the
// decisions are plain Go, tested without cgo.
const (
	mosqErrSuccess   = 0
	mosqErrAuth      = 11
	mosqErrACLDenied = 12

	// aclDropped is aclCheck's answer for a publish the Guard dropped:
	// the shim says success to mosquitto and renames the message in the
	// MOSQ_EVT_MESSAGE that follows (not a mosquitto code; shim.c has
	// the same number).
	aclDropped = 1 << 16

	aclRead        = 0x01
	aclWrite       = 0x02
	aclSubscribe   = 0x04
	aclUnsubscribe = 0x08
)

// DroppedTopic is where a message the Guard drops goes (MOSQ_EVT_MESSAGE
// renames it): nobody may read it, so it is acknowledged as accepted
// and delivered to no one — how mosquitto 2.0 lets a plugin drop a
// message silently (a shadow ban, an anomalous reading).
const DroppedTopic = "$mqttguard/dropped"

// maxOffline bounds the sessions kept for clients that went away
// (their deliveries while offline and their wills are still decided by
// the Guard): mosquitto 2.0 tells a plugin when a client disconnects but
// not when its session ends.
const maxOffline = 100_000

// plugin is the Guard for one mosquitto: the stack built from the
// configuration file, and the clients mosquitto authenticated through it.
// Its methods run on mosquitto's broker thread (the callbacks) and on
// the stack's goroutines (the admin API, bans, trust escalations), so
// the client table is locked.
type plugin struct {
	st *guardstack.Stack

	mu       sync.Mutex
	sessions map[uintptr]*session // by mosquitto's struct mosquitto pointer
	byID     map[string]uintptr   // the latest session of each client ID
	perUser  map[string]int       // connected clients by username
	offline  []gone               // sessions in the order their clients left
	kicks    []string             // client IDs to disconnect at the next tick
	// expiring are the connected sessions whose credentials end
	// (Client.Expires), looked at by tick every expiryScanEvery.
	expiring   map[uintptr]*session
	expiryScan time.Time
}

// expiryScanEvery is how often tick looks for credentials that ended:
// mosquitto ticks many times a second.
const expiryScanEvery = 250 * time.Millisecond

// session is what the plugin knows of one mosquitto client: its identity
// as the Guard authenticated it, from CONNECT until mosquitto reuses the
// client's memory for another CONNECT (or maxOffline pushes it out).
type session struct {
	c mqttguard.Client
	// left is when the client disconnected (zero while connected):
	// mosquitto still asks about a session's queued deliveries and its
	// will after that.
	left time.Time
	// clean: MQTT 3.1.1 clean session, nothing outlives the connection.
	clean bool
	// kicked: the Guard asked mosquitto to disconnect the client (a
	// ban, a trust escalation, an expiry); until the next tick does,
	// the client may do nothing.
	kicked bool
	// filters are the subscriptions the client holds (for
	// Guard.SubscriptionQuota), with their bytes in all.
	filters map[string]struct{}
	bytes   int
}

// gone is a session whose client left, in order.
type gone struct {
	key uintptr
	s   *session
}

// mosquittoTLS says that mosquitto owns the listeners: a client
// certificate the plugin sees is one mosquitto verified (its listener's
// require_certificate and cafile), so use_identity_as_username may trust
// it.
type mosquittoTLS struct{}

func (*mosquittoTLS) Validate(*guardconf.Config) error { return nil }
func (*mosquittoTLS) VerifiesClientCertificates() bool { return true }

// newPlugin builds the stack from the configuration file at path.
func newPlugin(path string, log *slog.Logger) (*plugin, error) {
	cfg, err := guardconf.LoadConfig(path, &mosquittoTLS{})
	if err != nil {
		return nil, err
	}
	st, err := guardstack.New(cfg, log, func(c *mqttguard.Config) {
		c.CannotDelay = true // never sleep mosquitto's one thread
		// What an authenticator may wait for on that thread: a JWKS
		// refresh for a token's unknown kid (at most a few a minute).
		// Passwords hash without waiting: the thread is the only caller.
		c.VerifyWait = 50 * time.Millisecond
	})
	if err != nil {
		return nil, err
	}
	p := &plugin{st: st, sessions: map[uintptr]*session{}, expiring: map[uintptr]*session{},
		byID: map[string]uintptr{}, perUser: map[string]int{}}
	st.SetSessions(p)
	if err := st.StartAdmin(); err != nil {
		st.Close(context.Background())
		return nil, err
	}
	return p, nil
}

// basicAuth decides a CONNECT (MOSQ_EVT_BASIC_AUTH). cleanStart is the
// CONNECT's clean session (3.1.1) or clean start (5) flag.
func (p *plugin) basicAuth(key uintptr, req *mqttguard.ConnectRequest, cleanStart bool, now time.Time) int {
	req.Listener = "mosquitto"
	c, d := p.st.Guard.Connect(context.Background(), req, now)
	p.mu.Lock()
	defer p.mu.Unlock()
	// mosquitto reuses freed clients' memory: whatever was kept under
	// this pointer belongs to a client that is gone.
	p.forget(key)
	if d.Verdict != mqttguard.Allow {
		return mosqErrAuth
	}
	if why := p.admit(&c, cleanStart); why != "" {
		p.st.Log.Warn("mqttguard: reject", "point", "connect", "client", c.ID, "username", c.Username, "detail", why)
		return mosqErrAuth
	}
	if oldKey, ok := p.byID[c.ID]; ok {
		if old := p.sessions[oldKey]; old != nil && old.left.IsZero() {
			// mosquitto takes the client ID over from that connection
			// next, and sends its will before telling the plugin it
			// left: from now on it is a client that left, whose will is
			// decided as one.
			p.left(oldKey, old, now)
		}
	}
	s := &session{c: c, clean: cleanStart && req.ProtocolVersion < 5, filters: map[string]struct{}{}}
	if oldKey, ok := p.byID[c.ID]; ok && !cleanStart {
		if old := p.sessions[oldKey]; old != nil {
			// The session mosquitto hands over keeps its subscriptions.
			s.filters, s.bytes = old.filters, old.bytes
		}
	}
	p.sessions[key] = s
	p.byID[c.ID] = key
	p.perUser[c.Username]++
	if !c.Expires.IsZero() {
		p.expiring[key] = s
	}
	return mosqErrSuccess
}

// admit applies what the plugin knows and the Guard does not (p.mu
// held): a session mosquitto would hand over to another identity, and
// the sessions per username. It says why a CONNECT is refused, "" when
// it is not.
func (p *plugin) admit(c *mqttguard.Client, cleanStart bool) string {
	if oldKey, ok := p.byID[c.ID]; ok && !cleanStart {
		old := p.sessions[oldKey]
		if old != nil && (old.c.Username != c.Username || old.c.CertIdentity != c.CertIdentity) {
			// mosquitto would give this client the session's
			// subscriptions (shared ones included) and queued messages,
			// and 2.0 lets no plugin discard them.
			return "the client ID's session belongs to another identity: connect with clean start"
		}
	}
	maxSessions := p.st.Cfg.Security.MaxSessionsPerUser
	if maxSessions == 0 {
		maxSessions = 100
	}
	if maxSessions > 0 && p.perUser[c.Username] >= maxSessions {
		old := p.sessions[p.byID[c.ID]]
		if old == nil || !old.left.IsZero() || old.c.Username != c.Username {
			// mosquitto tells a plugin when a client leaves, not when its
			// session ends: the bound is on connected clients.
			return fmt.Sprintf("%d clients connected with this username, the most allowed (security.max_sessions_per_user)", maxSessions)
		}
		// it takes a connected client's place: no more than before
	}
	return ""
}

// forget drops the session kept under key (p.mu held).
func (p *plugin) forget(key uintptr) {
	s := p.sessions[key]
	if s == nil {
		return
	}
	delete(p.sessions, key)
	delete(p.expiring, key)
	if p.byID[s.c.ID] == key {
		delete(p.byID, s.c.ID)
	}
	if s.left.IsZero() {
		p.unconnected(s)
	}
}

// left marks s, kept under key, as a client that left (p.mu held).
func (p *plugin) left(key uintptr, s *session, now time.Time) {
	s.left = now
	p.offline = append(p.offline, gone{key, s})
	p.unconnected(s)
}

func (p *plugin) unconnected(s *session) {
	if p.perUser[s.c.Username]--; p.perUser[s.c.Username] <= 0 {
		delete(p.perUser, s.c.Username)
	}
}

// aclCheck decides a subscription, a publish, a delivery or a will
// (MOSQ_EVT_ACL_CHECK).
// clientID is mosquitto's for the client now: a session kept under its
// pointer for another client ID belongs to a client that is gone (one
// mosquitto admitted without the plugin, say).
func (p *plugin) aclCheck(key uintptr, clientID string, access int, topic string, payload []byte, qos byte, retain bool, now time.Time) int {
	p.mu.Lock()
	s := p.sessions[key]
	if s != nil && s.c.ID != clientID {
		p.forget(key)
		s = nil
	}
	if s == nil {
		p.mu.Unlock()
		return mosqErrACLDenied // not authenticated through the Guard
	}
	left, kicked := !s.left.IsZero(), s.kicked
	p.mu.Unlock()
	if kicked && !left {
		return mosqErrACLDenied // on its way out: nothing more until the tick kicks it
	}
	c := &s.c // never written after basicAuth
	g := p.st.Guard
	var d mqttguard.Decision
	switch {
	case access == aclRead && topic == DroppedTopic:
		return mosqErrACLDenied
	case access == aclRead:
		d = g.Deliver(c, &mqttguard.Message{Topic: topic, QoS: qos, Retain: retain})
	case access == aclWrite && left:
		// A client that left publishes nothing but its will, which
		// mosquitto checks after MOSQ_EVT_DISCONNECT.
		d = g.Disconnect(c, &mqttguard.Message{Topic: topic, Payload: payload, QoS: qos, Retain: retain, Subscribers: -1}, now)
	case access == aclWrite:
		d = g.Publish(context.Background(), c, &mqttguard.Message{Topic: topic, Payload: payload, QoS: qos, Retain: retain, Subscribers: -1}, now)
		if d.Verdict == mqttguard.Drop {
			return aclDropped // acknowledged; MOSQ_EVT_MESSAGE renames it
		}
	case access == aclSubscribe:
		if d = g.Subscribe(context.Background(), c, topic, qos, now); d.Verdict == mqttguard.Allow {
			d = p.subscribed(s, topic)
		}
	case access == aclUnsubscribe:
		p.mu.Lock()
		if _, ok := s.filters[topic]; ok {
			delete(s.filters, topic)
			s.bytes -= len(topic)
		}
		p.mu.Unlock()
		return mosqErrSuccess
	default:
		return mosqErrACLDenied
	}
	switch d.Verdict {
	case mqttguard.Allow:
		return mosqErrSuccess
	case mqttguard.Disconnect:
		if !left {
			p.mu.Lock()
			s.kicked = true
			p.kicks = append(p.kicks, c.ID)
			p.mu.Unlock()
		}
	}
	return mosqErrACLDenied
}

// subscribed counts a granted filter against the client's quota
// (Guard.SubscriptionQuota): a filter it holds replaces itself.
func (p *plugin) subscribed(s *session, filter string) mqttguard.Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := s.filters[filter]; ok {
		return mqttguard.Decision{}
	}
	d := p.st.Guard.SubscriptionQuota(&s.c, len(s.filters), s.bytes, filter)
	if d.Verdict == mqttguard.Allow {
		s.filters[filter] = struct{}{}
		s.bytes += len(filter)
	}
	return d
}

// disconnect marks a client gone (MOSQ_EVT_DISCONNECT). Its session is
// kept: mosquitto checks its will and its deliveries while offline
// after this.
func (p *plugin) disconnect(key uintptr, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sessions[key]; s != nil && s.left.IsZero() {
		p.left(key, s, now)
	}
}

// tick returns the client IDs to kick now (MOSQ_EVT_TICK): mosquitto's
// API may be called only on its own thread. It forgets the sessions
// that cannot be asked about any more: a clean session's (its will was
// checked right after its client left, on this same thread) and the
// oldest beyond maxOffline.
func (p *plugin) tick() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.kicks
	p.kicks = nil
	if now := time.Now(); now.Sub(p.expiryScan) >= expiryScanEvery {
		p.expiryScan = now
		for key, s := range p.expiring {
			switch {
			case p.sessions[key] != s || !s.left.IsZero():
				delete(p.expiring, key) // gone, or replaced by another client
			case s.c.Expired(now):
				// The credentials ended (a token's exp). mosquitto 2.0's
				// kick sends DISCONNECT 0x98 (a plugin cannot choose
				// 0xA0), and the will is the Guard's to allow.
				delete(p.expiring, key)
				s.kicked = true
				k = append(k, s.c.ID)
			}
		}
	}
	keep := p.offline[:0]
	over := len(p.offline) - maxOffline
	for _, g := range p.offline {
		s := p.sessions[g.key]
		switch {
		case s != g.s:
			// the client's memory already serves another client
		case g.s.clean || over > 0:
			p.forget(g.key)
			over--
		default:
			keep = append(keep, g)
		}
	}
	clear(p.offline[len(keep):])
	p.offline = keep
	return k
}

// Clients lists the connected clients (guardstack.Sessions, for the
// admin API).
func (p *plugin) Clients() []mqttguard.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]mqttguard.Client, 0, len(p.sessions))
	for _, s := range p.sessions {
		if s.left.IsZero() {
			out = append(out, s.c)
		}
	}
	return out
}

// Kick queues the clients the ban matches for the next tick
// (guardstack.Sessions: bans, trust escalations, the admin API).
// mosquitto 2.0's kick sends an MQTT 5 client DISCONNECT 0x98
// (administrative action) whatever code is: a plugin cannot choose it.
func (p *plugin) Kick(match trust.Ban, _ reason.Code) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.sessions {
		c := &s.c
		if s.left.IsZero() && match.Matches(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}) {
			s.kicked = true
			p.kicks = append(p.kicks, c.ID)
			n++
		}
	}
	return n
}

// reload is SIGHUP (MOSQ_EVT_RELOAD).
func (p *plugin) reload() error { return p.st.Reload() }

// close stops the stack (plugin cleanup).
func (p *plugin) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.st.Close(ctx)
}
