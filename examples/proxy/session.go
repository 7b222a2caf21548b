package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
)

// session relays one client connection to its upstream connection.
//
// Client → upstream, every packet has passed the packet validator; a
// PUBLISH passes the Guard too, and what it refuses or drops the proxy
// answers itself (PUBACK, or PUBREC and later PUBCOMP for QoS 2) with the
// client's own packet identifier, without forwarding: the upstream never
// sees the identifier, so nothing collides. A SUBSCRIBE is decided per
// filter; the proxy forwards the allowed filters under the same packet
// identifier and merges the upstream's SUBACK with its own refusals.
//
// Upstream → client, every PUBLISH passes the Guard's delivery check; one
// the client may not read is acknowledged to the upstream by the proxy
// and never reaches the client.
//
// Topic aliases are taken away both ways (the client's Topic Alias
// Maximum is not passed upstream, the upstream's is not passed to the
// client): a message the proxy refuses would otherwise take an alias
// mapping with it that the other side then lacks.
type session struct {
	p       *Proxy
	client  *packets.Conn
	version packets.Version
	gc      mqttguard.Client
	will    *mqttguard.Message

	up   net.Conn
	upR  *packets.Reader // what the upstream sends
	upMu sync.Mutex      // upstream writes come from both relays
	upW  *bufio.Writer   // under upMu
	cMu  sync.Mutex      // client writes too
	cW   *bufio.Writer   // under cMu
	ka   uint16          // the CONNECT's keep-alive, seconds

	// filters are the subscriptions the client holds (as the proxy
	// forwarded them), for its quota; read and written by the client
	// relay only.
	filters     map[string]struct{}
	filterBytes int

	mu        sync.Mutex
	subs      map[uint16]*pendingSub // SUBSCRIBEs with refused filters, by packet ID
	localRel  map[uint16]bool        // client QoS 2 flows the proxy answered: their PUBREL stays here
	upDropped map[uint16]bool        // upstream QoS 2 deliveries the proxy dropped: their PUBREL stays here

	graceful  atomic.Bool // the client sent DISCONNECT (not 0x04: that one asks for the will)
	willDelay time.Duration
	holdWill  bool // closeBoth left the upstream connection for heldWills
	// disc is the client's DISCONNECT with reason 0x04 (disconnect with
	// will), kept for its properties (a new Session Expiry Interval) to
	// pass on whichever way the will is decided.
	disc      []byte
	ended     chan struct{} // closed when serve returns (a held will handed over)
	kickCode  atomic.Int32
	closeOnce sync.Once
	buf       []byte // for what the client relay writes
}

// pendingSub is a SUBACK to merge: codes holds the proxy's refusals, and
// forwarded the positions the upstream's codes go to.
type pendingSub struct {
	codes     []packets.ReasonCode
	forwarded []int
}

// upstreamLimits read what the upstream sends: it is trusted to speak
// MQTT, so only the structure is checked, not the proxy's client limits.
var upstreamLimits = packets.Limits{MaxPacketSize: 256 << 20, MaxTopicLength: 65535, MaxTopicLevels: 1 << 16,
	MaxSubscriptions: 1 << 16, MaxProperties: 1 << 16, MaxUserProperties: 1 << 16, AllowControlChars: true}

// serve runs one client connection to its end.
func (p *Proxy) serve(c *packets.Conn, listener string) {
	defer c.Close()
	pkt, err := c.ReadPacket()
	if err != nil {
		return // the validator closed it (and counted it), or the client left
	}
	s := &session{p: p, client: c, version: pkt.Connect.Level, subs: map[uint16]*pendingSub{},
		localRel: map[uint16]bool{}, upDropped: map[uint16]bool{}, ended: make(chan struct{})}
	defer close(s.ended)
	ctx := context.Background()
	if !s.connect(ctx, pkt, listener) {
		return
	}
	defer p.remove(s)
	if exp := s.gc.Expires; !exp.IsZero() {
		// The credentials' end ends the session (MQTT 5: DISCONNECT 0xA0).
		t := time.AfterFunc(time.Until(exp), func() { s.kick(reason.MaximumConnectTime) })
		defer t.Stop()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.upstreamToClient()
	}()
	s.clientToUpstream()
	<-done
	if s.holdWill {
		p.wills.hold(s)
	}
}

