package e2e

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/stretchr/testify/require"
)

// Raw is an MQTT client written byte by byte, for the attacks and
// conformance checks a client library refuses to make: a takeover of
// someone else's client ID, a subscriber that never acknowledges, a
// DISCONNECT with reason 0x04, packets out of order. It speaks MQTT
// 3.1.1 or 5.0 and reads what the server sends with packets.Parse, so a
// malformed answer from the server is a test failure too.
type Raw struct {
	t      testing.TB
	Conn   net.Conn
	r      *bufio.Reader
	V      packets.Version
	nextID uint16
}

// RawOpts is a CONNECT.
type RawOpts struct {
	ID, User, Pass string
	// Resume asks for the session to be kept (Clean Start / Clean
	// Session 0). With MQTT 5 SessionExpiry says for how long.
	Resume        bool
	SessionExpiry uint32
	KeepAlive     uint16
	Will          *RawWill
	// Props are extra MQTT 5 CONNECT properties (see Prop).
	Props []byte
}

// RawWill is a will message.
type RawWill struct {
	Topic, Payload string
	QoS            byte
	Retain         bool
	Delay          uint32 // MQTT 5 Will Delay Interval, seconds
}

// DialRaw opens a TCP connection to addr. The test's cleanup closes it.
func DialRaw(t testing.TB, addr string, v packets.Version) *Raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &Raw{t: t, Conn: conn, r: bufio.NewReader(conn), V: v}
}

// DialRawFrom is DialRaw from the local address from: to the server,
// 127.0.0.2, 127.0.0.3 … are clients at other addresses.
func DialRawFrom(t testing.TB, addr, from string, v packets.Version) *Raw {
	t.Helper()
	conn, err := dialFrom(addr, from)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &Raw{t: t, Conn: conn, r: bufio.NewReader(conn), V: v}
}

