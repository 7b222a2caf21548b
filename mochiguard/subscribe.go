package mochiguard

import (
	"context"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
)

// Subscriptions are decided in OnSubscribe, filter by filter: the Guard
// (validity, trust, the ACL where subscriptions are checked, plugins)
// and the client's subscription quota (what it holds already, as mochi
// keeps it). mochi then asks OnACLCheck for each filter, which answers
// from these decisions, and writes its SUBACK with 0x87 for each refusal
// (0x8F for a filter the hook blanked as invalid); OnPacketEncode puts
// the Guard's own code there (0x97 past the quota, a plugin's code).

// subacks are the refusal codes of the SUBSCRIBEs being answered, by
// packet identifier, for the SUBACK's encoding.
type subacks struct {
	mu    sync.Mutex
	codes map[uint16][]byte
}

func (h *Hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	s := h.session(cl)
	if s == nil {
		return pk
	}
	now := time.Now()
	held := cl.State.Subscriptions.GetAll()
	n, size := len(held), 0
	for f := range held {
		size += len(f)
	}
	// A hook added since the CONNECT could grant what the Guard refuses
	// (stacking.go): then nothing is granted.
	stacked := h.Check() != nil
	decided := make(map[string]bool, len(pk.Filters))
	codes := make([]byte, len(pk.Filters))
	filters := append(packets.Subscriptions(nil), pk.Filters...)
	for i, sub := range filters {
		d := h.g.Subscribe(context.Background(), &s.c, sub.Filter, sub.Qos, now)
		if _, had := held[sub.Filter]; d.Verdict == mqttguard.Allow && !had {
			if d = h.g.SubscriptionQuota(&s.c, n, size, sub.Filter); d.Verdict == mqttguard.Allow {
				n, size = n+1, size+len(sub.Filter)
				held[sub.Filter] = sub // a filter twice in one SUBSCRIBE counts once
			}
		}
		switch {
		case stacked:
			d = mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.NotAuthorized}
			filters[i].Filter = "" // not subscribed, whatever another hook says
		case d.Verdict == mqttguard.Disconnect:
			h.kick(cl, d.Code)
		case d.Cause.Component == mqttguard.ByTopic && d.Code == reason.TopicFilterInvalid:
			filters[i].Filter = "" // mochi answers an invalid filter with 0x8F
		}
		decided[sub.Filter] = d.Verdict == mqttguard.Allow
		if d.Verdict != mqttguard.Allow {
			codes[i] = byte(d.RefusalIn(packets.Suback))
		}
	}
	pk.Filters = filters
	s.subscribing.Store(&decided)
	s.subacks.mu.Lock()
	if s.subacks.codes == nil {
		s.subacks.codes = map[uint16][]byte{}
	}
	s.subacks.codes[pk.PacketID] = codes
	s.subacks.mu.Unlock()
	return pk
}

func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if s := h.session(cl); s != nil {
		s.subscribing.Store(nil)
	}
}

// suback puts the Guard's refusal codes in a SUBACK mochi encodes.
func (h *Hook) suback(cl *mqtt.Client, pk *packets.Packet) {
	s := h.session(cl)
	if s == nil {
		return
	}
	s.subacks.mu.Lock()
	codes := s.subacks.codes[pk.PacketID]
	delete(s.subacks.codes, pk.PacketID)
	s.subacks.mu.Unlock()
	if len(codes) != len(pk.ReasonCodes) {
		return
	}
	for i, c := range codes {
		if c >= 0x80 && pk.ReasonCodes[i] >= 0x80 {
			if cl.Properties.ProtocolVersion < 5 {
				c = 0x80 // MQTT 3.1.1 has one failure code
			}
			pk.ReasonCodes[i] = c
		}
	}
}
