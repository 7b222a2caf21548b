package main

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Conformance: where the example broker let mochi-mqtt's defaults through
// or was stricter than MQTT. Each case runs against the example broker
// and mosquitto 2.0 with the same accounts and acl_file, and asserts the
// bytes both send where mosquitto is right.

// pair is the example broker and mosquitto, configured alike.
type pair struct {
	name  string
	addr  string
	ours  bool
	admin func(t *testing.T, method, path, body string) (int, string)
}

func startPair(t *testing.T, edit func(*guardconf.Config)) []pair {
	t.Helper()
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	dir := e2e.PrepareDir(t)
	e2e.WriteFile(t, dir, "acl", e2e.BobACL)
	ours := startBrokerIn(t, dir, func(c *guardconf.Config) {
		c.Security.RateLimit = guardconf.RateLimitConfig{}
		if edit != nil {
			edit(c)
		}
	})
	theirs := mqtttest.RunMosquitto(t, bin, t.TempDir(), "allow_anonymous false",
		"password_file "+filepath.Join(dir, "passwd"), "acl_file "+filepath.Join(dir, "acl"))
	return []pair{{name: "mqttguard", addr: ours.Addr("tcp"), ours: true, admin: ours.Admin}, {name: "mosquitto", addr: theirs.Addr}}
}

func admin5(t *testing.T, addr, id string) *e2e.Raw {
	c, ack := e2e.ConnectRaw(t, addr, packets.V5, e2e.RawOpts{ID: id, User: "admin", Pass: passwords["admin"]})
	require.Equal(t, reason.Success, ack.ReasonCode)
	return c
}

// 1. A PUBACK and a PUBREC carry a valid reason code and none of the
// publisher's properties: mochi answered a QoS 1 PUBLISH with reason
// 0x01 (not a PUBACK code, [MQTT-3.4.2-1]) and echoed its user
// properties on the PUBACK and the PUBREC.
func TestAcknowledgementsCarryNothingOfThePublish(t *testing.T) {
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			sub := admin5(t, b.addr, "sub")
			sub.Subscribe(e2e.RawSub{Filter: "#", QoS: 2})
			pub := admin5(t, b.addr, "pub")
			props := e2e.Prop(packets.PropUserProperty, [2]string{"trace", "abc"})
			pub.Send(pub.PublishPacket("a/b", "x", 1, false, 7, props))
			assert.Equal(t, []byte{0x40, 0x02, 0x00, 0x07}, pub.Expect(packets.PUBACK).Raw)
			pub.Send(pub.PublishPacket("a/b", "y", 2, false, 8, props))
			assert.Equal(t, []byte{0x50, 0x02, 0x00, 0x08}, pub.Expect(packets.PUBREC).Raw)
			pub.Send(e2e.AckPacket(packets.PUBREL, 8))
			assert.Equal(t, []byte{0x70, 0x02, 0x00, 0x08}, pub.Expect(packets.PUBCOMP).Raw)
		})
	}
}

// 2. A message published without a Message Expiry Interval is delivered
// without one (mochi added a day), and one published with an interval
// keeps it (less the time it waited).
func TestNoExpiryIsAdded(t *testing.T) {
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			sub := admin5(t, b.addr, "sub")
			sub.Subscribe(e2e.RawSub{Filter: "a/#", QoS: 0})
			pub := admin5(t, b.addr, "pub")
			pub.Send(pub.PublishPacket("a/none", "x", 0, false, 0, nil))
			pub.Send(pub.PublishPacket("a/some", "y", 0, false, 0, e2e.Prop(packets.PropMessageExpiry, uint32(300))))
			none := sub.Expect(packets.PUBLISH)
			assert.Equal(t, []byte{0x30, 0x0a, 0x00, 0x06, 'a', '/', 'n', 'o', 'n', 'e', 0x00, 'x'}, none.Raw, "no property at all")
			some := sub.Expect(packets.PUBLISH)
			assert.True(t, some.Props.Has(packets.PropMessageExpiry))
			assert.InDelta(t, 300, some.Props.MessageExpiry, 1)
		})
	}
}