func dialFrom(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// TryConnect is one MQTT 5 CONNECT from the local address from, for a
// test's goroutines: it returns the CONNACK's reason code, or an error
// (it fails no test), and closes the connection.
func TryConnect(addr, from string, o RawOpts) (byte, error) {
	conn, err := dialFrom(addr, from)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	c := &Raw{Conn: conn, r: bufio.NewReader(conn), V: packets.V5}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(c.ConnectPacket(o)); err != nil {
		return 0, err
	}
	p, err := c.Next(15 * time.Second)
	if err != nil {
		return 0, err
	}
	if p.Type != packets.CONNACK {
		return 0, fmt.Errorf("want CONNACK, got %v", p.Type)
	}
	return byte(p.ReasonCode), nil
}

// ConnectRaw dials addr, sends o's CONNECT and returns the client and
// the server's CONNACK.
func ConnectRaw(t testing.TB, addr string, v packets.Version, o RawOpts) (*Raw, *packets.Packet) {
	t.Helper()
	c := DialRaw(t, addr, v)
	c.Send(c.ConnectPacket(o))
	ack := c.Expect(packets.CONNACK)
	return c, ack
}

// Prop encodes one MQTT 5 property: id, then a value of the width the
// property has (uint8 for a byte, uint16 for two bytes, uint32 for
// four, string for a UTF-8 string, [2]string for a user property).
func Prop(id packets.PropertyID, v any) []byte {
	b := []byte{byte(id)}
	switch v := v.(type) {
	case uint8:
		b = append(b, v)
	case uint16:
		b = binary.BigEndian.AppendUint16(b, v)
	case uint32:
		b = binary.BigEndian.AppendUint32(b, v)
	case string:
		b = appendStr(b, v)
	case [2]string:
		b = appendStr(appendStr(b, v[0]), v[1])
	default:
		panic(fmt.Sprintf("e2e.Prop: %T", v))
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// ConnectPacket encodes o as a CONNECT for c's version.
func (c *Raw) ConnectPacket(o RawOpts) []byte {
	cn := packets.Connect{ProtocolName: []byte("MQTT"), Level: c.V, CleanStart: !o.Resume, KeepAlive: o.KeepAlive,
		ClientID: []byte(o.ID), UsernameFlag: o.User != "", Username: []byte(o.User), PasswordFlag: o.Pass != "", Password: []byte(o.Pass)}
	if c.V == packets.V31 {
		cn.ProtocolName = []byte("MQIsdp")
	}
	if cn.KeepAlive == 0 {
		cn.KeepAlive = 60
	}
	props := append([]byte(nil), o.Props...)
	if c.V == packets.V5 && o.SessionExpiry > 0 {
		props = append(props, Prop(packets.PropSessionExpiry, o.SessionExpiry)...)
	}
	if w := o.Will; w != nil {
		cn.WillFlag, cn.WillQoS, cn.WillRetain = true, w.QoS, w.Retain
		cn.WillTopic, cn.WillPayload = []byte(w.Topic), []byte(w.Payload)
		if c.V == packets.V5 && w.Delay > 0 {
			cn.WillProps.Raw = Prop(packets.PropWillDelay, w.Delay)
		}
	}
	return packets.AppendConnect(nil, &cn, props)
}

// Packet frames a control packet: first byte, remaining length, body.
func Packet(first byte, body []byte) []byte {
	return append(packets.AppendVBI([]byte{first}, len(body)), body...)
}

// Send writes raw bytes.
func (c *Raw) Send(b []byte) {
	c.t.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Conn.Write(b)
	require.NoError(c.t, err)
}

// ID returns the next packet identifier.
func (c *Raw) ID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// RawSub is one filter of a SUBSCRIBE.
type RawSub struct {
	Filter         string
	QoS            byte
	RetainHandling byte // MQTT 5
	NoLocal        bool // MQTT 5
	RAP            bool // MQTT 5 Retain As Published
}

// SubscribePacket encodes a SUBSCRIBE with packet identifier id.
func (c *Raw) SubscribePacket(id uint16, subs ...RawSub) []byte {
	body := binary.BigEndian.AppendUint16(nil, id)
	if c.V == packets.V5 {
		body = append(body, 0)
	}
	for _, s := range subs {
		opts := s.QoS
		if c.V == packets.V5 {
			opts |= s.RetainHandling << 4
			if s.NoLocal {
				opts |= 0x04
			}
			if s.RAP {
				opts |= 0x08
			}
		}
		body = append(appendStr(body, s.Filter), opts)
	}
	return Packet(0x82, body)
}

// Subscribe subscribes and returns the SUBACK's codes.
func (c *Raw) Subscribe(subs ...RawSub) []byte {
	c.t.Helper()
	id := c.ID()
	c.Send(c.SubscribePacket(id, subs...))
	ack := c.Expect(packets.SUBACK)
	require.Equal(c.t, id, ack.PacketID)
	return append([]byte(nil), ack.ReasonCodes...)
}

// Unsubscribe unsubscribes and waits for the UNSUBACK.
func (c *Raw) Unsubscribe(filters ...string) {
	c.t.Helper()
	id := c.ID()
	body := binary.BigEndian.AppendUint16(nil, id)
	if c.V == packets.V5 {
		body = append(body, 0)
	}
	for _, f := range filters {
		body = appendStr(body, f)
	}
	c.Send(Packet(0xa2, body))
	require.Equal(c.t, id, c.Expect(packets.UNSUBACK).PacketID)
}

// PublishPacket encodes a PUBLISH; props are MQTT 5 properties.
func (c *Raw) PublishPacket(topic, payload string, qos byte, retain bool, id uint16, props []byte) []byte {
	first := byte(0x30) | qos<<1
	if retain {
		first |= 1
	}
	body := appendStr(nil, topic)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, id)
	}
	if c.V == packets.V5 {
		body = append(packets.AppendVBI(body, len(props)), props...)
	}
	return Packet(first, append(body, payload...))
}

// Publish publishes and, for QoS 1 and 2, returns the PUBACK or PUBREC
// (completing a QoS 2 flow that the server accepted).
func (c *Raw) Publish(topic, payload string, qos byte, retain bool) *packets.Packet {
	c.t.Helper()
	id := c.ID()
	c.Send(c.PublishPacket(topic, payload, qos, retain, id, nil))
	switch qos {
	case 1:
		return c.Expect(packets.PUBACK)
	case 2:
		rec := c.Expect(packets.PUBREC)
		if rec.ReasonCode < 0x80 {
			c.Send(AckPacket(packets.PUBREL, id))
			c.Expect(packets.PUBCOMP)
		}
		return rec
	}
	return nil
}

// AckPacket encodes a PUBACK, PUBREC, PUBREL or PUBCOMP with reason 0
// (the short form, valid in every version).
func AckPacket(t packets.Type, id uint16) []byte {
	first := byte(t) << 4
	if t == packets.PUBREL {
		first |= 0x02
	}
	return Packet(first, binary.BigEndian.AppendUint16(nil, id))
}

// Next reads the next packet the server sends within d. It returns an
// error when nothing came, the connection ended, or the packet is
// malformed (the raw bytes are in the error then).
func (c *Raw) Next(d time.Duration) (*packets.Packet, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	buf, _, err := mqttwire.ReadPacket(c.r, nil)
	if err != nil {
		return nil, err
	}
	p, err := packets.Parse(buf, c.V, serverLimits)
	if err != nil {
		return nil, fmt.Errorf("server sent % x: %w", buf, err)
	}
	return p, nil
}

// serverLimits parse what a server sends: structure only.
var serverLimits = packets.Limits{MaxPacketSize: 256 << 20, MaxTopicLength: 65535, MaxTopicLevels: 1 << 16,
	MaxSubscriptions: 1 << 16, MaxProperties: 1 << 16, MaxUserProperties: 1 << 16, AllowControlChars: true}

// Expect reads packets until one of type t arrives (within 5 s) and
// returns it; PUBLISHes read meanwhile fail the test, unless t is
// PUBLISH.
func (c *Raw) Expect(t packets.Type) *packets.Packet {
	c.t.Helper()
	p, err := c.Next(5 * time.Second)
	require.NoError(c.t, err, "waiting for %v", t)
	require.Equal(c.t, t, p.Type, "want %v, got %v (% x)", t, p.Type, p.Raw)
	return p
}

// Delivery is a PUBLISH the server sent.
type Delivery struct {
	Topic, Payload string
	QoS            byte
	Retain, Dup    bool
	PacketID       uint16
	Props          packets.Properties
	Raw            []byte
}

func (d Delivery) String() string { return d.Topic + " " + d.Payload }

// Collect reads for d and returns the PUBLISHes the server sent,
// acknowledging each (ack false: never, to keep them in flight). It
// stops early at a DISCONNECT or when the connection ends.
func (c *Raw) Collect(d time.Duration, ack bool) []Delivery {
	c.t.Helper()
	var out []Delivery
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return out
		}
		p, err := c.Next(left)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return out
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return out
			}
			require.NoError(c.t, err)
		}
		switch p.Type {
		case packets.PUBLISH:
			out = append(out, Delivery{Topic: string(p.Publish.Topic), Payload: string(p.Publish.Payload),
				QoS: p.Publish.QoS, Retain: p.Publish.Retain, Dup: p.Publish.Dup, PacketID: p.PacketID,
				Props: p.Props, Raw: append([]byte(nil), p.Raw...)})
			if ack && p.Publish.QoS == 1 {
				c.Send(AckPacket(packets.PUBACK, p.PacketID))
			}
			if ack && p.Publish.QoS == 2 {
				c.Send(AckPacket(packets.PUBREC, p.PacketID))
			}
		case packets.PUBREL:
			if ack {
				c.Send(AckPacket(packets.PUBCOMP, p.PacketID))
			}
		case packets.DISCONNECT:
			return out
		}
	}
}

