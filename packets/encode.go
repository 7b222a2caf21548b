package packets

import (
	"encoding/binary"

	"github.com/mqttguard/mqttguard/reason"
)

// The encoders append one packet to dst and return the extended slice,
// like strconv.Append*: a caller reuses its buffer and allocates nothing.
// They write the packets a broker or proxy originates, for MQTT 3.1.1
// (and 3.1) and 5.0; for 3.1.1 a v5 reason code is translated to what
// that version can say.

// AppendConnack appends a CONNACK. For MQTT 3.1.1 the reason code becomes
// the return code reason.Code.V3Connack gives (0x86/0x8C → 4 bad user
// name or password, 0x88/0x89/0x8B → 3 server unavailable, any other
// failure → 5 not authorized, …). sessionPresent is sent only with
// success.
func AppendConnack(dst []byte, v Version, sessionPresent bool, code ReasonCode) []byte {
	flags := byte(0)
	if sessionPresent && code == reason.Success {
		flags = 1
	}
	if v != V5 {
		return append(dst, byte(CONNACK)<<4, 2, flags, code.V3Connack())
	}
	return append(dst, byte(CONNACK)<<4, 3, flags, byte(code), 0)
}

// AppendAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP for packet id.
// MQTT 3.1.1 has no reason code: the code is dropped (a refused QoS 1
// message is acknowledged all the same; that version cannot say no).
func AppendAck(dst []byte, t Type, v Version, id uint16, code ReasonCode) []byte {
	first := byte(t) << 4
	if t == PUBREL {
		first |= 0x02
	}
	if v != V5 || code == reason.Success {
		return append(dst, first, 2, byte(id>>8), byte(id))
	}
	return append(dst, first, 3, byte(id>>8), byte(id), byte(code))
}

// AppendSuback appends a SUBACK with one code per filter: the granted
// QoS (0x00–0x02) or a failure. MQTT 3.1.1 knows one failure, 0x80.
func AppendSuback(dst []byte, v Version, id uint16, codes []ReasonCode) []byte {
	rem := 2 + len(codes)
	if v == V5 {
		rem++ // empty properties
	}
	dst = append(dst, byte(SUBACK)<<4)
	dst = appendVBI(dst, rem)
	dst = binary.BigEndian.AppendUint16(dst, id)
	if v == V5 {
		dst = append(dst, 0)
	}
	for _, c := range codes {
		if v != V5 && c.IsError() {
			c = reason.UnspecifiedError
		}
		dst = append(dst, byte(c))
	}
	return dst
}

// AppendUnsuback appends an UNSUBACK. MQTT 3.1.1's has no codes.
func AppendUnsuback(dst []byte, v Version, id uint16, codes []ReasonCode) []byte {
	if v != V5 {
		return append(dst, byte(UNSUBACK)<<4, 2, byte(id>>8), byte(id))
	}
	dst = append(dst, byte(UNSUBACK)<<4)
	dst = appendVBI(dst, 3+len(codes))
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = append(dst, 0)
	for _, c := range codes {
		dst = append(dst, byte(c))
	}
	return dst
}

// AppendDisconnect appends a DISCONNECT with a reason code. A server has
// no DISCONNECT to send in MQTT 3.1.1, only a closed connection, so for
// that version nothing is appended.
func AppendDisconnect(dst []byte, v Version, code ReasonCode) []byte {
	if v != V5 {
		return dst
	}
	if code == reason.Success {
		return append(dst, byte(DISCONNECT)<<4, 0)
	}
	return append(dst, byte(DISCONNECT)<<4, 1, byte(code))
}

// AppendPingresp appends a PINGRESP.
func AppendPingresp(dst []byte) []byte { return append(dst, byte(PINGRESP)<<4, 0) }

// appendVBI appends a Variable Byte Integer in its shortest form.
func appendVBI(dst []byte, n int) []byte {
	for {
		d := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		dst = append(dst, d)
		if n == 0 {
			return dst
		}
	}
}

// AppendVBI appends n as a Variable Byte Integer (0 to 268,435,455).
func AppendVBI(dst []byte, n int) []byte { return appendVBI(dst, n) }

// AppendConnect appends a CONNECT with c's fields, and props as its
// property section (MQTT 5.0; ignored for earlier versions). A proxy uses
// it to pass a client's CONNECT on with other credentials or properties:
// decode with a Reader, change the fields, append.
func AppendConnect(dst []byte, c *Connect, props []byte) []byte {
	str := func(b, s []byte) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	var flags byte
	if c.UsernameFlag {
		flags |= 0x80
	}
	if c.PasswordFlag {
		flags |= 0x40
	}
	if c.WillFlag {
		flags |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if c.CleanStart {
		flags |= 0x02
	}
	body := str(nil, c.ProtocolName)
	body = append(body, byte(c.Level), flags, byte(c.KeepAlive>>8), byte(c.KeepAlive))
	if c.Level == V5 {
		body = append(appendVBI(body, len(props)), props...)
	}
	body = str(body, c.ClientID)
	if c.WillFlag {
		if c.Level == V5 {
			body = append(appendVBI(body, len(c.WillProps.Raw)), c.WillProps.Raw...)
		}
		body = str(body, c.WillTopic)
		body = str(body, c.WillPayload)
	}
	if c.UsernameFlag {
		body = str(body, c.Username)
	}
	if c.PasswordFlag {
		body = str(body, c.Password)
	}
	dst = append(dst, byte(CONNECT)<<4)
	dst = appendVBI(dst, len(body))
	return append(dst, body...)
}

// WithoutProperties returns a copy of a property section (Properties.Raw
// of a packet that was read and validated) without the properties ids:
// a proxy drops, say, a client's Topic Alias Maximum before passing its
// CONNECT on, so that the server sends it no aliases the proxy would
// have to follow.
func WithoutProperties(raw []byte, ids ...PropertyID) []byte {
	out := make([]byte, 0, len(raw))
	c := cursor{b: raw, end: len(raw), lim: &lenient}
	for c.pos < c.end {
		start := c.pos
		id, err := c.vbi("")
		if err != nil || id > maxPropertyID {
			return append(out, raw[start:]...) // not a section Parse accepted: leave the rest alone
		}
		skip(&c, propSpecs[id].kind)
		drop := false
		for _, d := range ids {
			drop = drop || PropertyID(id) == d
		}
		if !drop {
			out = append(out, raw[start:min(c.pos, len(raw))]...)
		}
	}
	return out
}