// 3. Topic aliases: the CONNACK advertises a maximum (10, mosquitto's
// default), an alias above it ends the connection with 0x94, and the ACL
// always sees the topic an alias stands for.
func TestTopicAliases(t *testing.T) {
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			_, ack := e2e.ConnectRaw(t, b.addr, packets.V5, e2e.RawOpts{ID: "s1", User: "sensor1", Pass: passwords["sensor1"]})
			assert.Equal(t, uint16(10), ack.Props.TopicAliasMaximum)

			for _, alias := range []uint16{11, 60000} {
				c, _ := e2e.ConnectRaw(t, b.addr, packets.V5, e2e.RawOpts{ID: fmt.Sprint("a", alias), User: "sensor1", Pass: passwords["sensor1"]})
				c.Send(c.PublishPacket("sensors/sensor1/t", "x", 0, false, 0, e2e.Prop(packets.PropTopicAlias, alias)))
				d := c.Expect(packets.DISCONNECT)
				assert.Equal(t, reason.TopicAliasInvalid, d.ReasonCode, "alias %d", alias)
			}

			watch := admin5(t, b.addr, "watch")
			watch.Subscribe(e2e.RawSub{Filter: "#", QoS: 1})
			s1, _ := e2e.ConnectRaw(t, b.addr, packets.V5, e2e.RawOpts{ID: "s1", User: "sensor1", Pass: passwords["sensor1"]})
			alias1 := e2e.Prop(packets.PropTopicAlias, uint16(1))
			s1.Send(s1.PublishPacket("sensors/sensor1/t", "allowed", 1, false, 1, alias1))
			assert.Equal(t, reason.Success, s1.Expect(packets.PUBACK).ReasonCode)
			s1.Send(s1.PublishPacket("secret/x", "remapped", 1, false, 2, alias1)) // alias 1 now means secret/x
			assert.Equal(t, reason.NotAuthorized, s1.Expect(packets.PUBACK).ReasonCode)
			s1.Send(s1.PublishPacket("", "by alias", 1, false, 3, alias1))
			assert.Equal(t, reason.NotAuthorized, s1.Expect(packets.PUBACK).ReasonCode, "the alias stands for secret/x")
			var got []string
			for _, d := range watch.Collect(500*time.Millisecond, true) {
				got = append(got, d.String())
			}
			assert.Equal(t, []string{"sensors/sensor1/t allowed"}, got)
		})
	}
}

// 4. A subscriber that answers a QoS 1 delivery with PUBREC, or a QoS 2
// delivery with PUBACK, breaks the protocol: DISCONNECT 0x82 and close
// (mochi answered the PUBREC with a PUBREL and carried on).
func TestWrongAcknowledgementTypeIsAProtocolError(t *testing.T) {
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range []struct {
				qos   byte
				wrong packets.Type
			}{{1, packets.PUBREC}, {2, packets.PUBACK}} {
				sub := admin5(t, b.addr, fmt.Sprint("sub", c.qos))
				sub.Subscribe(e2e.RawSub{Filter: "x/#", QoS: c.qos})
				pub := admin5(t, b.addr, fmt.Sprint("pub", c.qos))
				pub.Publish("x/y", "z", c.qos, false)
				d := sub.Expect(packets.PUBLISH)
				require.Equal(t, c.qos, d.Publish.QoS)
				sub.Send(e2e.AckPacket(c.wrong, d.PacketID))
				dis, err := sub.Next(2 * time.Second)
				if b.ours || err == nil { // mosquitto 2.0.11 closes without a word
					require.NoError(t, err)
					assert.Equal(t, []byte{0xe0, 0x01, 0x82}, dis.Raw, "QoS %d answered with %v", c.qos, c.wrong)
					_, err = sub.Next(2 * time.Second)
				}
				assert.ErrorIs(t, err, io.EOF, "QoS %d answered with %v: closed", c.qos, c.wrong)
			}
		})
	}
}

// 5. An Authentication Method the broker has no authenticator for is
// refused with CONNACK 0x8C, even with a valid password [MQTT-4.12.0-1].
func TestUnsupportedAuthenticationMethod(t *testing.T) {
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			c, ack := e2e.ConnectRaw(t, b.addr, packets.V5, e2e.RawOpts{ID: "x", User: "admin", Pass: passwords["admin"],
				Props: e2e.Prop(packets.PropAuthMethod, "unsupported")})
			assert.Equal(t, reason.BadAuthenticationMethod, ack.ReasonCode)
			assert.Equal(t, []byte{0x20, 0x03, 0x00, 0x8c, 0x00}, ack.Raw)
			_, err := c.Next(2 * time.Second)
			assert.Error(t, err, "closed")
		})
	}
}

// 6. MQTT 3.1 (MQIsdp, level 3) reserved no CONNECT flag bits and no
// fixed-header flags: such a CONNECT is answered like any other
// (mosquitto accepts it; the validator closed it without a CONNACK).
func TestMQTT31ConnectFlags(t *testing.T) {
	anonymous := []byte{0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x01, 0x00, 0x0a, 0x00, 0x01, 'p'}
	for _, b := range startPair(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			for _, first := range []byte{0x10, 0x14} {
				c := e2e.DialRaw(t, b.addr, packets.V31)
				pkt := append([]byte{first}, anonymous[1:]...)
				c.Send(pkt)
				ack := c.Expect(packets.CONNACK)
				assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x05}, ack.Raw, "% x: answered, and refused as anonymous", pkt)
			}
			c := e2e.DialRaw(t, b.addr, packets.V31)
			connect := c.ConnectPacket(e2e.RawOpts{ID: "p31", User: "admin", Pass: passwords["admin"]})
			connect[0] = 0x14
			connect[11] |= 0x01 // the reserved bit, after 0x14 len 00 06 MQIsdp 03
			c.Send(connect)
			assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x00}, c.Expect(packets.CONNACK).Raw)
			c.Subscribe(e2e.RawSub{Filter: "a", QoS: 1})
			c.Send(c.PublishPacket("a", "works", 0, false, 0, nil))
			got := c.Collect(500*time.Millisecond, true)
			require.Len(t, got, 1)
			assert.Equal(t, "a works", got[0].String())
		})
	}
}