// Ping sends PINGREQ and waits for PINGRESP, collecting the PUBLISHes
// that came before it (acknowledged): a broker writes a client's packets
// in order, so what it queued before the PINGREQ arrived is in.
func (c *Raw) Ping() []Delivery {
	c.t.Helper()
	c.Send([]byte{0xc0, 0})
	var out []Delivery
	for {
		p, err := c.Next(5 * time.Second)
		require.NoError(c.t, err, "waiting for PINGRESP")
		switch p.Type {
		case packets.PINGRESP:
			return out
		case packets.PUBLISH:
			out = append(out, Delivery{Topic: string(p.Publish.Topic), Payload: string(p.Publish.Payload),
				QoS: p.Publish.QoS, Retain: p.Publish.Retain, Dup: p.Publish.Dup, PacketID: p.PacketID,
				Props: p.Props, Raw: append([]byte(nil), p.Raw...)})
			if p.Publish.QoS == 1 {
				c.Send(AckPacket(packets.PUBACK, p.PacketID))
			}
			if p.Publish.QoS == 2 {
				c.Send(AckPacket(packets.PUBREC, p.PacketID))
			}
		case packets.PUBREL:
			c.Send(AckPacket(packets.PUBCOMP, p.PacketID))
		}
	}
}

// Close closes the TCP connection without a DISCONNECT (an abnormal
// end: the will goes out).
func (c *Raw) Close() { c.Conn.Close() }

// Disconnect sends a DISCONNECT (MQTT 5: with reason code) and closes.
func (c *Raw) Disconnect(code packets.ReasonCode) {
	c.t.Helper()
	if c.V == packets.V5 && code != 0 {
		c.Send([]byte{0xe0, 1, byte(code)})
	} else {
		c.Send([]byte{0xe0, 0})
	}
	c.Conn.Close()
}