// connect decides the CONNECT, opens the upstream connection, passes the
// CONNECT on and the CONNACK back. It reports whether the relay starts.
func (s *session) connect(ctx context.Context, pkt *packets.Packet, listener string) bool {
	p, cn := s.p, &pkt.Connect
	now := time.Now()
	req := &mqttguard.ConnectRequest{ClientID: string(cn.ClientID), Username: string(cn.Username),
		Password: cn.Password, HasPassword: cn.PasswordFlag, Listener: listener, ProtocolVersion: byte(cn.Level),
		CleanStart: cn.CleanStart, KeepAlive: cn.KeepAlive, AuthMethod: string(pkt.Props.AuthMethod)}
	req.Addr, _ = netip.ParseAddrPort(s.client.RemoteAddr().String())
	if cs := s.client.ConnectionState(); cs.HandshakeComplete {
		req.Certificate = mqttguard.VerifiedCertificate(&cs)
	}
	if req.ClientID == "" {
		// The upstream assigns the real one; the Guard needs a key.
		req.ClientID = "anonymous-" + req.Addr.String()
	}
	if cn.WillFlag {
		s.will = &mqttguard.Message{Topic: string(cn.WillTopic), Payload: append([]byte(nil), cn.WillPayload...),
			QoS: cn.WillQoS, Retain: cn.WillRetain}
		req.Will = s.will
	}
	s.ka = cn.KeepAlive
	gc, d := p.Guard.Connect(ctx, req, now)
	s.gc = gc
	if d.Verdict != mqttguard.Allow {
		s.client.Write(packets.AppendConnack(nil, s.version, false, d.RefusalIn(byte(packets.CONNACK))))
		return false
	}

	fwd := *cn
	if u := (*upstreamOf(p.Cfg)); u.Username != "" {
		fwd.Username, fwd.UsernameFlag = []byte(u.Username), true
		fwd.Password, fwd.PasswordFlag = []byte(u.Password), u.Password != ""
	} else if p.Cfg.Security.UseIdentityAsUsername && gc.CertIdentity != "" {
		fwd.Username, fwd.UsernameFlag = []byte(gc.CertIdentity), true
	}
	who, named := ownerOf(gc), len(cn.ClientID) > 0
	if named {
		// The upstream would take a live session with this client ID
		// over itself, and publish its will unasked: end it here first,
		// the proxy's way (its will decided, or held for its delay).
		p.takeOver(gc.ID)
	}
	p.wills.reconnected(gc.ID, who, !cn.CleanStart)
	if named && p.owners.changes(gc.ID, who, !cn.CleanStart) {
		if err := p.endSession(ctx, fwd); err != nil {
			p.Log.Error("could not end another identity's upstream session", "client", gc.ID, "error", err)
			s.client.Write(packets.AppendConnack(nil, s.version, false, reason.ServerUnavailable))
			return false
		}
	}
	up, err := p.dialUpstream(ctx)
	if err != nil {
		p.Log.Error("upstream unreachable", "addr", upstreamOf(p.Cfg).Addr, "error", err)
		s.client.Write(packets.AppendConnack(nil, s.version, false, reason.ServerUnavailable))
		return false
	}
	s.up = up
	if fwd.WillFlag && fwd.WillProps.Has(packets.PropWillDelay) {
		// The proxy waits, and decides when the wait is over (will.go);
		// the upstream must not wait on its own.
		fwd.WillProps.Raw = packets.WithoutProperties(fwd.WillProps.Raw, packets.PropWillDelay)
		s.willDelay = willDelay(pkt)
	}
	props := packets.WithoutProperties(pkt.Props.Raw, packets.PropTopicAliasMaximum)
	up.SetDeadline(now.Add(10 * time.Second))
	if _, err := up.Write(packets.AppendConnect(nil, &fwd, props)); err != nil {
		s.client.Write(packets.AppendConnack(nil, s.version, false, reason.ServerUnavailable))
		up.Close()
		return false
	}
	ur := packets.NewServerReader(up, s.version, upstreamLimits)
	ack, err := ur.Read()
	up.SetDeadline(time.Time{})
	if err != nil || ack.Type != packets.CONNACK {
		p.Log.Error("upstream did not answer the CONNECT", "error", err)
		s.client.Write(packets.AppendConnack(nil, s.version, false, reason.ServerUnavailable))
		up.Close()
		return false
	}
	if ack.ReasonCode != 0 {
		s.client.Write(stripConnack(ack))
		up.Close()
		return false
	}
	if s.version == packets.V5 && len(ack.Props.AssignedClientID) > 0 {
		s.gc.ID = string(ack.Props.AssignedClientID)
	}
	if named {
		p.owners.record(gc.ID, who, persistent(pkt))
	}
	s.upR = ur
	s.upW = bufio.NewWriterSize(up, 32<<10)
	s.cW = bufio.NewWriterSize(s.client, 32<<10)
	// The session is registered before the client sees its CONNACK, so
	// a kick or a ban that follows the CONNACK finds it; the CONNACK goes
	// out under cMu, so a kick that races it writes its DISCONNECT after.
	s.cMu.Lock()
	added, full := p.add(s)
	err = nil
	if added {
		s.cW.Write(stripConnack(ack))
		err = s.flushOne(s.client, s.cW)
	}
	s.cMu.Unlock()
	if !added {
		code := reason.ServerUnavailable
		if full {
			code = reason.QuotaExceeded
		}
		s.client.Write(packets.AppendConnack(nil, s.version, false, code))
		up.Write(packets.AppendDisconnect(nil, s.version, 0))
		up.Close()
		return false
	}
	if err != nil {
		p.remove(s)
		up.Close()
		return false
	}
	return true
}

