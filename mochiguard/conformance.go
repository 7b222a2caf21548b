package mochiguard

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	guardpackets "github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
)

// Where mochi-mqtt v2.7.9 leaves MQTT, and the hook puts it back.
//
//   - Acknowledgements: mochi answers a QoS 1 PUBLISH with reason code
//     0x01 (granted QoS 1: a SUBACK code, not a PUBACK one,
//     [MQTT-3.4.2-1]) and copies the publisher's properties onto its
//     PUBACK and PUBREC; strict clients drop the connection. The broker
//     turns the copying off (NoInheritedPropertiesOnAck) and cleanAck
//     keeps every code valid for its packet.
//   - Acknowledgement types: mochi answers a PUBREC for a QoS 1 delivery
//     with a PUBREL, and lets a PUBACK end a QoS 2 delivery. Both are
//     protocol errors: DISCONNECT 0x82 (MQTT 5) and close, in
//     OnPacketRead.
//   - Topic aliases: mochi accepts aliases up to its maximum without
//     advertising one (a client must then use none); the CONNACK says
//     the maximum (OnPacketEncode), and the validator in front enforces
//     it (0x94) and bounds what aliases may hold.
//   - Message expiry and outbound aliases: the server's capabilities
//     (examples/internal/mochibroker) and OnConnect.

// cleanAck keeps a PUBACK's, PUBREC's, PUBREL's or PUBCOMP's reason
// code one its packet may carry, and its properties to a reason string.
func cleanAck(pk *packets.Packet) {
	if code := reason.Code(pk.ReasonCode); !code.ValidIn(pk.FixedHeader.Type) {
		if code.IsError() {
			pk.ReasonCode = byte(reason.UnspecifiedError)
		} else {
			pk.ReasonCode = 0
		}
	}
	pk.Properties = packets.Properties{ReasonString: pk.Properties.ReasonString}
}

// OnPacketRead refuses an acknowledgement of the wrong kind for the
// delivery it names, and frees the flow-control slot (flow.go) of one
// of the right kind.
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	var want byte
	switch pk.FixedHeader.Type {
	case packets.Puback:
		want = 1
	case packets.Pubrec:
		want = 2
	case packets.Pubcomp:
		h.acked(cl, &pk)
		return pk, nil
	default:
		return pk, nil
	}
	out, ok := cl.State.Inflight.Get(pk.PacketID)
	if !ok || out.FixedHeader.Type != packets.Publish || out.FixedHeader.Qos == want {
		h.acked(cl, &pk)
		return pk, nil // unknown identifiers mochi ignores, as MQTT lets it
	}
	if cl.Properties.ProtocolVersion == 5 {
		// The validator's encoding (e0 01 82), as it ends connections
		// itself; its Conn writes whole packets, so this cannot land
		// inside one of mochi's.
		cl.Net.Conn.Write(guardpackets.AppendDisconnect(nil, guardpackets.V5, reason.ProtocolError))
	}
	return pk, packets.ErrRejectPacket
}
