package packets

import (
	"bytes"
	"math/rand/v2"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
)

// Random valid packets, encoded by paho.golang (MQTT 5.0) and mochi-mqtt
// (3.1.1 and 5.0), must parse with the same fields. These encoders are
// test-only imports; the package itself depends on nothing but the
// standard library.

type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g gen) bit() bool                { return g.r.IntN(2) == 0 }

func (g gen) topic() string {
	return g.pick("a", "sensors/t1/temperature", "a//b", "$aws/things/x", "Юникод/тема", "/leading", "trailing/")
}

func (g gen) filter() string {
	return g.pick("a/+", "#", "sensors/+/temperature", "a//b/#", "+", "$SYS/#", "x/y/z")
}

func (g gen) bytes(max int) []byte {
	b := make([]byte, g.r.IntN(max+1))
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	return b
}

func (g gen) user() []paho.User {
	var us []paho.User
	for i := g.r.IntN(3); i > 0; i-- {
		us = append(us, paho.User{Key: g.pick("k", "region", "ключ"), Value: g.pick("v", "eu-west", "")})
	}
	return us
}

func writeTo(t testing.TB, wt func(*bytes.Buffer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, wt(&buf))
	return buf.Bytes()
}

func TestRoundTripPaho(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(11, 12))}
	for i := 0; i < 2000; i++ {
		switch i % 6 {
		case 0:
			c := &paho.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: g.pick("", "dev-1", "Ω-client"),
				KeepAlive: uint16(g.r.IntN(600)), CleanStart: g.bit(),
				Properties: &paho.Properties{User: g.user()}}
			if g.bit() {
				c.UsernameFlag, c.Username = true, g.pick("alice", "ü")
			}
			if g.bit() {
				c.PasswordFlag, c.Password = true, g.bytes(20)
			}
			if g.bit() {
				c.WillFlag, c.WillTopic, c.WillMessage = true, g.topic(), g.bytes(30)
				c.WillQOS, c.WillRetain = byte(g.r.IntN(3)), g.bit()
				c.WillProperties = &paho.Properties{User: g.user()}
			}
			raw := writeTo(t, func(b *bytes.Buffer) error { _, err := c.WriteTo(b); return err })
			p, err := Parse(raw, V5, Limits{})
			require.NoError(t, err, "%s\n%x", c, raw)
			cn := p.Connect
			require.Equal(t, c.ClientID, string(cn.ClientID))
			require.Equal(t, c.KeepAlive, cn.KeepAlive)
			require.Equal(t, c.CleanStart, cn.CleanStart)
			require.Equal(t, c.UsernameFlag, cn.UsernameFlag)
			require.Equal(t, c.Username, string(cn.Username))
			require.Equal(t, c.PasswordFlag, cn.PasswordFlag)
			require.Equal(t, string(c.Password), string(cn.Password))
			require.Equal(t, c.WillFlag, cn.WillFlag)
			require.Equal(t, c.WillTopic, string(cn.WillTopic))
			require.Equal(t, string(c.WillMessage), string(cn.WillPayload))
			require.Equal(t, c.WillQOS, cn.WillQoS)
			require.Equal(t, len(c.Properties.User), p.Props.UserProperties)
		case 1:
			pub := &paho.Publish{Topic: g.topic(), QoS: byte(g.r.IntN(3)), Retain: g.bit(), Payload: g.bytes(64),
				Properties: &paho.Properties{User: g.user(), ContentType: g.pick("", "application/json"), CorrelationData: g.bytes(4)}}
			if pub.QoS > 0 {
				pub.PacketID = uint16(1 + g.r.IntN(65535))
				pub.Duplicate = g.bit()
			}
			if g.bit() {
				ta := uint16(1 + g.r.IntN(10))
				pub.Properties.TopicAlias = &ta
			}
			if g.bit() {
				exp := uint32(g.r.IntN(1000))
				pub.Properties.MessageExpiry = &exp
			}
			raw := writeTo(t, func(b *bytes.Buffer) error { _, err := pub.WriteTo(b); return err })
			p, err := Parse(raw, V5, Limits{})
			require.NoError(t, err, "%s\n%x", pub, raw)
			require.Equal(t, pub.Topic, string(p.Publish.Topic))
			require.Equal(t, pub.QoS, p.Publish.QoS)
			require.Equal(t, pub.Retain, p.Publish.Retain)
			require.Equal(t, pub.Duplicate, p.Publish.Dup)
			require.Equal(t, pub.PacketID, p.PacketID)
			require.Equal(t, string(pub.Payload), string(p.Publish.Payload))
			require.Equal(t, pub.Properties.ContentType, string(p.Props.ContentType))
			require.Equal(t, string(pub.Properties.CorrelationData), string(p.Props.CorrelationData))
			if pub.Properties.TopicAlias != nil {
				require.Equal(t, *pub.Properties.TopicAlias, p.Props.TopicAlias)
			}
			if pub.Properties.MessageExpiry != nil {
				require.Equal(t, *pub.Properties.MessageExpiry, p.Props.MessageExpiry)
			}
		case 2:
			s := &paho.Subscribe{PacketID: uint16(1 + g.r.IntN(65535)), Properties: &paho.Properties{User: g.user()}}
			if g.bit() {
				id := 1 + g.r.IntN(268_435_455)
				s.Properties.SubscriptionIdentifier = &id
			}
			for n := 1 + g.r.IntN(4); n > 0; n-- {
				o := paho.SubOptions{Topic: g.filter(), QoS: byte(g.r.IntN(3)), RetainHandling: byte(g.r.IntN(3)),
					NoLocal: g.bit(), RetainAsPublished: g.bit()}
				s.Subscriptions = append(s.Subscriptions, o)
			}
			raw := writeTo(t, func(b *bytes.Buffer) error { _, err := s.WriteTo(b); return err })
			p, err := Parse(raw, V5, Limits{})
			require.NoError(t, err, "%s\n%x", s, raw)
			require.Equal(t, s.PacketID, p.PacketID)
			require.Len(t, p.Subscriptions, len(s.Subscriptions))
			for j, o := range s.Subscriptions {
				got := p.Subscriptions[j]
				require.Equal(t, o.Topic, string(got.Filter))
				require.Equal(t, o.QoS, got.QoS)
				require.Equal(t, o.NoLocal, got.NoLocal)
				require.Equal(t, o.RetainAsPublished, got.RetainAsPublished)
				require.Equal(t, o.RetainHandling, got.RetainHandling)
			}
			if s.Properties.SubscriptionIdentifier != nil {
				require.Equal(t, *s.Properties.SubscriptionIdentifier, p.Props.SubscriptionID)
			}
		case 3:
			u := &paho.Unsubscribe{PacketID: uint16(1 + g.r.IntN(65535)), Properties: &paho.Properties{User: g.user()}}
			for n := 1 + g.r.IntN(3); n > 0; n-- {
				u.Topics = append(u.Topics, g.filter())
			}
			raw := writeTo(t, func(b *bytes.Buffer) error { _, err := u.WriteTo(b); return err })
			p, err := Parse(raw, V5, Limits{})
			require.NoError(t, err, "%s\n%x", u, raw)
			require.Len(t, p.Subscriptions, len(u.Topics))
			for j, f := range u.Topics {
				require.Equal(t, f, string(p.Subscriptions[j].Filter))
			}
		case 4:
			id := uint16(1 + g.r.IntN(65535))
			var raw []byte
			var want ReasonCode
			switch g.r.IntN(4) {
			case 0:
				a := &paho.Puback{PacketID: id, ReasonCode: []byte{0, 0x10, 0x87, 0x97}[g.r.IntN(4)], Properties: &paho.Properties{ReasonString: g.pick("", "no")}}
				raw, want = writeTo(t, func(b *bytes.Buffer) error { _, err := a.WriteTo(b); return err }), ReasonCode(a.ReasonCode)
			case 1:
				a := &paho.Pubrec{PacketID: id, ReasonCode: []byte{0, 0x80}[g.r.IntN(2)], Properties: &paho.Properties{}}
				raw, want = writeTo(t, func(b *bytes.Buffer) error { _, err := a.WriteTo(b); return err }), ReasonCode(a.ReasonCode)
			case 2:
				a := &paho.Pubrel{PacketID: id, ReasonCode: []byte{0, 0x92}[g.r.IntN(2)], Properties: &paho.Properties{}}
				raw, want = writeTo(t, func(b *bytes.Buffer) error { _, err := a.WriteTo(b); return err }), ReasonCode(a.ReasonCode)
			default:
				a := &paho.Pubcomp{PacketID: id, ReasonCode: []byte{0, 0x92}[g.r.IntN(2)], Properties: &paho.Properties{}}
				raw, want = writeTo(t, func(b *bytes.Buffer) error { _, err := a.WriteTo(b); return err }), ReasonCode(a.ReasonCode)
			}
			p, err := Parse(raw, V5, Limits{})
			require.NoError(t, err, "%x", raw)
			require.Equal(t, id, p.PacketID)
			require.Equal(t, want, p.ReasonCode)
		case 5:
			if g.bit() {
				d := &paho.Disconnect{ReasonCode: []byte{0, 0x04, 0x80, 0x98}[g.r.IntN(4)], Properties: &paho.Properties{User: g.user()}}
				raw := writeTo(t, func(b *bytes.Buffer) error { _, err := d.WriteTo(b); return err })
				p, err := Parse(raw, V5, Limits{})
				require.NoError(t, err, "%x", raw)
				require.Equal(t, ReasonCode(d.ReasonCode), p.ReasonCode)
			} else {
				a := &paho.Auth{ReasonCode: []byte{0x18, 0x19}[g.r.IntN(2)], Properties: &paho.Properties{AuthMethod: "SCRAM-SHA-1", AuthData: g.bytes(8)}}
				raw := writeTo(t, func(b *bytes.Buffer) error { _, err := a.WriteTo(b); return err })
				p, err := Parse(raw, V5, Limits{})
				require.NoError(t, err, "%x", raw)
				require.Equal(t, ReasonCode(a.ReasonCode), p.ReasonCode)
				require.Equal(t, "SCRAM-SHA-1", string(p.Props.AuthMethod))
			}
		}
	}
}

