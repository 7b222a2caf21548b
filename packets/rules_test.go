package packets

import (
	"errors"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ruleCase struct {
	name string // starts with the conformance statement or section
	v    Version
	raw  []byte
	code ReasonCode
	rule string
}

// malformedCases are one per rule: each packet breaks exactly the rule
// in its name. The end-to-end tests of the example broker replay them.
func malformedCases() []ruleCase {
	long := strings.Repeat("a/", 70) + "a"
	return []ruleCase{
		// Fixed header.
		{"[MQTT-2.1.3-1] PINGREQ with flags", V311, []byte{0xc1, 0}, reason.MalformedPacket, "[MQTT-2.1.3-1]"},
		{"[MQTT-2.1.3-1] SUBSCRIBE with flags 0000", V311, pkt(0x80, body{}.u16(1).str("a").byte(0)), reason.MalformedPacket, "[MQTT-2.1.3-1]"},
		{"[MQTT-2.1.3-1] PUBREL with flags 0000", V311, pkt(0x60, body{}.u16(1)), reason.MalformedPacket, "[MQTT-2.1.3-1]"},
		{"[MQTT-2.1.3-1] UNSUBSCRIBE with flags 0011", V311, pkt(0xa3, body{}.u16(1).str("a")), reason.MalformedPacket, "[MQTT-2.1.3-1]"},
		{"§2.1.2 reserved type 0", V311, []byte{0x00, 0}, reason.MalformedPacket, "§2.1.2"},
		{"§2.1.2 AUTH in MQTT 3.1.1", V311, []byte{0xf0, 0}, reason.MalformedPacket, "§2.1.2"},
		{"[MQTT-3.3.1-4] PUBLISH with QoS 3", V311, publish311(0x06, "a", 1, "x"), reason.MalformedPacket, "[MQTT-3.3.1-4]"},
		{"[MQTT-3.3.1-2] DUP on a QoS 0 PUBLISH", V311, publish311(0x08, "a", 0, "x"), reason.MalformedPacket, "[MQTT-3.3.1-2]"},
		{"[MQTT-1.5.5-1] overlong remaining length", V311, []byte{0xc0, 0x80, 0x00}, reason.MalformedPacket, "[MQTT-1.5.5-1]"},
		{"[MQTT-1.5.5] 5-byte remaining length", V311, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, reason.MalformedPacket, "[MQTT-1.5.5]"},
		{"§2.1.4 remaining length longer than the packet", V311, []byte{0x30, 10, 0, 1, 'a'}, reason.MalformedPacket, "§2.1.4"},
		{"§2.1.4 trailing bytes", V311, append(publish311(0, "a", 0, ""), 'x'), reason.MalformedPacket, "§2.1.4"},
		// Exact lengths.
		{"§3.12 PINGREQ with a body", V311, []byte{0xc0, 1, 0}, reason.MalformedPacket, ""},
		{"§3.14 MQTT 3.1.1 DISCONNECT with a body", V311, []byte{0xe0, 1, 0}, reason.MalformedPacket, ""},
		{"§3.4 MQTT 3.1.1 PUBACK of 3 bytes", V311, []byte{0x40, 3, 0, 1, 0}, reason.MalformedPacket, ""},
		{"§3.4 PUBACK cut short", V311, []byte{0x40, 1, 0}, reason.MalformedPacket, "[MQTT-1.5]"},
		// Strings.
		{"[MQTT-1.5.4-1] invalid UTF-8 in a topic", V311, publish311(0, "a\xff", 0, ""), reason.MalformedPacket, "[MQTT-1.5.4-1]"},
		{"[MQTT-4.7.3-2] U+0000 in a topic", V311, publish311(0, "a\x00b", 0, ""), reason.MalformedPacket, "[MQTT-4.7.3-2]"},
		{"§1.5.4 control character in a filter", V311, pkt(0x82, body{}.u16(1).str("a\x1b").byte(0)), reason.MalformedPacket, "§1.5.4"},
		{"[MQTT-1.5.4-1] surrogate half in a client ID", V311, connect311(0x02, "\xed\xa0\x80"), reason.MalformedPacket, "[MQTT-1.5.4-1]"},
		{"[MQTT-1.5.4-1] control character in a client ID", V311, connect311(0x02, "a\x01b"), reason.MalformedPacket, "[MQTT-1.5.4-1]"},
		{"[MQTT-1.5.4-1] non-character in a username", V311, connect311(0x82, "c", func(b body) body { return b.str("u\uffff") }), reason.MalformedPacket, "[MQTT-1.5.4-1]"},
		{"[MQTT-1.5.6] binary length past the packet", V311, connect311(0xc2, "c", func(b body) body { return b.str("u").u16(9).byte('x') }), reason.MalformedPacket, "[MQTT-1.5.6]"},
		// CONNECT.
		{"[MQTT-3.1.2-1] protocol name", V311, pkt(0x10, body{}.str("MQTX").byte(4, 2).u16(60).str("c")), reason.UnsupportedProtocolVersion, "[MQTT-3.1.2-1]"},
		{"[MQTT-3.1.2-2] protocol level 6", V311, pkt(0x10, body{}.str("MQTT").byte(6, 2).u16(60).str("c")), reason.UnsupportedProtocolVersion, "[MQTT-3.1.2-2]"},
		{"[MQTT-3.1.2-2] MQIsdp with level 4", V311, pkt(0x10, body{}.str("MQIsdp").byte(4, 2).u16(60).str("c")), reason.UnsupportedProtocolVersion, "[MQTT-3.1.2-2]"},
		{"[MQTT-3.1.2-3] reserved connect flag", V311, connect311(0x03, "c"), reason.MalformedPacket, "[MQTT-3.1.2-3]"},
		{"[MQTT-3.1.2-11] will QoS without the will flag", V311, connect311(0x0a, "c"), reason.MalformedPacket, "[MQTT-3.1.2-11]"},
		{"[MQTT-3.1.2-12] will QoS 3", V311, connect311(0x1e, "c", func(b body) body { return b.str("w").str("x") }), reason.MalformedPacket, "[MQTT-3.1.2-12]"},
		{"[MQTT-3.1.2-13] will retain without the will flag", V311, connect311(0x22, "c"), reason.MalformedPacket, "[MQTT-3.1.2-13]"},
		{"[MQTT-3.1.2-22] password without username in 3.1.1", V311, connect311(0x42, "c", func(b body) body { return b.str("pw") }), reason.MalformedPacket, "[MQTT-3.1.2-22]"},
		{"[MQTT-3.1.3-8] empty client ID without clean session", V311, connect311(0x00, ""), reason.ClientIdentifierNotValid, "[MQTT-3.1.3-8]"},
		{"MQTT 3.1 empty client ID", V31, pkt(0x10, body{}.str("MQIsdp").byte(3, 2).u16(60).str("")), reason.ClientIdentifierNotValid, "MQTT 3.1 §3.1"},
		{"limit client ID length", V311, connect311(0x02, strings.Repeat("c", 300)), reason.ClientIdentifierNotValid, ""},
		{"[MQTT-3.1.2-17] username flag without a username", V311, connect311(0x82, "c"), reason.MalformedPacket, "[MQTT-1.5]"},
		{"[MQTT-3.1.2-9] will flag without a will topic", V311, connect311(0x06, "c"), reason.MalformedPacket, "[MQTT-1.5]"},
		{"[MQTT-3.3.2-2] wildcard in a will topic", V311, connect311(0x06, "c", func(b body) body { return b.str("w/#").str("x") }), reason.MalformedPacket, "[MQTT-4.7.0-1]"},
		{"§3.1 bytes after the CONNECT payload", V311, pkt(0x10, body{}.str("MQTT").byte(4, 2).u16(60).str("c").byte(0)), reason.MalformedPacket, ""},
		{"§3.1.2.11.10 auth data without auth method", V5, connect5(0x02, prop(PropAuthData, 0, 1, 'x'), "c"), reason.ProtocolError, "§3.1.2.11.10"},
		{"§3.1.2.11.3 receive maximum 0", V5, connect5(0x02, prop(PropReceiveMaximum, 0, 0), "c"), reason.ProtocolError, "§3.1.2.11.3"},
		{"§3.1.2.11.4 maximum packet size 0", V5, connect5(0x02, prop(PropMaximumPacketSize, 0, 0, 0, 0), "c"), reason.ProtocolError, "§3.1.2.11.4"},
		{"§2.2.2.2 request problem information 2", V5, connect5(0x02, prop(PropRequestProblemInfo, 2), "c"), reason.ProtocolError, "§2.2.2.2"},
		{"§2.2.2.2 will delay in CONNECT properties", V5, connect5(0x02, prop(PropWillDelay, 0, 0, 0, 1), "c"), reason.ProtocolError, "§2.2.2.2"},
		{"§3.3.2.3.2 will payload not UTF-8 as declared", V5, connect5(0x06, nil, "c", func(b body) body {
			return b.props(prop(PropPayloadFormat, 1)...).str("w").u16(1).byte(0xff)
		}), reason.PayloadFormatInvalid, "§3.3.2.3.2"},
		// PUBLISH.
		{"[MQTT-3.3.2-2] wildcard in a topic name", V311, publish311(0, "a/+", 0, ""), reason.MalformedPacket, "[MQTT-4.7.0-1]"},
		{"[MQTT-4.7.3-1] empty topic in 3.1.1", V311, publish311(0, "", 0, ""), reason.MalformedPacket, "[MQTT-4.7.3-1]"},
		{"§3.3.2.1 empty topic without a topic alias", V5, publish5(0, "", 0, nil, ""), reason.ProtocolError, "§3.3.2.1"},
		{"[MQTT-2.2.1-3] packet identifier 0 on QoS 1", V311, publish311(0x02, "a", 0, ""), reason.MalformedPacket, "[MQTT-2.2.1-3]"},
		{"[MQTT-3.3.2-8] topic alias 0", V5, publish5(0, "a", 0, prop(PropTopicAlias, 0, 0), ""), reason.TopicAliasInvalid, "[MQTT-3.3.2-8]"},
		{"[MQTT-3.3.2-14] wildcard in a response topic", V5, publish5(0, "a", 0, propStr(PropResponseTopic, "r/#"), ""), reason.MalformedPacket, "[MQTT-3.3.2-14]"},
		{"§3.3.2.3.2 payload not UTF-8 as declared", V5, publish5(0, "a", 0, prop(PropPayloadFormat, 1), "\xff"), reason.PayloadFormatInvalid, "§3.3.2.3.2"},
		{"§2.2.2.2 unknown property", V5, publish5(0, "a", 0, prop(0x04, 0), ""), reason.MalformedPacket, "§2.2.2.2"},
		{"§2.2.2.2 duplicate property", V5, publish5(0, "a", 0, cat(prop(PropMessageExpiry, 0, 0, 0, 1), prop(PropMessageExpiry, 0, 0, 0, 2)), ""), reason.ProtocolError, "§2.2.2.2"},
		{"§2.2.2.2 session expiry in a PUBLISH", V5, publish5(0, "a", 0, prop(PropSessionExpiry, 0, 0, 0, 1), ""), reason.ProtocolError, "§2.2.2.2"},
		{"[MQTT-2.2.2-1] property length past the packet", V5, pkt(0x30, body{}.str("a").vbi(20).byte(1, 0)), reason.MalformedPacket, "[MQTT-2.2.2-1]"},
		{"§2.2.2.2 property value past the property length", V5, pkt(0x30, body{}.str("a").vbi(2).byte(byte(PropMessageExpiry), 0, 0, 0, 1)), reason.MalformedPacket, "[MQTT-1.5]"},
		{"[MQTT-1.5.5-1] overlong property identifier", V5, publish5(0, "a", 0, []byte{0x81, 0x00, 0}, ""), reason.MalformedPacket, "[MQTT-1.5.5-1]"},
		{"limit topic levels", V311, publish311(0, long, 0, ""), reason.MalformedPacket, ""},
		{"limit user properties", V5, publish5(0, "a", 0, cat(repeatUserProps(33)...), ""), reason.MalformedPacket, ""},
		// SUBSCRIBE and UNSUBSCRIBE.
		{"[MQTT-2.2.1-3] SUBSCRIBE with packet identifier 0", V311, pkt(0x82, body{}.u16(0).str("a").byte(0)), reason.MalformedPacket, "[MQTT-2.2.1-3]"},
		{"[MQTT-3.8.3-2] SUBSCRIBE without filters", V311, pkt(0x82, body{}.u16(1)), reason.ProtocolError, "[MQTT-3.8.3-2]"},
		{"[MQTT-3.8.3-5] SUBSCRIBE requesting QoS 3", V5, pkt(0x82, body{}.u16(1).props().str("a").byte(3)), reason.MalformedPacket, "[MQTT-3.8.3-5]"},
		{"[MQTT-3.8.3-5] reserved subscription option bits", V5, pkt(0x82, body{}.u16(1).props().str("a").byte(0x40)), reason.MalformedPacket, "[MQTT-3.8.3-5]"},
		{"[MQTT-3.8.3-4] reserved option bits in 3.1.1", V311, pkt(0x82, body{}.u16(1).str("a").byte(0x04)), reason.MalformedPacket, "[MQTT-3.8.3-4]"},
		{"§3.8.3.1 retain handling 3", V5, pkt(0x82, body{}.u16(1).props().str("a").byte(0x30)), reason.MalformedPacket, "§3.8.3.1"},
		{"[MQTT-3.8.3-4] No Local on a shared subscription", V5, pkt(0x82, body{}.u16(1).props().str("$share/g/a").byte(0x04)), reason.ProtocolError, "[MQTT-3.8.3-4]"},
		{"[MQTT-4.7.1-1] '#' not last in a filter", V311, pkt(0x82, body{}.u16(1).str("a/#/b").byte(0)), reason.MalformedPacket, "[MQTT-4.7.1-1]"},
		{"[MQTT-4.7.1-2] '+' not alone in a level", V311, pkt(0x82, body{}.u16(1).str("a+").byte(0)), reason.MalformedPacket, "[MQTT-4.7.1-2]"},
		{"[MQTT-4.8.2-1] empty share name", V5, pkt(0x82, body{}.u16(1).props().str("$share//a").byte(0)), reason.MalformedPacket, "[MQTT-4.8.2-1]"},
		{"[MQTT-4.7.3-1] empty filter", V311, pkt(0x82, body{}.u16(1).str("").byte(0)), reason.MalformedPacket, "[MQTT-4.7.3-1]"},
		{"§3.8.2.1.2 subscription identifier 0", V5, pkt(0x82, body{}.u16(1).props(byte(PropSubscriptionID), 0).str("a").byte(0)), reason.ProtocolError, "§3.8.2.1.2"},
		{"§2.2.2.2 two subscription identifiers in a SUBSCRIBE", V5, pkt(0x82, body{}.u16(1).props(byte(PropSubscriptionID), 1, byte(PropSubscriptionID), 2).str("a").byte(0)), reason.ProtocolError, "§2.2.2.2"},
		{"SUBSCRIBE cut inside the options", V5, pkt(0x82, body{}.u16(1).props().str("a")), reason.MalformedPacket, "[MQTT-1.5]"},
		{"limit filters per SUBSCRIBE", V311, pkt(0x82, repeatFilters(65)), reason.MalformedPacket, ""},
		{"[MQTT-3.10.3-2] UNSUBSCRIBE without filters", V311, pkt(0xa2, body{}.u16(1)), reason.ProtocolError, "[MQTT-3.10.3-2]"},
		{"[MQTT-2.2.1-3] UNSUBSCRIBE with packet identifier 0", V311, pkt(0xa2, body{}.u16(0).str("a")), reason.MalformedPacket, "[MQTT-2.2.1-3]"},
		// Acknowledgements, DISCONNECT, AUTH.
		{"[MQTT-2.2.1-3] PUBACK with packet identifier 0", V311, pkt(0x40, body{}.u16(0)), reason.MalformedPacket, "[MQTT-2.2.1-3]"},
		{"§2.4 PUBACK reason code 0x92", V5, pkt(0x40, body{}.u16(1).byte(0x92)), reason.MalformedPacket, "§2.4"},
		{"§2.4 PUBREL reason code 0x10", V5, pkt(0x62, body{}.u16(1).byte(0x10)), reason.MalformedPacket, "§2.4"},
		{"§2.4 DISCONNECT reason code 0x01", V5, pkt(0xe0, body{}.byte(0x01)), reason.MalformedPacket, "§2.4"},
		{"§2.4 AUTH reason code 0x87", V5, pkt(0xf0, body{}.byte(0x87)), reason.MalformedPacket, "§2.4"},
		{"§2.2.2.2 topic alias in a DISCONNECT", V5, pkt(0xe0, body{}.byte(0).props(byte(PropTopicAlias), 0, 1)), reason.ProtocolError, "§2.2.2.2"},
		{"[MQTT-3.2.2-1] CONNACK reserved flags", V311, pkt(0x20, body{}.byte(2, 0)), reason.MalformedPacket, "[MQTT-3.2.2-1]"},
	}
}

func repeatUserProps(n int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		out = append(out, append([]byte{byte(PropUserProperty)}, body{}.str("k").str("v")...))
	}
	return out
}

