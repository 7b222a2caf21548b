package main

import (
	"context"
	"log/slog"
	"net/netip"
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

	aclRead        = 0x01
	aclWrite       = 0x02
	aclSubscribe   = 0x04
	aclUnsubscribe = 0x08
)

// plugin is the Guard for one mosquitto: the stack built from the
// configuration file, and the clients mosquitto authenticated through it.
// Its methods run on mosquitto's broker thread (the callbacks) and on
// the stack's goroutines (the admin API, bans, trust escalations), so
// the client table is locked.
type plugin struct {
	st *guardstack.Stack

	mu      sync.Mutex
	clients map[uintptr]*mqttguard.Client // by mosquitto's struct mosquitto pointer
	kicks   []string                      // client IDs to disconnect at the next tick
}

// newPlugin builds the stack from the configuration file at path.
func newPlugin(path string, log *slog.Logger) (*plugin, error) {
	cfg, err := guardconf.LoadConfig(path, nil)
	if err != nil {
		return nil, err
	}
	st, err := guardstack.New(cfg, log, func(c *mqttguard.Config) {
		c.CannotDelay = true // never sleep mosquitto's one thread
	})
	if err != nil {
		return nil, err
	}
	p := &plugin{st: st, clients: map[uintptr]*mqttguard.Client{}}
	st.SetSessions(p)
	if err := st.StartAdmin(); err != nil {
		st.Close(context.Background())
		return nil, err
	}
	return p, nil
}

// basicAuth decides a CONNECT (MOSQ_EVT_BASIC_AUTH). addr is the
// client's address as mosquitto prints it.
func (p *plugin) basicAuth(key uintptr, id, addr, username string, password []byte, hasPassword bool, version int, now time.Time) int {
	req := &mqttguard.ConnectRequest{ClientID: id, Username: username, Password: password, HasPassword: hasPassword,
		Listener: "mosquitto", ProtocolVersion: byte(version)}
	if a, err := netip.ParseAddr(addr); err == nil {
		req.Addr = netip.AddrPortFrom(a, 0)
	}
	c, d := p.st.Guard.Connect(context.Background(), req, now)
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.Verdict != mqttguard.Allow {
		// mosquitto reuses freed clients' memory: an identity left under
		// this pointer must not answer for the refused client.
		delete(p.clients, key)
		return mosqErrAuth
	}
	p.clients[key] = &c
	return mosqErrSuccess
}

// aclCheck decides a subscription, a publish or a delivery
// (MOSQ_EVT_ACL_CHECK).
func (p *plugin) aclCheck(key uintptr, access int, topic string, payload []byte, qos byte, retain bool, now time.Time) int {
	p.mu.Lock()
	c := p.clients[key]
	p.mu.Unlock()
	if c == nil {
		return mosqErrACLDenied // not authenticated through the Guard
	}
	g := p.st.Guard
	var d mqttguard.Decision
	switch access {
	case aclRead:
		d = g.Deliver(c, &mqttguard.Message{Topic: topic, QoS: qos, Retain: retain})
	case aclWrite:
		d = g.Publish(context.Background(), c, &mqttguard.Message{Topic: topic, Payload: payload, QoS: qos, Retain: retain, Subscribers: -1}, now)
	case aclSubscribe:
		d = g.Subscribe(context.Background(), c, topic, qos, now)
	case aclUnsubscribe:
		return mosqErrSuccess
	default:
		return mosqErrACLDenied
	}
	switch d.Verdict {
	case mqttguard.Allow:
		return mosqErrSuccess
	case mqttguard.Disconnect:
		p.queueKick(c.ID)
	}
	// mosquitto 2.0 cannot acknowledge a message and drop it from a
	// plugin's ACL check: a shadow-banned client's publish is refused.
	return mosqErrACLDenied
}

// disconnect forgets a client (MOSQ_EVT_DISCONNECT).
func (p *plugin) disconnect(key uintptr) {
	p.mu.Lock()
	delete(p.clients, key)
	p.mu.Unlock()
}

// tick returns the client IDs to kick now (MOSQ_EVT_TICK): mosquitto's
// API may be called only on its own thread.
func (p *plugin) tick() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.kicks
	p.kicks = nil
	return k
}

func (p *plugin) queueKick(id string) {
	p.mu.Lock()
	p.kicks = append(p.kicks, id)
	p.mu.Unlock()
}

// Clients lists the connected clients (guardstack.Sessions, for the
// admin API).
func (p *plugin) Clients() []mqttguard.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]mqttguard.Client, 0, len(p.clients))
	for _, c := range p.clients {
		out = append(out, *c)
	}
	return out
}

// Kick queues the clients the ban matches for the next tick
// (guardstack.Sessions: bans, trust escalations, the admin API). mosquitto
// 2.0 cannot send a DISCONNECT with a reason code from a plugin: code is
// not sent.
func (p *plugin) Kick(match trust.Ban, _ reason.Code) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.clients {
		if match.Matches(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}) {
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
