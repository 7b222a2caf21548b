package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
)

// Proxy is an MQTT security gateway: it terminates the clients'
// connections (TLS included), reads every packet through the packet
// validator and the Guard, and relays what passes to the upstream broker
// over one upstream connection per client.
type Proxy struct {
	*guardstack.Stack
	upTLS *tls.Config // nil: plain TCP upstream

	lns []guardstack.Listener
	wg  sync.WaitGroup

	mu       sync.Mutex
	sessions map[*session]struct{}
	perUser  map[string]int // sessions by username (under mu)
	closing  bool
	wills    heldWills
	owners   sessionOwners
}

// Start builds the stack from cfg, opens the listeners and starts
// relaying. Close stops it.
func Start(cfg *guardconf.Config, log *slog.Logger) (_ *Proxy, err error) {
	u := upstreamOf(cfg)
	if u.Addr == "" {
		return nil, &guardconf.ConfigError{File: cfg.Source, Key: "upstream.addr", Msg: "the proxy needs the upstream broker's host:port"}
	}
	st, err := guardstack.New(cfg, log)
	if err != nil {
		return nil, err
	}
	p := &Proxy{Stack: st, sessions: map[*session]struct{}{}}
	p.wills.p = p
	defer func() {
		if err != nil {
			p.Close(context.Background())
		}
	}()
	if u.TLS {
		host, _, _ := net.SplitHostPort(u.Addr)
		name := u.TLSServerName
		if name == "" {
			name = host
		}
		if p.upTLS, err = tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: cfg.Path(u.TLSCACertPath), ServerName: name,
			CertFile: cfg.Path(u.TLSCertPath), KeyFile: cfg.Path(u.TLSKeyPath)}); err != nil {
			return nil, fmt.Errorf("upstream TLS: %w", err)
		}
	}
	st.SetSessions(p)
	// TopicAliasMaximum 0: the proxy takes aliases away both ways (see
	// session), so a client that uses one breaks the protocol.
	if p.lns, err = st.Listen(0); err != nil {
		return nil, err
	}
	for _, l := range p.lns {
		p.wg.Add(1)
		go p.accept(l)
	}
	if err := st.StartAdmin(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proxy) accept(l guardstack.Listener) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.Log.Error("accept", "listener", l.ID, "error", err)
			}
			return
		}
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.serve(c.(*packets.Conn), l.ID)
		}()
	}
}

// dialUpstream opens a connection to the upstream broker.
func (p *Proxy) dialUpstream(ctx context.Context) (net.Conn, error) {
	timeout := upstreamOf(p.Cfg).ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: timeout}
	if p.upTLS != nil {
		return (&tls.Dialer{NetDialer: d, Config: p.upTLS}).DialContext(ctx, "tcp", upstreamOf(p.Cfg).Addr)
	}
	return d.DialContext(ctx, "tcp", upstreamOf(p.Cfg).Addr)
}

// add registers a session; false when the proxy is closing, or the
// session's username has security.max_sessions_per_user connections
// already (default 100; the upstream keeps sessions, the proxy bounds
// the connections it relays).
func (p *Proxy) add(s *session) (ok, full bool) {
	max := p.Cfg.Security.MaxSessionsPerUser
	if max == 0 {
		max = 100
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false, false
	}
	if max > 0 && p.perUser[s.gc.Username] >= max {
		return false, true
	}
	p.sessions[s] = struct{}{}
	if p.perUser == nil {
		p.perUser = map[string]int{}
	}
	p.perUser[s.gc.Username]++
	return true, false
}

func (p *Proxy) remove(s *session) {
	p.mu.Lock()
	if _, ok := p.sessions[s]; ok {
		delete(p.sessions, s)
		if p.perUser[s.gc.Username]--; p.perUser[s.gc.Username] <= 0 {
			delete(p.perUser, s.gc.Username)
		}
	}
	p.mu.Unlock()
}

func (p *Proxy) each(f func(*session)) {
	p.mu.Lock()
	all := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		all = append(all, s)
	}
	p.mu.Unlock()
	for _, s := range all {
		f(s)
	}
}

// takeOver ends the live sessions with a client ID, as the upstream
// would on a takeover (DISCONNECT 0x8E to the client), but the proxy's
// way: their wills are decided (or held for their delay) before the new
// connection's CONNECT goes upstream.
func (p *Proxy) takeOver(id string) {
	var old []*session
	p.each(func(s *session) {
		if s.gc.ID == id {
			old = append(old, s)
		}
	})
	for _, s := range old {
		s.closeBoth(reason.SessionTakenOver)
		select {
		case <-s.ended:
		case <-time.After(5 * time.Second):
		}
	}
}

// Clients lists the connected clients (guardstack.Sessions).
func (p *Proxy) Clients() []mqttguard.Client {
	var out []mqttguard.Client
	p.each(func(s *session) { out = append(out, s.gc) })
	return out
}

// Kick disconnects the clients a ban matches, with code.
func (p *Proxy) Kick(match trust.Ban, code reason.Code) int {
	n := 0
	p.each(func(s *session) {
		if match.Matches(trust.Identity{ClientID: s.gc.ID, Username: s.gc.Username, Addr: s.gc.Addr}) {
			s.kick(code)
			n++
		}
	})
	return n
}

// Close stops accepting, tells every client the server is going away
// (0x8B), waits for the relays to end, then stops the stack.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	for _, l := range p.lns {
		l.Close()
	}
	p.each(func(s *session) { s.kick(0x8B) })
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	p.wills.close()
	return p.Stack.Close(ctx)
}