// stripConnack passes the upstream's CONNACK on without its Topic Alias
// Maximum.
func stripConnack(ack *packets.Packet) []byte {
	if ack.Version != packets.V5 || !ack.Props.Has(packets.PropTopicAliasMaximum) {
		return ack.Raw
	}
	props := packets.WithoutProperties(ack.Props.Raw, packets.PropTopicAliasMaximum)
	body := []byte{ack.Raw[len(ack.Raw)-ack.Remaining], byte(ack.ReasonCode)}
	body = append(packets.AppendVBI(body, len(props)), props...)
	out := packets.AppendVBI([]byte{byte(packets.CONNACK) << 4}, len(body))
	return append(out, body...)
}

// clientToUpstream relays the client's packets until either side ends.
func (s *session) clientToUpstream() {
	defer s.closeBoth(0)
	keepAlive := time.Duration(s.ka) * time.Second * 3 / 2 // [MQTT-3.1.2-24]
	for {
		if s.client.Buffered() == 0 && !s.flush() {
			return
		}
		if keepAlive > 0 {
			s.client.SetReadDeadline(time.Now().Add(keepAlive))
		}
		pkt, err := s.client.ReadPacket()
		if err != nil {
			if errors.Is(err, packets.ErrConnectTimeout) || isTimeout(err) {
				s.kickCode.CompareAndSwap(0, 0x8D) // keep alive timeout
			}
			return
		}
		switch pkt.Type {
		case packets.PUBLISH:
			if !s.publish(pkt) {
				return
			}
		case packets.SUBSCRIBE:
			if !s.subscribe(pkt) {
				return
			}
		case packets.PUBREL:
			s.mu.Lock()
			local := s.localRel[pkt.PacketID]
			delete(s.localRel, pkt.PacketID)
			s.mu.Unlock()
			if local {
				s.toClient(packets.AppendAck(s.buf[:0], packets.PUBCOMP, s.version, pkt.PacketID, 0))
				continue
			}
			if !s.toUpstream(pkt.Raw) {
				return
			}
		case packets.UNSUBSCRIBE:
			for _, sub := range pkt.Subscriptions {
				if _, had := s.filters[string(sub.Filter)]; had {
					delete(s.filters, string(sub.Filter))
					s.filterBytes -= len(sub.Filter)
				}
			}
			if !s.toUpstream(pkt.Raw) {
				return
			}
		case packets.DISCONNECT:
			if pkt.ReasonCode == reason.DisconnectWithWill && s.will != nil {
				// An end with the will, which closeBoth decides. A new
				// Session Expiry Interval in it shortens the will's wait.
				s.disc = append([]byte(nil), pkt.Raw...)
				if pkt.Props.Has(packets.PropSessionExpiry) {
					s.willDelay = min(s.willDelay, time.Duration(pkt.Props.SessionExpiry)*time.Second)
				}
				return
			}
			s.graceful.Store(true)
			s.toUpstream(pkt.Raw)
			s.flush()
			return
		default: // PUBACK, PUBREC, PUBCOMP, UNSUBSCRIBE, PINGREQ, AUTH
			if !s.toUpstream(pkt.Raw) {
				return
			}
		}
	}
}

