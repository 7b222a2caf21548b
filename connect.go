package mqttguard

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Client is who a connected client is, as Connect established it. A
// broker keeps it with the session and passes it to the other decision
// points.
type Client struct {
	ID       string
	Username string // after UseIdentityAsUsername
	Addr     netip.Addr
	// CommonName and CertIdentity come from a verified client
	// certificate ("" without one): the subject CN (for ACL cn rules) and
	// the name Config.CertIdentity selects.
	CommonName      string
	CertIdentity    string
	Listener        string
	ProtocolVersion byte // 3, 4 or 5
	// Expires is when the credentials the client authenticated with end
	// (a token's exp, a certificate's NotAfter); zero for none. From
	// then on the Guard refuses the client's publishes and subscriptions
	// with DISCONNECT 0xA0 (maximum connect time) and its deliveries, and
	// a broker disconnects it (Expired).
	Expires time.Time
	// Permissions are the session's own ACL (a token's acl claim, from a
	// SessionAuthenticator): they replace Config.ACL for this client,
	// and what they do not allow is denied. Nil: Config.ACL decides.
	Permissions *acl.Policy
}

// Expired reports whether c's credentials have ended at now.
func (c *Client) Expired(now time.Time) bool {
	return !c.Expires.IsZero() && !now.Before(c.Expires)
}

func (c *Client) acl() acl.Client {
	return acl.Client{ID: c.ID, Username: c.Username, Addr: c.Addr, CommonName: c.CommonName}
}

func (c *Client) identity() trust.Identity {
	return trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}
}

// ConnectRequest is a CONNECT as the broker received it.
type ConnectRequest struct {
	ClientID        string
	Username        string
	Password        []byte
	HasPassword     bool
	Addr            netip.AddrPort
	Listener        string
	ProtocolVersion byte
	CleanStart      bool
	KeepAlive       uint16
	// AuthMethod and AuthData are the MQTT 5 Authentication Method and
	// Data ("" and nil without them). A CONNECT that names a method no
	// authenticator speaks is refused with 0x8C [MQTT-4.12.0-1], whatever
	// its password.
	AuthMethod string
	AuthData   []byte
	// Certificate is the client certificate the TLS handshake verified
	// (tlsconf.VerifiedLeaf of the connection state), nil without one.
	// Never pass a certificate that was not verified: it can say anything.
	Certificate *x509.Certificate
	// Will is the will message, nil without one.
	Will *Message
}

// Connect decides a CONNECT. In order, cheapest first: the ban list,
// flapping, connection rates per address and per listener, credentials
// or certificate identity, the trust state, the will (a denied will
// topic refuses the connection), then the plugins' on_connect. A Reject
// carries the CONNACK reason code (Code.V3Connack says it for MQTT
// 3.1.1).
func (g *Guard) Connect(ctx context.Context, r *ConnectRequest, now time.Time) (Client, Decision) {
	c := Client{ID: r.ClientID, Username: r.Username, Addr: r.Addr.Addr().Unmap(),
		Listener: r.Listener, ProtocolVersion: r.ProtocolVersion}
	if r.Certificate != nil {
		c.CommonName = r.Certificate.Subject.CommonName
		if id, err := tlsconf.IdentityOf(r.Certificate, g.cfg.CertIdentity); err == nil {
			c.CertIdentity = id
		}
	}
	if g.cfg.UseIdentityAsUsername && c.CertIdentity != "" {
		c.Username = c.CertIdentity
	}
	d := g.connect(ctx, r, &c, now)
	if d.Verdict == Allow && g.cfg.Trust != nil {
		g.cfg.Trust.Good(c.identity(), now)
	}
	return c, g.record(PointConnect, d, &c, "", now)
}

