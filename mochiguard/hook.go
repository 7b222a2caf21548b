package mochiguard

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
)

// droppedWill is where a will the Guard refused goes: mochi sends wills
// whatever OnWill says (an error is only logged), so the hook redirects
// it to a topic whose every delivery OnACLCheck refuses.
const droppedWill = "$mqttguard/dropped-will"

// Hook is a mochi-mqtt hook that maps mochi's hooks onto the Guard's
// decision points, minding mochi's semantics:
//
//   - Authentication and ACL hooks are OR-combined across hooks, so no
//     other hook may answer them: the broker registers only this one.
//   - OnACLCheck cannot tell a SUBSCRIBE from a delivery, and for a
//     delivery it is asked before the QoS and retain flag are settled:
//     subscriptions are decided in OnSubscribe, deliveries are filtered
//     in OnACLCheck (Guard.MayReceive) and decided exactly as they are
//     written (OnPacketEncode, Guard.Deliver). Every PUBLISH mochi sends
//     passes that gate: live, retained, queued, resent. See deliver.go.
//   - Sessions outlive connections and mochi hands them to whoever
//     connects with the client ID: see session.go for who may resume
//     one, and how queued messages come back.
//   - An OnPublish error sends no acknowledgement for ErrRejectPacket and
//     a PUBACK (even for QoS 2) for a reason code, and a QoS 0 or MQTT
//     3.1.1 publish with a code is delivered anyway: the hook writes the
//     right PUBACK/PUBREC itself, and drops with CodeSuccessIgnore (acked,
//     not forwarded).
//   - An OnConnect error sends no CONNACK, and mochi maps few v5 codes to
//     v3: the hook sends the CONNACK itself.
//   - Wills are published without any check (mochi #503), and delayed
//     ones without asking again when they go out: see will.go.
//   - A server has no DISCONNECT in MQTT 3.1.1: v3 clients are closed.
type Hook struct {
	mqtt.HookBase
	g   *mqttguard.Guard
	srv *mqtt.Server
	// countFanout: the topic limit is on, and it prices a message by its
	// audience.
	countFanout bool
	// deliveryWait: Options.DeliveryWait, 0 for never (pace.go).
	deliveryWait time.Duration
	budget       *ratelimit.Limiter // waits that end congested (pace.go)

	sessions sync.Map // *mqtt.Client → *session, connected or not
	kicks    atomic.Uint64
	fanout   fanoutCache
	wills    delayedWills
	accounts accounts

	stackingLogged atomic.Bool // Check failed and said so
	hooksOnce      sync.Once   // Check: the server's hook list, found once
	hooks          *mqtt.Hooks
	hooksErr       error

	inlineOnce sync.Once
	inline     *mqtt.Client // publishes the wills the hook delays
}

// Options bound what one account (a username; anonymous clients share
// one) may make the broker keep. The zero value is the defaults.
type Options struct {
	// SessionsPerUser bounds the sessions, connected or not, an account
	// keeps (default 100; -1: no bound). A CONNECT past it is refused
	// with 0x97, quota exceeded.
	SessionsPerUser int
	// QueuedBytesPerUser bounds the bytes of the messages held for an
	// account's sessions (default 64 MiB; -1: no bound). Past it,
	// deliveries to that account are dropped until it reads what it
	// has, as mosquitto drops past max_queued_bytes.
	QueuedBytesPerUser int64
	// DeliveryWait bounds how long a publisher waits for a subscriber
	// whose outbound queue is three quarters full (default 50ms; -1:
	// never wait, mochi's behaviour: drop what does not fit). A
	// subscriber that does not drain in that time is not waited for
	// again until it has. See pace.go.
	DeliveryWait time.Duration
}

func (o Options) quotas() quotas {
	q := quotas{SessionsPerUser: o.SessionsPerUser, QueuedBytesPerUser: o.QueuedBytesPerUser}
	switch q.SessionsPerUser {
	case 0:
		q.SessionsPerUser = 100
	case -1:
		q.SessionsPerUser = 0
	}
	switch q.QueuedBytesPerUser {
	case 0:
		q.QueuedBytesPerUser = 64 << 20
	case -1:
		q.QueuedBytesPerUser = 0
	}
	return q
}

func (o Options) deliveryWait() time.Duration {
	switch {
	case o.DeliveryWait == 0:
		return 50 * time.Millisecond
	case o.DeliveryWait < 0:
		return 0
	}
	return o.DeliveryWait
}

// New returns the hook that makes g decide for srv. Add it with
// srv.AddHook(hook, nil). New sets the server capabilities the hook's
// corrections rely on (see the package doc): acknowledgements carry no
// inherited properties, and a message published without an expiry
// never expires.
//
// mochi OR-combines the answers of every hook to OnConnectAuthenticate
// and OnACLCheck, so another hook that allows (mochi's auth.AllowHook,
// say) would allow what the Guard refused — if the Guard decided there.
// It does not: it refuses a CONNECT in OnConnect, a PUBLISH in
// OnPublish, a subscription's SUBACK and every delivery as mochi writes
// it (OnPacketEncode), where mochi takes the first refusal of any hook —
// so add this hook first, and no other that answers authentication or
// ACL checks: Check says whether that holds, and the hook refuses every
// client while it does not. Then other hooks can add refusals, never
// remove the Guard's.
func New(g *mqttguard.Guard, srv *mqtt.Server, o Options) *Hook {
	if caps := srv.Options.Capabilities; caps != nil {
		caps.Compatibilities.NoInheritedPropertiesOnAck = true
		caps.MaximumMessageExpiryInterval = 0
	}
	h := &Hook{g: g, srv: srv, accounts: accounts{q: o.quotas()}, deliveryWait: o.deliveryWait(),
		countFanout: g.Config().RateLimits.MessagesPerTopic.PerSecond > 0}
	if h.deliveryWait > 0 {
		h.budget = newWaitBudget(h.deliveryWait)
	}
	h.wills.h = h
	return h
}