// mochiPackets are valid packets encoded by mochi-mqtt for a version.
func mochiPackets(t testing.TB, g gen, v byte) [][]byte {
	t.Helper()
	enc := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var out [][]byte
	conn := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Connect}, ProtocolVersion: v,
		Connect: mochi.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: g.pick("mochi-1", "")}}
	if g.bit() {
		conn.Connect.UsernameFlag, conn.Connect.Username = true, []byte("user")
		conn.Connect.PasswordFlag, conn.Connect.Password = true, []byte("pw")
	}
	if g.bit() {
		conn.Connect.WillFlag, conn.Connect.WillTopic, conn.Connect.WillPayload, conn.Connect.WillQos = true, g.topic(), []byte("bye"), 1
	}
	out = append(out, enc(conn.ConnectEncode))
	qos := byte(g.r.IntN(3))
	pub := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Publish, Qos: qos, Retain: g.bit()}, ProtocolVersion: v,
		TopicName: g.topic(), Payload: g.bytes(40)}
	if qos > 0 {
		pub.PacketID = uint16(1 + g.r.IntN(1000))
	}
	out = append(out, enc(pub.PublishEncode))
	sub := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Subscribe, Qos: 1}, ProtocolVersion: v, PacketID: 7,
		Filters: mochi.Subscriptions{{Filter: g.filter(), Qos: byte(g.r.IntN(3))}, {Filter: g.filter()}}}
	out = append(out, enc(sub.SubscribeEncode))
	unsub := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Unsubscribe, Qos: 1}, ProtocolVersion: v, PacketID: 8,
		Filters: mochi.Subscriptions{{Filter: g.filter()}}}
	out = append(out, enc(unsub.UnsubscribeEncode))
	for _, typ := range []byte{mochi.Puback, mochi.Pubrec, mochi.Pubrel, mochi.Pubcomp} {
		a := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: typ}, ProtocolVersion: v, PacketID: 9}
		if typ == mochi.Pubrel {
			a.FixedHeader.Qos = 1
		}
		switch typ {
		case mochi.Puback:
			out = append(out, enc(a.PubackEncode))
		case mochi.Pubrec:
			out = append(out, enc(a.PubrecEncode))
		case mochi.Pubrel:
			out = append(out, enc(a.PubrelEncode))
		default:
			out = append(out, enc(a.PubcompEncode))
		}
	}
	ping := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Pingreq}, ProtocolVersion: v}
	out = append(out, enc(ping.PingreqEncode))
	disc := &mochi.Packet{FixedHeader: mochi.FixedHeader{Type: mochi.Disconnect}, ProtocolVersion: v}
	out = append(out, enc(disc.DisconnectEncode))
	return out
}

