package mochibroker

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/trust"
)

// droppedWill is where a will the Guard refused goes: mochi sends wills
// whatever OnWill says (an error is only logged), so the hook redirects
// it to a topic whose every delivery OnACLCheck refuses.
const droppedWill = "$mqttguard/dropped-will"

// guardHook maps mochi-mqtt's hooks onto the Guard's decision points,
// minding mochi's semantics:
//
//   - Authentication and ACL hooks are OR-combined across hooks, so no
//     other hook may answer them: the broker registers only this one.
//   - OnACLCheck cannot tell a SUBSCRIBE from a delivery: subscriptions
//     are decided in OnSubscribe and answered from there.
//   - An OnPublish error sends no acknowledgement for ErrRejectPacket and
//     a PUBACK (even for QoS 2) for a reason code, and a QoS 0 or MQTT
//     3.1.1 publish with a code is delivered anyway: the hook writes the
//     right PUBACK/PUBREC itself, and drops with CodeSuccessIgnore (acked,
//     not forwarded).
//   - An OnConnect error sends no CONNACK, and mochi maps few v5 codes to
//     v3: the hook sends the CONNACK itself.
//   - Wills are published without any check (mochi #503): OnWill asks
//     the Guard again.
//   - A server has no DISCONNECT in MQTT 3.1.1: v3 clients are closed.
type guardHook struct {
	mqtt.HookBase
	g   *mqttguard.Guard
	srv *mqtt.Server
	// countFanout: the topic limit is on, and it prices a message by its
	// audience.
	countFanout bool

	sessions sync.Map // *mqtt.Client → *session
	kicks    *atomic.Uint64
	fanout   fanoutCache
}

// fanoutCache remembers how many subscribers a topic has, for a second:
// counting them walks mochi's topic index and allocates four maps, as
// much work as delivering the message, and the fan-out cost only needs
// the order of magnitude (1–10, 11–100, …). Every PUBLISH reads it, so
// reads take no lock (sync.Map); a topic is written once a second.
type fanoutCache struct {
	m sync.Map     // topic → fanoutEntry
	n atomic.Int64 // entries, roughly: bounds the map
}

type fanoutEntry struct {
	n  int
	at time.Time
}

const fanoutCacheMax = 1 << 16

func (f *fanoutCache) subscribers(srv *mqtt.Server, topic string, now time.Time) int {
	if v, ok := f.m.Load(topic); ok {
		if e := v.(fanoutEntry); now.Sub(e.at) < time.Second {
			return e.n
		}
	}
	subs := srv.Topics.Subscribers(topic)
	n := len(subs.Subscriptions) + len(subs.Shared)
	if _, loaded := f.m.Swap(topic, fanoutEntry{n: n, at: now}); !loaded && f.n.Add(1) > fanoutCacheMax {
		f.m.Clear() // a flood of topics: start over rather than grow
		f.n.Store(0)
	}
	return n
}

type session struct {
	c    mqttguard.Client
	mu   sync.Mutex
	subs map[string]mqttguard.Decision // the SUBSCRIBE being processed
}

func (h *guardHook) ID() string { return "mqttguard" }

func (h *guardHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnSubscribed,
		mqtt.OnPublish, mqtt.OnWill, mqtt.OnDisconnect:
		return true
	}
	return false
}

func (h *guardHook) session(cl *mqtt.Client) *session {
	if s, ok := h.sessions.Load(cl); ok {
		return s.(*session)
	}
	return nil
}

func (h *guardHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	now := time.Now()
	req := &mqttguard.ConnectRequest{
		ClientID:        cl.ID,
		Username:        string(pk.Connect.Username),
		Password:        pk.Connect.Password,
		HasPassword:     pk.Connect.PasswordFlag,
		Listener:        cl.Net.Listener,
		ProtocolVersion: pk.ProtocolVersion,
		CleanStart:      pk.Connect.Clean,
		KeepAlive:       pk.Connect.Keepalive,
	}
	req.Addr, _ = netip.ParseAddrPort(cl.Net.Remote)
	if tc, ok := cl.Net.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		if cs := tc.ConnectionState(); cs.HandshakeComplete {
			req.TLS = &cs
		}
	}
	if pk.Connect.WillFlag {
		req.Will = &mqttguard.Message{Topic: pk.Connect.WillTopic, Payload: pk.Connect.WillPayload,
			QoS: pk.Connect.WillQos, Retain: pk.Connect.WillRetain}
	}
	c, d := h.g.Connect(context.Background(), req, now)
	if d.Verdict != mqttguard.Allow {
		code := d.Code
		if code == 0 {
			code = 0x87
		}
		h.connack(cl, code, d.Cause.String())
		return packets.Code{Code: code, Reason: d.Cause.Component.String()}
	}
	h.sessions.Store(cl, &session{c: c})
	return nil
}

// connack refuses a connection with the right code for its version.
func (h *guardHook) connack(cl *mqtt.Client, code byte, why string) {
	if cl.Properties.ProtocolVersion == 5 {
		h.srv.SendConnack(cl, packets.Code{Code: code, Reason: why}, false, nil)
		return
	}
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack},
		ReasonCode: mqttguard.V3Code(code)})
}

func (h *guardHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.session(cl) != nil // OnConnect decided
}

