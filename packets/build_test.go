package packets

import "encoding/binary"

// body builds packet bodies by hand, so tests can write exactly the bytes
// a rule is about.
type body []byte

func (b body) byte(v ...byte) body { return append(b, v...) }
func (b body) u16(v uint16) body   { return binary.BigEndian.AppendUint16(b, v) }
func (b body) str(s string) body   { return append(b.u16(uint16(len(s))), s...) }
func (b body) vbi(n int) body      { return appendVBI(b, n) }

// props appends a property section holding the given property bytes.
func (b body) props(p ...byte) body { return append(b.vbi(len(p)), p...) }

// pkt wraps a body in a fixed header.
func pkt(first byte, b body) []byte {
	out := []byte{first}
	out = appendVBI(out, len(b))
	return append(out, b...)
}

// connect311 is a valid MQTT 3.1.1 CONNECT with the given flags and
// payload fields appended after the client ID.
func connect311(flags byte, clientID string, rest ...func(body) body) []byte {
	b := body{}.str("MQTT").byte(4, flags).u16(60).str(clientID)
	for _, f := range rest {
		b = f(b)
	}
	return pkt(0x10, b)
}

// connect5 is a valid MQTT 5.0 CONNECT with the given flags, CONNECT
// properties and payload fields after the client ID.
func connect5(flags byte, props []byte, clientID string, rest ...func(body) body) []byte {
	b := body{}.str("MQTT").byte(5, flags).u16(60).props(props...).str(clientID)
	for _, f := range rest {
		b = f(b)
	}
	return pkt(0x10, b)
}

func publish311(flags byte, topic string, id uint16, payload string) []byte {
	b := body{}.str(topic)
	if flags&0x06 != 0 {
		b = b.u16(id)
	}
	return pkt(0x30|flags, append(b, payload...))
}

func publish5(flags byte, topic string, id uint16, props []byte, payload string) []byte {
	b := body{}.str(topic)
	if flags&0x06 != 0 {
		b = b.u16(id)
	}
	b = b.props(props...)
	return pkt(0x30|flags, append(b, payload...))
}

// prop encodes one property.
func prop(id PropertyID, value ...byte) []byte { return append([]byte{byte(id)}, value...) }

func propStr(id PropertyID, s string) []byte {
	return append([]byte{byte(id)}, body{}.str(s)...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
