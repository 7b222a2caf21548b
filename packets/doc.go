// Package packets reads MQTT 3.1, 3.1.1 and 5.0 control packets strictly,
// so that malformed and oversized input stops at the door instead of
// reaching a broker's decoder.
//
// Brokers have crashed on malformed packets for years: mosquitto on a
// huge remaining length (CVE-2017-7651), on a CONNACK sent by a client
// (CVE-2021-28166) and on allocation for a first packet that was not
// CONNECT (CVE-2023-0809); mochi-mqtt v2.7.9 panics on a truncated MQTT
// 5.0 SUBSCRIBE and takes the process down, and allocates whatever
// remaining length a client claims before it has authenticated. A Reader
// in front of the broker sees every byte first.
//
// # Reading
//
// Reader reads one packet at a time from a connection. It refuses a
// packet larger than Limits.MaxPacketSize from its fixed header, before
// allocating or reading the body, and the first packet (which arrives
// before authentication) against the smaller Limits.MaxConnectSize; it
// reuses one buffer, so reading a packet allocates nothing. Parse decodes
// a packet a caller already holds.
//
// A Packet is a view: its fields are decoded without copying, as slices
// of the packet's bytes, and hold what a security layer needs — CONNECT's
// protocol, flags, client ID, will, username and password; PUBLISH's
// topic, QoS, flags, packet identifier, properties and payload;
// SUBSCRIBE's and UNSUBSCRIBE's filters with their options; the reason
// codes of acknowledgements, DISCONNECT and AUTH.
//
// # Serving
//
// Listen wraps a net.Listener so that a broker reads only valid packets
// (see Listener), closes a connection whose CONNECT does not arrive
// within ConnectTimeout, and caps the connections the server has not
// accepted yet — per client address and in all, the oldest closed first
// (pending.go has the model) — so that sockets opened by someone who has
// proven nothing cost a bounded amount. A Reader allocates nothing until
// bytes arrive and then only for what arrived: a pending connection costs
// this package about 1.4 KiB of heap.
//
// # Validation
//
// Every rule of the specification a receiver can check is checked, and a
// failure is an *Error carrying the MQTT 5.0 reason code to disconnect
// with (0x81 malformed packet, 0x82 protocol error, 0x95 packet too
// large, 0x94 topic alias invalid, 0x99 payload format invalid, 0x84 and
// 0x85 for CONNECT) and the conformance statement it breaks, such as
// [MQTT-3.3.1-4]:
//
//   - the fixed header: reserved flag bits per type, QoS 3, DUP on QoS 0,
//     a remaining length of at most four bytes in its shortest form, and
//     exactly as many bytes as it says;
//   - strings: well-formed UTF-8 without U+0000, and (by default) without
//     control characters or non-characters; every length bounded by the
//     packet (or property section) around it;
//   - topic names and filters: the same rules as package acl (an
//     internal package both use), plus length and level limits;
//   - CONNECT: protocol name and level, the reserved flag, will flags
//     consistent with the will, username and password flags consistent
//     with their fields, a client identifier within bounds;
//   - packet identifiers non-zero where required, SUBSCRIBE and
//     UNSUBSCRIBE with at least one filter, subscription options in range,
//     No Local never on a shared subscription;
//   - MQTT 5.0 properties: known, allowed for the packet type, not
//     repeated (except User Property, and Subscription Identifier in a
//     PUBLISH), values in range, Topic Alias not 0 and within the
//     advertised maximum;
//   - across packets (Session): CONNECT first and once, no packet only a
//     server sends, no Subscription Identifier on a client's PUBLISH.
//
// Limits adds bounds the specification does not have: packet size,
// topic length and levels, client ID length, filters per SUBSCRIBE,
// properties per packet.
//
// # Writing
//
// AppendConnack, AppendAck, AppendSuback, AppendUnsuback,
// AppendDisconnect and AppendPingresp write the packets a broker or a
// proxy must originate, for MQTT 3.1.1 and 5.0.
package packets