// publish decides a client's PUBLISH and forwards or answers it. It
// reports whether the relay goes on.
func (s *session) publish(pkt *packets.Packet) bool {
	pub := &pkt.Publish
	m := mqttguard.Message{Topic: string(pub.Topic), Payload: pub.Payload, QoS: pub.QoS, Retain: pub.Retain, Subscribers: -1}
	d := s.p.Guard.Publish(context.Background(), &s.gc, &m, time.Now())
	switch d.Verdict {
	case mqttguard.Allow:
		if d.Delay > 0 {
			time.Sleep(d.Delay)
		}
		return s.toUpstream(pkt.Raw)
	case mqttguard.Disconnect:
		s.closeBoth(d.Code)
		return false
	case mqttguard.Reject:
		if s.version == packets.V5 && pub.QoS > 0 {
			t := packets.PUBACK
			if pub.QoS == 2 {
				t = packets.PUBREC // a failure code ends the flow: no PUBREL follows
			}
			s.toClient(packets.AppendAck(s.buf[:0], t, s.version, pkt.PacketID, d.RefusalIn(byte(t))))
			return true
		}
	}
	// Dropped (a shadow ban, an anomaly), or refused where the protocol
	// cannot say so: acknowledged as if accepted.
	switch pub.QoS {
	case 1:
		s.toClient(packets.AppendAck(s.buf[:0], packets.PUBACK, s.version, pkt.PacketID, 0))
	case 2:
		s.mu.Lock()
		s.localRel[pkt.PacketID] = true
		s.mu.Unlock()
		s.toClient(packets.AppendAck(s.buf[:0], packets.PUBREC, s.version, pkt.PacketID, 0))
	}
	return true
}

// subscribe decides each filter; all allowed, the SUBSCRIBE goes as it
// came; some refused, the allowed ones go under the same packet ID and
// the SUBACK is merged; none allowed, the proxy answers.
func (s *session) subscribe(pkt *packets.Packet) bool {
	subs := pkt.Subscriptions
	codes := make([]packets.ReasonCode, len(subs))
	var allowed []int
	now := time.Now()
	for i, sub := range subs {
		f := string(sub.Filter)
		d := s.p.Guard.Subscribe(context.Background(), &s.gc, f, sub.QoS, now)
		if _, had := s.filters[f]; d.Verdict == mqttguard.Allow && !had {
			if d = s.p.Guard.SubscriptionQuota(&s.gc, len(s.filters), s.filterBytes, f); d.Verdict == mqttguard.Allow {
				if s.filters == nil {
					s.filters = map[string]struct{}{}
				}
				s.filters[f] = struct{}{}
				s.filterBytes += len(f)
			}
		}
		switch d.Verdict {
		case mqttguard.Allow:
			allowed = append(allowed, i)
		case mqttguard.Disconnect:
			s.closeBoth(d.Code)
			return false
		default:
			codes[i] = d.RefusalIn(byte(packets.SUBACK))
		}
	}
	if len(allowed) == len(subs) {
		return s.toUpstream(pkt.Raw)
	}
	if len(allowed) == 0 {
		s.toClient(packets.AppendSuback(s.buf[:0], s.version, pkt.PacketID, codes))
		return true
	}
	s.mu.Lock()
	s.subs[pkt.PacketID] = &pendingSub{codes: codes, forwarded: allowed}
	s.mu.Unlock()
	return s.toUpstream(subsetSubscribe(pkt, allowed))
}

// subsetSubscribe re-encodes a SUBSCRIBE with only some of its filters.
// Each subscription runs from its Offset to the next one's (or the end).
func subsetSubscribe(pkt *packets.Packet, keep []int) []byte {
	raw, subs := pkt.Raw, pkt.Subscriptions
	head := len(raw) - pkt.Remaining // the fixed header
	body := append([]byte(nil), raw[head:subs[0].Offset]...)
	for _, i := range keep {
		end := len(raw)
		if i+1 < len(subs) {
			end = subs[i+1].Offset
		}
		body = append(body, raw[subs[i].Offset:end]...)
	}
	out := packets.AppendVBI([]byte{raw[0]}, len(body))
	return append(out, body...)
}