func TestRoundTripMochi(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(13, 14))}
	for i := 0; i < 300; i++ {
		for _, v := range []byte{4, 5} {
			for j, raw := range mochiPackets(t, g, v) {
				p, err := Parse(raw, Version(v), Limits{})
				require.NoError(t, err, "version %d packet %d: %x", v, j, raw)
				if p.Type == CONNECT {
					require.Equal(t, Version(v), p.Connect.Level)
				}
			}
		}
	}
}

// seedCorpus is every kind of valid packet, for the fuzz targets.
func seedCorpus(t testing.TB) [][]byte {
	g := gen{rand.New(rand.NewPCG(15, 16))}
	var out [][]byte
	for _, v := range []byte{4, 5} {
		out = append(out, mochiPackets(t, g, v)...)
	}
	for _, c := range validCases() {
		out = append(out, c.raw)
	}
	for _, c := range malformedCases() {
		out = append(out, c.raw)
	}
	pub := &paho.Publish{Topic: "a/b", QoS: 1, PacketID: 3, Payload: []byte("x"), Properties: &paho.Properties{User: []paho.User{{Key: "k", Value: "v"}}}}
	out = append(out, writeTo(t, func(b *bytes.Buffer) error { _, err := pub.WriteTo(b); return err }))
	return out
}