func repeatFilters(n int) body {
	b := body{}.u16(1)
	for i := 0; i < n; i++ {
		b = b.str("a").byte(0)
	}
	return b
}

func TestRules(t *testing.T) {
	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.raw, c.v, Limits{})
			require.Error(t, err, "%x", c.raw)
			var e *Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.Equal(t, c.code, e.Code, "%v", err)
			assert.Equal(t, c.rule, e.Rule, "%v", err)
			assert.Equal(t, c.code, CodeOf(err))
		})
	}
}

// validCases are packets every rule admits; each must parse.
func validCases() []ruleCase {
	return []ruleCase{
		{"CONNECT 3.1.1 minimal", V311, connect311(0x02, "c"), 0, ""},
		{"CONNECT 3.1.1 empty client ID with clean session", V311, connect311(0x02, ""), 0, ""},
		{"CONNECT 3.1 (MQIsdp)", V31, pkt(0x10, body{}.str("MQIsdp").byte(3, 2).u16(60).str("c")), 0, ""},
		{"CONNECT 3.1.1 with will, username, password", V311, connect311(0xee, "c", func(b body) body {
			return b.str("will/topic").str("").str("user").str("pw") // an empty will payload is allowed
		}), 0, ""},
		{"CONNECT 5.0 password without username", V5, connect5(0x42, nil, "c", func(b body) body { return b.str("pw") }), 0, ""},
		{"CONNECT 5.0 empty client ID without clean start", V5, connect5(0x00, nil, ""), 0, ""},
		{"CONNECT 5.0 with will properties", V5, connect5(0x06, prop(PropReceiveMaximum, 0, 10), "c", func(b body) body {
			return b.props(cat(prop(PropWillDelay, 0, 0, 0, 5), prop(PropPayloadFormat, 1))...).str("w").str("ok")
		}), 0, ""},
		{"PUBLISH QoS 0", V311, publish311(0, "a/b", 0, "hi"), 0, ""},
		{"PUBLISH QoS 2 retain dup", V311, publish311(0x0d, "a/b", 7, "hi"), 0, ""},
		{"PUBLISH empty payload", V311, publish311(0x02, "a", 1, ""), 0, ""},
		{"PUBLISH topic with spaces and '$'", V311, publish311(0, "$aws/x y", 0, ""), 0, ""},
		{"PUBLISH 5.0 topic alias only", V5, publish5(0, "", 0, prop(PropTopicAlias, 0, 1), "x"), 0, ""},
		{"PUBLISH 5.0 user properties repeat", V5, publish5(0, "a", 0, cat(repeatUserProps(3)...), ""), 0, ""},
		{"PUBLISH 5.0 UTF-8 payload as declared", V5, publish5(0, "a", 0, prop(PropPayloadFormat, 1), "héllo"), 0, ""},
		{"SUBSCRIBE 3.1.1 several filters", V311, pkt(0x82, body{}.u16(1).str("a/+").byte(1).str("#").byte(2).str("$share/g/x").byte(0)), 0, ""},
		{"SUBSCRIBE 5.0 options", V5, pkt(0x82, body{}.u16(1).props(byte(PropSubscriptionID), 5).str("a").byte(0x2e)), 0, ""},
		{"UNSUBSCRIBE", V311, pkt(0xa2, body{}.u16(1).str("a/#").str("b")), 0, ""},
		{"PUBACK 3.1.1", V311, pkt(0x40, body{}.u16(1)), 0, ""},
		{"PUBACK 5.0 short form", V5, pkt(0x40, body{}.u16(1)), 0, ""},
		{"PUBREC 5.0 reason only", V5, pkt(0x50, body{}.u16(1).byte(0x10)), 0, ""},
		{"PUBREL 5.0 with reason string", V5, pkt(0x62, body{}.u16(1).byte(0x92).props(propStr(PropReasonString, "gone")...)), 0, ""},
		{"PINGREQ", V311, []byte{0xc0, 0}, 0, ""},
		{"DISCONNECT 3.1.1", V311, []byte{0xe0, 0}, 0, ""},
		{"DISCONNECT 5.0 with will", V5, pkt(0xe0, body{}.byte(0x04)), 0, ""},
		{"DISCONNECT 5.0 session expiry", V5, pkt(0xe0, body{}.byte(0).props(prop(PropSessionExpiry, 0, 0, 0, 9)...)), 0, ""},
		{"AUTH 5.0 empty", V5, []byte{0xf0, 0}, 0, ""},
		{"AUTH 5.0 continue", V5, pkt(0xf0, body{}.byte(0x18).props(propStr(PropAuthMethod, "SCRAM")...)), 0, ""},
		{"CONNACK 3.1.1", V311, pkt(0x20, body{}.byte(1, 0)), 0, ""},
		{"CONNACK 5.0", V5, pkt(0x20, body{}.byte(0, 0x8a).props()), 0, ""},
		{"SUBACK 3.1.1", V311, pkt(0x90, body{}.u16(1).byte(0, 0x80)), 0, ""},
		{"UNSUBACK 5.0", V5, pkt(0xb0, body{}.u16(1).props().byte(0x11)), 0, ""},
	}
}