func (g *Guard) connect(ctx context.Context, r *ConnectRequest, c *Client, now time.Time) Decision {
	id := c.identity()
	var obs Decision // the first refusal ObserveOnly let through
	if b := g.cfg.Bans; b != nil {
		if ban, ok := b.Banned(id, now); ok {
			return Decision{Verdict: Reject, Code: reason.Banned, Cause: Cause{Component: ByBan, Rule: ban.Kind.String() + " " + ban.Value, Detail: ban.Reason}}
		}
	}
	// Until here the client has proven nothing but its address: what it
	// claims (client ID, username) is not evidence against anyone, and
	// what it costs is the AuthGate's to bound.
	start := time.Now()
	claimed := c.Username
	if d, ok := g.authenticate(ctx, r, c, r.Certificate, now); !ok {
		return d
	}
	if c.Expired(now) {
		// Credentials that end before the session could start (a token
		// within its issuer's clock leeway, say): no session, no will.
		return refusedAuth(reason.BadUsernameOrPassword, "the credentials ended at "+c.Expires.UTC().Format(time.RFC3339))
	}
	if b := g.cfg.Bans; b != nil && c.Username != claimed {
		// The authenticator named someone else (a token's subject, a
		// certificate's identity): the ban list is asked about who the
		// client proved to be, too.
		if ban, ok := b.Banned(c.identity(), now); ok {
			return Decision{Verdict: Reject, Code: reason.Banned, Cause: Cause{Component: ByBan, Rule: ban.Kind.String() + " " + ban.Value, Detail: ban.Reason}}
		}
	}
	// Verifying may have waited its turn or for a hashing slot, seconds
	// under load: what follows is decided at the time it is decided. (A
	// rate limiter asked about a moment more than its burst behind the
	// others refuses: every client that waited 1 s for its hash was
	// refused 0x9F.) A short verification is within any bucket's
	// tolerance and leaves a caller's clock alone.
	if waited := time.Since(start); waited > 50*time.Millisecond {
		now = now.Add(waited)
	}
	lim := g.lim.Load()
	if c.Addr.IsValid() && (lim.connAddr != nil || lim.sharedAddr != nil) {
		var ok bool
		if lim.sharedAddr != nil {
			ok = lim.sharedAddr.AllowScaledContext(ctx, c.Addr.String(), now, 1, 1)
		} else {
			key := c.Addr.As16()
			ok = lim.connAddr.AllowBytes(key[:], now, 1)
		}
		if !ok {
			g.violation(id, trust.RateLimited, now)
			if d, stop := g.refuse(PointConnect, Decision{Verdict: Reject, Code: reason.ConnectionRateExceeded, Cause: Cause{Component: ByConnRate, Rule: "connections per address"}}, c, now, &obs); stop {
				return d
			}
		}
	}
	if l := lim.connListener; l != nil && !l.AllowN(c.Listener, now, 1) {
		if d, stop := g.refuse(PointConnect, Decision{Verdict: Reject, Code: reason.ConnectionRateExceeded, Cause: Cause{Component: ByConnRate, Rule: "connections per listener"}}, c, now, &obs); stop {
			return d
		}
	}
	if f := g.cfg.Flapping; f != nil && c.ID != "" {
		// By the client ID within its username: bob reconnecting in a
		// loop as sensor2's client ID is bob flapping.
		if v := f.Connect(c.Username+"\x00"+c.ID, now); v.Ban {
			g.violation(id, trust.Flapping, now)
			why := fmt.Sprintf("%d connects within %v", v.Count, f.Config().Window)
			if d, stop := g.refuse(PointConnect, Decision{Verdict: Reject, Code: reason.Banned, Cause: Cause{Component: ByFlapping, Detail: why}}, c, now, &obs); stop {
				if b := g.cfg.Bans; b != nil {
					b.Add(trust.Ban{Kind: trust.BanClientID, Value: c.ID, Username: c.Username, Until: v.BanUntil, At: now,
						By: "flapping", Reason: why, Automatic: true})
				}
				return d
			}
		}
	}
	if t := g.cfg.Trust; t != nil {
		if v := t.Verdict(id, now); v.State == trust.Disconnected {
			if d, stop := g.refuse(PointConnect, Decision{Verdict: Reject, Code: reason.Banned, Cause: Cause{Component: ByTrust, Detail: "state " + v.State.String()}}, c, now, &obs); stop {
				return d
			}
		}
	}
	if w := r.Will; w != nil {
		if err := acl.ValidTopic(w.Topic); err != nil {
			return Decision{Verdict: Reject, Code: reason.TopicNameInvalid, Cause: Cause{Component: ByWill, Detail: err.Error()}}
		}
		if h := g.aclOf(c); h != nil {
			if ad := h.CheckMessage(c.acl(), acl.Publish, w.Topic, w.QoS, w.Retain); !ad.Allowed {
				g.violation(id, trust.ACLDenied, now)
				d := Decision{Verdict: Reject, Code: reason.NotAuthorized, Cause: aclCause(ad)}
				d.Cause.Component, d.Cause.Detail = ByWill, "will topic "+w.Topic
				return d
			}
		}
	}
	if ps := *g.plugins.Load(); len(ps) > 0 {
		ev := wasmguard.ConnectEvent{Time: now, ClientID: c.ID, Username: c.Username, HasPassword: r.HasPassword,
			RemoteAddr: r.Addr.String(), ProtocolVersion: r.ProtocolVersion, CleanStart: r.CleanStart,
			KeepAlive: r.KeepAlive, CertIdentity: c.CertIdentity}
		for _, p := range ps {
			v, err := p.OnConnect(ctx, &ev)
			if d, stop := g.pluginDecision(p, v, err, id, now); stop {
				if d.Verdict == Drop {
					d.Verdict, d.Code = Reject, reason.NotAuthorized // nothing to drop silently at CONNECT
				}
				return d
			}
		}
	}
	return obs
}