func FuzzParse(f *testing.F) {
	for _, raw := range seedCorpus(f) {
		f.Add(raw, byte(4))
		f.Add(raw, byte(5))
	}
	f.Fuzz(func(t *testing.T, raw []byte, v byte) {
		p, err := Parse(raw, Version(v), Limits{})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error is not an *Error: %T %v", err, err)
			}
			return
		}
		// A packet that parses parses the same again, and its views lie
		// inside the input.
		q, err := Parse(raw, Version(v), Limits{})
		if err != nil || q.Type != p.Type || q.Remaining != p.Remaining {
			t.Fatalf("parsing is not deterministic: %v", err)
		}
		if p.Type == PUBLISH && len(p.Publish.Payload) > len(raw) {
			t.Fatal("payload larger than the packet")
		}
	})
}

func FuzzReader(f *testing.F) {
	corpus := seedCorpus(f)
	for i, raw := range corpus {
		f.Add(append(append([]byte(nil), corpus[0]...), raw...))
		if i%7 == 0 {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		lim := Limits{MaxPacketSize: 4096, MaxConnectSize: 1024}
		r := NewReader(bytes.NewReader(stream), lim)
		for n := 0; n < 1000; n++ {
			p, err := r.Read()
			if cap(r.buf) > 2*4096 {
				t.Fatalf("buffer grew to %d bytes with a 4096-byte limit", cap(r.buf))
			}
			if err != nil {
				return
			}
			if len(p.Raw) > 4096 {
				t.Fatalf("a %d-byte packet passed a 4096-byte limit", len(p.Raw))
			}
			if n == 0 && p.Type != CONNECT {
				t.Fatalf("first packet %s is not CONNECT", p.Type)
			}
		}
	})
}