func TestValidPacketsParse(t *testing.T) {
	for _, c := range validCases() {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.raw, c.v, Limits{})
			require.NoError(t, err, "%x", c.raw)
			assert.Equal(t, Type(c.raw[0]>>4), p.Type)
		})
	}
}

func TestControlCharsCanBeAllowed(t *testing.T) {
	raw := publish311(0, "a\tb", 0, "")
	_, err := Parse(raw, V311, Limits{})
	require.Error(t, err)
	_, err = Parse(raw, V311, Limits{AllowControlChars: true})
	require.NoError(t, err)
}

func TestDecodedFields(t *testing.T) {
	p, err := Parse(connect311(0xee, "dev-1", func(b body) body {
		return b.str("status/dev-1").str("offline").str("alice").str("s3cret")
	}), V311, Limits{})
	require.NoError(t, err)
	c := p.Connect
	assert.Equal(t, "MQTT", string(c.ProtocolName))
	assert.Equal(t, V311, c.Level)
	assert.Equal(t, "dev-1", string(c.ClientID))
	assert.True(t, c.CleanStart)
	assert.Equal(t, uint16(60), c.KeepAlive)
	assert.True(t, c.WillFlag)
	assert.Equal(t, byte(1), c.WillQoS)
	assert.True(t, c.WillRetain)
	assert.Equal(t, "status/dev-1", string(c.WillTopic))
	assert.Equal(t, "offline", string(c.WillPayload))
	assert.Equal(t, "alice", string(c.Username))
	assert.Equal(t, "s3cret", string(c.Password))

	p, err = Parse(publish5(0x0b, "sensors/t1", 42, cat(prop(PropTopicAlias, 0, 3), prop(PropMessageExpiry, 0, 0, 0, 30),
		append([]byte{byte(PropUserProperty)}, body{}.str("k").str("v")...)), "21.5"), V5, Limits{})
	require.NoError(t, err)
	pub := p.Publish
	assert.Equal(t, "sensors/t1", string(pub.Topic))
	assert.Equal(t, byte(1), pub.QoS)
	assert.True(t, pub.Retain)
	assert.True(t, pub.Dup)
	assert.Equal(t, uint16(42), p.PacketID)
	assert.Equal(t, uint16(3), p.Props.TopicAlias)
	assert.Equal(t, uint32(30), p.Props.MessageExpiry)
	assert.Equal(t, "21.5", string(pub.Payload))
	assert.Equal(t, 1, p.Props.UserProperties)
	var kv []string
	p.Props.EachUserProperty(func(k, v []byte) bool { kv = append(kv, string(k)+"="+string(v)); return true })
	assert.Equal(t, []string{"k=v"}, kv)

	p, err = Parse(pkt(0x82, body{}.u16(9).props().str("a/+").byte(0x1d).str("$share/g/b").byte(0)), V5, Limits{})
	require.NoError(t, err)
	require.Len(t, p.Subscriptions, 2)
	s := p.Subscriptions[0]
	assert.Equal(t, "a/+", string(s.Filter))
	assert.Equal(t, byte(1), s.QoS)
	assert.True(t, s.NoLocal)
	assert.True(t, s.RetainAsPublished)
	assert.Equal(t, byte(1), s.RetainHandling)
	assert.Equal(t, "$share/g/b", string(p.Subscriptions[1].Filter))
	assert.Equal(t, 5, s.Offset, "after the fixed header, packet identifier and property length")
}
