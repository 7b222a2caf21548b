package wasmguard

import (
	"encoding/binary"
	"time"
)

// The event record, ABI version 1. Little-endian; every string and byte
// field is a u32 length followed by the bytes.
//
//	u16 version   (1)
//	u8  kind      (1 connect, 2 subscribe, 3 publish)
//	u8  flags     (connect: bit 0 clean start, bit 1 password present;
//	               publish: bit 0 retain)
//	4 bytes by kind:
//	  connect:   u8 protocol version (3, 4, 5), u8 0, u16 keep alive
//	  subscribe: u8 requested QoS, 3 × u8 0
//	  publish:   u8 QoS, 3 × u8 0
//	i64 time      (Unix nanoseconds: plugins get no clock of their own)
//	strings by kind:
//	  connect:   client ID, username, remote address, certificate identity
//	  subscribe: client ID, username, filter
//	  publish:   client ID, username, topic, payload
//
// The package guest decodes it.

// ABIVersion is the event record's version.
const ABIVersion = 1

// Event kinds.
const (
	kindConnect   = 1
	kindSubscribe = 2
	kindPublish   = 3
)

// ConnectEvent is what on_connect sees. The password itself is never
// shown to a plugin, only whether there was one.
type ConnectEvent struct {
	Time            time.Time // zero: when the call is made
	ClientID        string
	Username        string
	HasPassword     bool
	RemoteAddr      string // "ip:port"
	ProtocolVersion byte   // 3, 4 or 5
	CleanStart      bool
	KeepAlive       uint16
	CertIdentity    string // from a verified client certificate, or ""
}

// SubscribeEvent is what on_subscribe sees, once per filter.
type SubscribeEvent struct {
	Time     time.Time // zero: when the call is made
	ClientID string
	Username string
	Filter   string
	QoS      byte
}

// PublishEvent is what on_publish sees.
type PublishEvent struct {
	Time     time.Time // zero: when the call is made
	ClientID string
	Username string
	Topic    string
	QoS      byte
	Retain   bool
	Payload  []byte
}

// event is one of the three, for the encoder; passed by value so that a
// call allocates nothing.
type event struct {
	kind byte
	c    *ConnectEvent
	s    *SubscribeEvent
	p    *PublishEvent
}

func (e *event) size() int {
	const header, fixed = 4, 12
	switch e.kind {
	case kindConnect:
		return header + fixed + 16 + len(e.c.ClientID) + len(e.c.Username) + len(e.c.RemoteAddr) + len(e.c.CertIdentity)
	case kindSubscribe:
		return header + fixed + 12 + len(e.s.ClientID) + len(e.s.Username) + len(e.s.Filter)
	}
	return header + fixed + 16 + len(e.p.ClientID) + len(e.p.Username) + len(e.p.Topic) + len(e.p.Payload)
}

// encode writes the record into dst, which has size() bytes; now is the
// time of an event whose Time is zero.
func (e *event) encode(dst []byte, now time.Time) {
	binary.LittleEndian.PutUint16(dst, ABIVersion)
	dst[2] = e.kind
	var t time.Time
	switch e.kind {
	case kindConnect:
		t = e.c.Time
	case kindSubscribe:
		t = e.s.Time
	default:
		t = e.p.Time
	}
	if t.IsZero() {
		t = now
	}
	binary.LittleEndian.PutUint64(dst[8:], uint64(t.UnixNano()))
	w := 16
	put := func(s string) {
		binary.LittleEndian.PutUint32(dst[w:], uint32(len(s)))
		w += 4 + copy(dst[w+4:], s)
	}
	switch e.kind {
	case kindConnect:
		c := e.c
		dst[3] = b2u(c.CleanStart) | b2u(c.HasPassword)<<1
		dst[4], dst[5] = c.ProtocolVersion, 0
		binary.LittleEndian.PutUint16(dst[6:], c.KeepAlive)
		put(c.ClientID)
		put(c.Username)
		put(c.RemoteAddr)
		put(c.CertIdentity)
	case kindSubscribe:
		s := e.s
		dst[3] = 0
		dst[4], dst[5], dst[6], dst[7] = s.QoS, 0, 0, 0
		put(s.ClientID)
		put(s.Username)
		put(s.Filter)
	case kindPublish:
		p := e.p
		dst[3] = b2u(p.Retain)
		dst[4], dst[5], dst[6], dst[7] = p.QoS, 0, 0, 0
		put(p.ClientID)
		put(p.Username)
		put(p.Topic)
		binary.LittleEndian.PutUint32(dst[w:], uint32(len(p.Payload)))
		copy(dst[w+4:], p.Payload)
	}
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}