func (h *guardHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	s := h.session(cl)
	switch {
	case s == nil:
		return false
	case write:
		return true // decided in OnPublish, which can answer with the right code
	case topic == droppedWill:
		return false
	}
	s.mu.Lock()
	d, pending := s.subs[topic]
	s.mu.Unlock()
	if pending {
		return d.Verdict == mqttguard.Allow
	}
	if strings.ContainsAny(topic, "+#") {
		return false // a filter OnSubscribe did not see
	}
	return h.g.Deliver(&s.c, &mqttguard.Message{Topic: topic}).Verdict == mqttguard.Allow
}

func (h *guardHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	s := h.session(cl)
	if s == nil {
		return pk
	}
	now := time.Now()
	decided := make(map[string]mqttguard.Decision, len(pk.Filters))
	filters := append(packets.Subscriptions(nil), pk.Filters...)
	for i, sub := range filters {
		d := h.g.Subscribe(context.Background(), &s.c, sub.Filter, sub.Qos, now)
		switch {
		case d.Verdict == mqttguard.Disconnect:
			h.kick(cl, d.Code)
		case d.Cause.Component == mqttguard.ByTopic:
			filters[i].Filter = "" // mochi answers an invalid filter with 0x8F
		}
		decided[sub.Filter] = d
	}
	pk.Filters = filters
	s.mu.Lock()
	s.subs = decided
	s.mu.Unlock()
	return pk
}

func (h *guardHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if s := h.session(cl); s != nil {
		s.mu.Lock()
		s.subs = nil
		s.mu.Unlock()
	}
}

func (h *guardHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	s := h.session(cl)
	if s == nil {
		return pk, packets.ErrRejectPacket
	}
	now := time.Now()
	m := mqttguard.Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
		Retain: pk.FixedHeader.Retain, Subscribers: -1}
	if h.countFanout && h.g.Mode() == trust.EnforceFull {
		m.Subscribers = h.fanout.subscribers(h.srv, pk.TopicName, now)
	}
	d := h.g.Publish(context.Background(), &s.c, &m, now)
	switch d.Verdict {
	case mqttguard.Allow:
		if d.Delay > 0 {
			time.Sleep(d.Delay) // holds this client's reading: back-pressure for a throttled client
		}
		return pk, nil
	case mqttguard.Reject:
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			ack := packets.Puback
			if pk.FixedHeader.Qos == 2 {
				ack = packets.Pubrec
			}
			cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: ack}, PacketID: pk.PacketID,
				ReasonCode: d.Code, Properties: packets.Properties{ReasonString: d.Cause.Component.String()}})
			return pk, packets.ErrRejectPacket
		}
		return pk, packets.CodeSuccessIgnore // QoS 0 or MQTT 3.1.1: dropped
	case mqttguard.Drop:
		return pk, packets.CodeSuccessIgnore // acknowledged as usual, delivered to no one
	}
	h.kick(cl, d.Code)
	return pk, packets.ErrRejectPacket
}

func (h *guardHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	s := h.session(cl)
	if s == nil {
		return mqtt.Will{TopicName: droppedWill}, nil
	}
	d := h.g.Disconnect(&s.c, &mqttguard.Message{Topic: will.TopicName, Payload: will.Payload,
		QoS: will.Qos, Retain: will.Retain}, time.Now())
	if d.Verdict != mqttguard.Allow {
		return mqtt.Will{TopicName: droppedWill}, nil
	}
	return will, nil
}

func (h *guardHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.sessions.Delete(cl)
}

// kick closes a client's connection: DISCONNECT with the code for MQTT
// 5, a plain close for 3.1.1, which has no server DISCONNECT.
func (h *guardHook) kick(cl *mqtt.Client, code byte) {
	h.kicks.Add(1)
	c := packets.Code{Code: code, Reason: "mqttguard"}
	if cl.Properties.ProtocolVersion == 5 {
		h.srv.DisconnectClient(cl, c)
		return
	}
	cl.Stop(c)
}

// KickBan kicks every connected client a ban matches.
func (h *guardHook) KickBan(b trust.Ban) int {
	n := 0
	h.sessions.Range(func(k, v any) bool {
		cl, s := k.(*mqtt.Client), v.(*session)
		match := false
		switch b.Kind {
		case trust.BanClientID:
			match = s.c.ID == b.Value
		case trust.BanUsername:
			match = s.c.Username == b.Value
		case trust.BanIP:
			a, err := netip.ParseAddr(b.Value)
			match = err == nil && a == s.c.Addr
		case trust.BanCIDR:
			p, err := netip.ParsePrefix(b.Value)
			match = err == nil && p.Contains(s.c.Addr)
		}
		if match {
			h.kick(cl, 0x8A)
			n++
		}
		return true
	})
	return n
}

// Kick kicks the clients with a client ID.
func (h *guardHook) Kick(id string, code byte) int {
	n := 0
	h.sessions.Range(func(k, v any) bool {
		if v.(*session).c.ID == id {
			h.kick(k.(*mqtt.Client), code)
			n++
		}
		return true
	})
	return n
}

// Clients lists the connected clients.
func (h *guardHook) Clients() []mqttguard.Client {
	var out []mqttguard.Client
	h.sessions.Range(func(_, v any) bool {
		out = append(out, v.(*session).c)
		return true
	})
	return out
}