// authenticate asks Config.Authenticators who the client is. A failure
// is evidence against the address only (the AuthGate's), never against
// the username or client ID the CONNECT claimed.
func (g *Guard) authenticate(ctx context.Context, r *ConnectRequest, c *Client, cert *x509.Certificate, now time.Time) (Decision, bool) {
	auths := g.cfg.Authenticators
	if len(auths) == 0 {
		if r.AuthMethod != "" {
			return refusedAuth(reason.BadAuthenticationMethod, "authentication method "+strconv.Quote(r.AuthMethod)+" is not supported"), false
		}
		return Decision{}, true // another part of the broker authenticates
	}
	if c.Username == "" && !r.HasPassword && r.AuthMethod == "" && g.cfg.AllowAnonymous {
		return Decision{}, true // anonymous: no credentials at all (a token is one)
	}
	gate := g.cfg.AuthGate
	// The AuthGate's turns slow guesses at a username's secret. Signed
	// credentials (a token) are not guesses: they take the address's
	// turns alone, so forged tokens that name a device never slow that
	// device, and password guesses at its name never slow its tokens.
	gateUser := c.Username
	for _, a := range auths {
		if sc, ok := a.(signedCredentials); ok && sc.Signed(c.Username, r.Password, r.AuthMethod) {
			gateUser = ""
			break
		}
	}
	// The cache of recent successes stands in for the chain only where
	// no built-in authenticator before the cached one could have an
	// opinion: a plain username and password, no certificate, no method.
	if c.Username != "" && r.AuthMethod == "" && cert == nil {
		for _, a := range auths {
			if ca, ok := a.(cachedAuthenticator); ok && ca.Cached(c.Username, string(r.Password)) {
				if gate != nil {
					gate.Seen(c.Addr, c.Username, now) // keeps its lane at this address
				}
				return Decision{}, true // verified a moment ago: no hash, no turn to wait
			}
		}
	}
	if gate != nil {
		wait, ok := gate.Reserve(c.Addr, gateUser, now)
		if !ok {
			return refusedAuth(reason.ServerBusy, "too many failed authentications from this address: try later"), false
		}
		if wait > 0 && g.cfg.CannotDelay {
			// Holding this CONNECT would hold every client (mosquitto's
			// one thread): one guesser could stall the broker for
			// MaxDelay per guess.
			gate.Abandon(c.Addr, gateUser, now)
			return refusedAuth(reason.ServerBusy, "this address's next attempt is due in "+wait.Round(time.Millisecond).String()+": try then"), false
		}
		if wait > 0 && !sleep(ctx, wait) {
			gate.Abandon(c.Addr, gateUser, now)
			return refusedAuth(reason.ServerBusy, "gave up waiting its turn"), false
		}
		now = now.Add(wait)
	}
	vctx, cancel := context.WithTimeout(ctx, cmp.Or(g.cfg.VerifyWait, 2*time.Second))
	defer cancel()
	for _, a := range auths {
		var id string
		var expires time.Time
		var cont []byte
		var perms *acl.Policy
		var err error
		if sa, ok := a.(SessionAuthenticator); ok {
			id, expires, perms, err = sa.AuthenticateSession(vctx, c.ID, c.Username, r.Password, r.AuthMethod, r.AuthData, cert)
		} else {
			id, expires, cont, err = a.Authenticate(vctx, c.Username, r.Password, r.AuthMethod, r.AuthData, cert)
		}
		switch {
		case err != nil:
			code, failed := codeOf(err, r.AuthMethod)
			if !failed {
				if gate != nil {
					gate.Abandon(c.Addr, gateUser, now)
				}
				return refusedAuth(code, err.Error()), false
			}
			g.authFailed(c.Addr, gateUser, now)
			return refusedAuth(code, err.Error()), false
		case id != "":
			switch {
			case gate == nil:
			case id == gateUser:
				gate.Succeeded(c.Addr, id, now)
			default:
				// The success is the identity's, not the username claimed
				// (whose turns it must not reset); the attempt Reserve
				// counted was the claimed username's.
				gate.Abandon(c.Addr, gateUser, now)
				gate.Seen(c.Addr, id, now)
			}
			c.Username, c.Expires, c.Permissions = id, expires, perms
			return Decision{}, true
		case cont != nil:
			if gate != nil {
				gate.Abandon(c.Addr, gateUser, now)
			}
			return refusedAuth(reason.BadAuthenticationMethod, "the authenticator asked for another AUTH round, which this broker does not carry yet"), false
		}
	}
	// Nobody recognised the credentials.
	g.authFailed(c.Addr, gateUser, now)
	switch {
	case r.AuthMethod != "":
		return refusedAuth(reason.BadAuthenticationMethod, "authentication method "+strconv.Quote(r.AuthMethod)+" is not supported"), false
	case c.Username == "":
		return refusedAuth(reason.NotAuthorized, "anonymous clients are not allowed"), false
	}
	return refusedAuth(reason.BadUsernameOrPassword, "no authenticator admits these credentials"), false
}