// ID names the hook to mochi.
func (h *Hook) ID() string { return "mqttguard" }

// Kicks counts the clients the hook disconnected (bans, trust
// escalations, Kick).
func (h *Hook) Kicks() uint64 { return h.kicks.Load() }

func (h *Hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe, mqtt.OnSubscribed,
		mqtt.OnPublish, mqtt.OnWill, mqtt.OnDisconnect, mqtt.OnPacketEncode, mqtt.OnPacketRead, mqtt.OnPacketSent,
		mqtt.OnClientExpired, mqtt.OnSelectSubscribers, mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped:
		return true
	}
	return false
}

// Stop is mochi's: the server is closing. Pending delayed wills are
// not sent (mochi does not send its own either).
func (h *Hook) Stop() error {
	h.wills.close()
	return nil
}

func (h *Hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if err := h.Check(); err != nil {
		// Fail closed: another hook could admit or deliver what the
		// Guard refuses (stacking.go).
		if h.stackingLogged.CompareAndSwap(false, true) {
			h.srv.Log.Error("mqttguard refuses every client", "error", err)
		}
		h.connack(cl, reason.ServerUnavailable)
		return packets.Code{Code: byte(reason.ServerUnavailable), Reason: "misconfigured hooks"}
	}
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
		AuthMethod:      pk.Properties.AuthenticationMethod,
		AuthData:        pk.Properties.AuthenticationData,
	}
	req.Addr, _ = netip.ParseAddrPort(cl.Net.Remote)
	if tc, ok := cl.Net.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		if cs := tc.ConnectionState(); cs.HandshakeComplete {
			req.Certificate = mqttguard.VerifiedCertificate(&cs)
		}
	}
	if pk.Connect.WillFlag {
		req.Will = &mqttguard.Message{Topic: pk.Connect.WillTopic, Payload: pk.Connect.WillPayload,
			QoS: pk.Connect.WillQos, Retain: pk.Connect.WillRetain}
	}
	c, d := h.g.Connect(context.Background(), req, now)
	if d.Verdict != mqttguard.Allow {
		code := d.RefusalIn(packets.Connack)
		h.connack(cl, code)
		return packets.Code{Code: byte(code), Reason: d.Cause.Component.String()}
	}
	if !h.accounts.mayOpen(c.Username, h.replaces(cl.ID, c)) {
		h.connack(cl, 0x97)
		return packets.Code{Code: 0x97, Reason: "sessions per user"}
	}
	// mochi would send this client topic aliases of its own choosing
	// and, after a reconnect, resend a queued message by an alias the new
	// connection never learnt. Every delivery carries its topic.
	cl.Properties.Props.TopicAliasMaximum = 0
	h.begin(cl, c, pk.Connect.Clean)
	return nil
}

// replaces reports whether a connection of c's with client ID id takes
// over a session its username already has.
func (h *Hook) replaces(id string, c mqttguard.Client) bool {
	prev, ok := h.srv.Clients.Get(id)
	if !ok {
		return false
	}
	ps := h.session(prev)
	return ps != nil && ps.c.Username == c.Username
}

// connack refuses a connection with the right code for its version,
// and nothing else: no properties (mochi's SendConnack adds a Receive
// Maximum and the reason as a Reason String, which would tell a client
// that has not authenticated which rule or ban refused it).
func (h *Hook) connack(cl *mqtt.Client, code reason.Code) {
	rc := byte(code)
	if cl.Properties.ProtocolVersion != 5 {
		rc = code.V3Connack()
	}
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: rc})
}

func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.session(cl) != nil // OnConnect decided
}

func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the broker's own: a delayed will the Guard has just allowed
	}
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
				ReasonCode: byte(d.RefusalIn(ack)), Properties: packets.Properties{ReasonString: d.Cause.Component.String()}})
			return pk, packets.ErrRejectPacket
		}
		return pk, packets.CodeSuccessIgnore // QoS 0 or MQTT 3.1.1: dropped
	case mqttguard.Drop:
		return pk, packets.CodeSuccessIgnore // acknowledged as usual, delivered to no one
	}
	h.kick(cl, d.Code)
	return pk, packets.ErrRejectPacket
}

// kick closes a client's connection: DISCONNECT with the code for MQTT
// 5, a plain close for 3.1.1, which has no server DISCONNECT.
func (h *Hook) kick(cl *mqtt.Client, code reason.Code) {
	if !code.ValidIn(14) || !code.IsError() {
		code = reason.AdministrativeAction // what a DISCONNECT may say for any refusal
	}
	h.kicks.Add(1)
	c := packets.Code{Code: byte(code), Reason: "mqttguard"}
	if cl.Properties.ProtocolVersion == 5 {
		h.srv.DisconnectClient(cl, c)
		return
	}
	cl.Stop(c)
}