// upstreamToClient relays the upstream's packets until either side ends.
func (s *session) upstreamToClient() {
	defer s.closeBoth(0)
	var buf []byte
	for {
		if s.upR.Buffered() == 0 && !s.flush() {
			return
		}
		pkt, err := s.upR.Read()
		if err != nil {
			s.kickCode.CompareAndSwap(0, 0x8B) // the upstream went away
			return
		}
		switch pkt.Type {
		case packets.PUBLISH:
			pub := &pkt.Publish
			d := s.p.Guard.Deliver(&s.gc, &mqttguard.Message{Topic: string(pub.Topic), QoS: pub.QoS, Retain: pub.Retain})
			if d.Verdict == mqttguard.Allow {
				if !s.toClient(pkt.Raw) {
					return
				}
				continue
			}
			switch pub.QoS { // the client may not read it: the proxy takes it
			case 1:
				s.toUpstream(packets.AppendAck(buf[:0], packets.PUBACK, s.version, pkt.PacketID, 0))
			case 2:
				s.mu.Lock()
				s.upDropped[pkt.PacketID] = true
				s.mu.Unlock()
				s.toUpstream(packets.AppendAck(buf[:0], packets.PUBREC, s.version, pkt.PacketID, 0))
			}
		case packets.PUBREL:
			s.mu.Lock()
			mine := s.upDropped[pkt.PacketID]
			delete(s.upDropped, pkt.PacketID)
			s.mu.Unlock()
			if mine {
				s.toUpstream(packets.AppendAck(buf[:0], packets.PUBCOMP, s.version, pkt.PacketID, 0))
				continue
			}
			if !s.toClient(pkt.Raw) {
				return
			}
		case packets.SUBACK:
			s.mu.Lock()
			ps := s.subs[pkt.PacketID]
			delete(s.subs, pkt.PacketID)
			s.mu.Unlock()
			out := pkt.Raw
			if ps != nil {
				codes := ps.codes
				for j, i := range ps.forwarded {
					if j < len(pkt.ReasonCodes) {
						codes[i] = packets.ReasonCode(pkt.ReasonCodes[j])
					}
				}
				out = packets.AppendSuback(buf[:0], s.version, pkt.PacketID, codes)
			}
			if !s.toClient(out) {
				return
			}
		case packets.DISCONNECT:
			s.kickCode.CompareAndSwap(0, -1) // passed on as the upstream sent it
			s.toClient(pkt.Raw)
			s.flush()
			return
		case packets.CONNACK:
			return // a second CONNACK: the upstream is confused
		default:
			if !s.toClient(pkt.Raw) {
				return
			}
		}
	}
}

// toClient and toUpstream write, buffered. Each relay flushes both sides
// before it waits for more to read (flush): under load many packets go
// out in one system call; alone, each goes at once.
func (s *session) toClient(b []byte) bool {
	s.cMu.Lock()
	defer s.cMu.Unlock()
	_, err := s.cW.Write(b)
	return err == nil
}

func (s *session) toUpstream(b []byte) bool {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	_, err := s.upW.Write(b)
	return err == nil
}

// flush sends what is buffered, both ways.
func (s *session) flush() bool {
	s.cMu.Lock()
	cerr := s.flushOne(s.client, s.cW)
	s.cMu.Unlock()
	s.upMu.Lock()
	uerr := s.flushOne(s.up, s.upW)
	s.upMu.Unlock()
	return cerr == nil && uerr == nil
}

func (s *session) flushOne(c net.Conn, w *bufio.Writer) error {
	if w.Buffered() == 0 {
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return w.Flush()
}

// kick ends the session with a DISCONNECT code for an MQTT 5 client.
func (s *session) kick(code reason.Code) {
	s.p.Kicks.Add(1)
	s.closeBoth(code)
}

// closeBoth ends both connections, once. The client is told why (MQTT
// 5). The will: a client that did not DISCONNECT (or did with 0x04)
// left abnormally, and its will goes out — the upstream publishes it
// when its connection drops — if the Guard still allows it; if not, the
// proxy ends the upstream session with a normal DISCONNECT, which
// discards the will (endUpstream). A will with a delay is decided when
// the delay is over (will.go).
func (s *session) closeBoth(code reason.Code) {
	if code != 0 && !code.ValidIn(byte(packets.DISCONNECT)) {
		code = reason.AdministrativeAction // what a DISCONNECT may say for any refusal
	}
	s.kickCode.CompareAndSwap(0, int32(code))
	s.closeOnce.Do(func() {
		if c := s.kickCode.Load(); c > 0 && s.version == packets.V5 {
			if s.cW != nil {
				s.toClient(packets.AppendDisconnect(nil, s.version, packets.ReasonCode(c)))
				s.flush()
			} else {
				s.client.Write(packets.AppendDisconnect(nil, s.version, packets.ReasonCode(c)))
			}
		}
		s.client.Close()
		if s.up == nil {
			return
		}
		switch {
		case s.graceful.Load() || s.will == nil:
			s.up.Close()
		case s.willDelay > 0 && s.p.wills.room(s.gc.Username):
			s.holdWill = true
			s.up.SetReadDeadline(time.Now()) // ends the upstream relay; heldWills takes over
		default:
			s.p.endUpstream(s, time.Now())
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// upReader reads the upstream's packets.
