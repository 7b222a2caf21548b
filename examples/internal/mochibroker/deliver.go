package mochibroker

import (
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
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
	if pending := s.subscribing.Load(); pending != nil {
		if allowed, ok := (*pending)[topic]; ok {
			return allowed
		}
	}
	return h.g.MayReceive(&s.c, topic).Verdict == mqttguard.Allow
}

func (h *guardHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if !cl.Net.Inline && !h.mayDeliver(cl, &pk, time.Now()) {
			return h.withdraw(cl, &pk)
		}
	case packets.Connack:
		if pk.ReasonCode == packets.CodeSuccess.Code {
			h.atConnack(cl, &pk)
			pk.Properties.TopicAliasMaximum = h.srv.Options.Capabilities.TopicAliasMaximum
		}
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		cleanAck(&pk)
	}
	return pk
}

// mayDeliver is the decision on a PUBLISH about to be written to cl.
func (h *guardHook) mayDeliver(cl *mqtt.Client, pk *packets.Packet, now time.Time) bool {
	s := h.session(cl)
	if s == nil || pk.TopicName == "" || pk.TopicName == droppedWill {
		return false // no topic: an alias, which the hook switched off
	}
	if pk.Expiry > 0 && now.Unix() > pk.Expiry {
		return false // [MQTT-3.3.2-5]
	}
	m := mqttguard.Message{Topic: pk.TopicName, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain}
	return h.g.Deliver(&s.c, &m).Verdict == mqttguard.Allow
}

// withdraw takes a refused PUBLISH out of flight and returns what mochi
// writes instead: a packet of no type, which it refuses to encode.
func (h *guardHook) withdraw(cl *mqtt.Client, pk *packets.Packet) packets.Packet {
	if pk.FixedHeader.Qos > 0 && cl.State.Inflight.Delete(pk.PacketID) {
		cl.State.Inflight.IncreaseSendQuota()
		atomic.AddInt64(&h.srv.Info.Inflight, -1)
	}
	return packets.Packet{}
}
