package mochiguard

import (
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
)

// Deliveries are decided twice, because mochi asks too early to ask
// once.
//
// OnACLCheck (write false) is asked for a subscription filter, from
// inside a SUBSCRIBE, and for each delivery, from the publisher's
// goroutine, before mochi settles the delivery's QoS (the lower of the
// published and the granted one) and retain flag, and with nothing that
// tells the two apart. A filter of the SUBSCRIBE being processed is
// answered with that SUBSCRIBE's decision; anything else is a topic, and
// is filtered with Guard.MayReceive: a topic the subscriber may never
// read goes no further (not into its queue, not into its packet
// identifiers). A delivery whose topic is spelt like a filter of a
// concurrent SUBSCRIBE gets that filter's answer here — which is why
// this is not the decision.
//
// The decision is taken where every PUBLISH to a client passes, whatever
// path it came by (live, retained, queued while offline, resent after a
// reconnect, a will): as mochi encodes it (OnPacketEncode), with its
// real QoS and retain flag and the identity of the connection it is
// about to be written to (Guard.Deliver). A refused or expired message
// is not written: the hook hands mochi a packet it cannot encode, so
// nothing reaches the connection, and takes it out of flight.

func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	s := h.session(cl)
	switch {
	case s == nil:
		return false
	case write:
		return true // decided in OnPublish, which can answer with the right code
	case topic == droppedWill:
		return false
	}
	if pending := s.subscribing.Load(); pending != nil {
		if allowed, ok := (*pending)[topic]; ok {
			return allowed
		}
	}
	if h.accounts.full(s.c.Username) {
		return false // the account holds its quota of queued messages (quota.go)
	}
	if h.g.MayReceive(&s.c, topic).Verdict != mqttguard.Allow {
		return false
	}
	h.pace(cl, s)
	return true
}

// OnPacketSent notes that a connection's CONNACK is out, and that its
// writer is out of a PUBLISH's write (pace.go).
func (h *Hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		if s := h.session(cl); s != nil {
			s.pacing.inWrite.Store(false)
		}
		return
	}
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == packets.CodeSuccess.Code {
		if s := h.session(cl); s != nil {
			s.connackOnce.Do(func() { close(s.connacked) })
		}
	}
}

func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if cl.Net.Inline {
			break
		}
		s := h.session(cl)
		if s != nil {
			h.written(cl, s)
		}
		if s == nil || !h.mayDeliver(cl, s, &pk, time.Now()) {
			return h.withdraw(cl, &pk)
		}
		s.connackFirst()
		if pk.FixedHeader.Qos > 0 && !pk.FixedHeader.Dup {
			s.flow.take(cl)
		}
	case packets.Connack:
		if pk.ReasonCode == packets.CodeSuccess.Code {
			h.atConnack(cl, &pk)
			pk.Properties.TopicAliasMaximum = h.srv.Options.Capabilities.TopicAliasMaximum
		} else if cl.Properties.ProtocolVersion < 5 && pk.ReasonCode > 5 {
			// mochi's own refusals (a CONNECT it cannot take) carry MQTT
			// 5 codes; 3.1.1 has six return codes.
			pk.ReasonCode = reason.Code(pk.ReasonCode).V3Connack()
		}
	case packets.Disconnect:
		if cl.Properties.ProtocolVersion < 5 {
			return packets.Packet{} // 3.1.1 has no server DISCONNECT: the connection just closes
		}
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		cleanAck(&pk)
	case packets.Suback:
		h.suback(cl, &pk)
	}
	return pk
}

// mayDeliver is the decision on a PUBLISH about to be written to cl.
func (h *Hook) mayDeliver(cl *mqtt.Client, s *session, pk *packets.Packet, now time.Time) bool {
	if pk.TopicName == "" || pk.TopicName == droppedWill {
		return false // no topic: an alias, which the hook switched off
	}
	if pk.FixedHeader.Dup && s.wasResumed(pk.PacketID) {
		return true // decided when the session was resumed
	}
	if pk.Expiry > 0 && now.Unix() > pk.Expiry {
		return false // [MQTT-3.3.2-5]
	}
	m := mqttguard.Message{Topic: pk.TopicName, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain}
	return h.g.Deliver(&s.c, &m).Verdict == mqttguard.Allow
}

// withdraw takes a refused PUBLISH out of flight and returns what mochi
// writes instead: a packet of no type, which it refuses to encode.
func (h *Hook) withdraw(cl *mqtt.Client, pk *packets.Packet) packets.Packet {
	if pk.FixedHeader.Qos > 0 && cl.State.Inflight.Delete(pk.PacketID) {
		atomic.AddInt64(&h.srv.Info.Inflight, -1)
		if s := h.session(cl); s != nil {
			h.releaseMessage(s, pk.PacketID)
		}
	}
	return packets.Packet{}
}