// refusedAuth is a CONNECT refused by authentication. The Cause names
// no username: what a client claimed is not a rule, and a log of
// refusals must not become a list of which usernames exist.
func refusedAuth(code reason.Code, detail string) Decision {
	return Decision{Verdict: Reject, Code: code, Cause: Cause{Component: ByPassword, Detail: detail}}
}

// authFailed counts a failed authentication against the address (and,
// to slow guessing, the username) and bans an address the AuthGate says
// is guessing.
func (g *Guard) authFailed(addr netip.Addr, username string, now time.Time) {
	if gate := g.cfg.AuthGate; gate != nil {
		g.banAddr(gate, addr, gate.Failed(addr, username, now), now)
	}
}

// banAddr bans an address the AuthGate said to ban.
func (g *Guard) banAddr(gate *trust.AuthGate, addr netip.Addr, ban bool, now time.Time) {
	if !ban || g.cfg.Bans == nil || !g.enforcing() {
		return
	}
	cfg := gate.Config()
	g.cfg.Bans.Add(trust.Ban{Kind: trust.BanIP, Value: addr.String(), Until: now.Add(cfg.BanFor), At: now,
		By: "auth-failures", Automatic: true,
		Reason: fmt.Sprintf("%d failed authentications within %v, none succeeded", gate.Failures(addr, now), cfg.Window)})
}

// sleep waits d or until ctx is done, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func aclCause(d acl.Decision) Cause {
	c := Cause{Component: ByACL}
	if d.Rule != nil {
		c.Rule, c.File, c.Line = d.Rule.Text, d.Rule.Source, d.Rule.Line
	} else {
		c.Detail = d.Reason.String()
	}
	return c
}

// violation feeds the trust tracker and returns the client's state.
func (g *Guard) violation(id trust.Identity, k trust.Kind, now time.Time) trust.State {
	if g.cfg.Trust == nil {
		return trust.Normal
	}
	return g.cfg.Trust.Violation(id, k, now)
}

// Violation counts something the broker saw (a malformed packet, say)
// against the client, and returns the Decision that follows from its
// trust state: Disconnect 0x98 once it reaches Disconnected.
func (g *Guard) Violation(c *Client, k trust.Kind, now time.Time) Decision {
	if g.violation(c.identity(), k, now) == trust.Disconnected && g.enforcing() {
		return g.record(PointPublish, Decision{Verdict: Disconnect, Code: reason.AdministrativeAction, Cause: Cause{Component: ByTrust, Detail: "escalated to disconnected by " + k.String()}}, c, "", now)
	}
	return Decision{}
}

// pluginDecision turns a plugin's verdict into a Decision; stop is true
// when the plugin did not allow.
func (g *Guard) pluginDecision(p *wasmguard.Plugin, v wasmguard.Verdict, err error, id trust.Identity, now time.Time) (Decision, bool) {
	cause := Cause{Component: ByPlugin, Rule: p.Name()}
	if err != nil {
		cause.Detail = err.Error()
	}
	switch v.Action {
	case wasmguard.Deny:
		if !v.Failed {
			g.violation(id, trust.PluginDenied, now)
		}
		return Decision{Verdict: Reject, Code: v.Reason, Cause: cause}, true
	case wasmguard.Drop:
		return Decision{Verdict: Drop, Cause: cause}, true
	}
	return Decision{}, false
}
