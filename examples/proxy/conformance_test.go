package main

import (
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The conformance items that reach the proxy (the broker's
// conformance_test.go has them all, side by side with mosquitto).
func TestProxyConformance(t *testing.T) {
	tp := startProxy(t, nil)

	t.Run("unsupported authentication method", func(t *testing.T) {
		c, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "x", User: "admin", Pass: passwords["admin"],
			Props: e2e.Prop(packets.PropAuthMethod, "unsupported")})
		assert.Equal(t, []byte{0x20, 0x03, 0x00, 0x8c, 0x00}, ack.Raw)
		_, err := c.Next(2 * time.Second)
		assert.Error(t, err, "closed")
	})

	t.Run("MQTT 3.1 flags", func(t *testing.T) {
		c := e2e.DialRaw(t, tp.Addr("tcp"), packets.V31)
		connect := c.ConnectPacket(e2e.RawOpts{ID: "p31", User: "admin", Pass: passwords["admin"]})
		connect[0] = 0x14
		connect[11] |= 0x01 // the reserved bit
		c.Send(connect)
		assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x00}, c.Expect(packets.CONNACK).Raw)
		c.Subscribe(e2e.RawSub{Filter: "a", QoS: 1})
		c.Send(c.PublishPacket("a", "works", 0, false, 0, nil))
		got := c.Collect(time.Second, true)
		require.Len(t, got, 1)
		assert.Equal(t, "a works", got[0].String())
	})

	t.Run("topic aliases", func(t *testing.T) {
		c, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "al", User: "sensor1", Pass: passwords["sensor1"]})
		assert.False(t, ack.Props.Has(packets.PropTopicAliasMaximum), "the proxy takes aliases away: none allowed")
		c.Send(c.PublishPacket("sensors/sensor1/t", "x", 0, false, 0, e2e.Prop(packets.PropTopicAlias, uint16(1))))
		assert.Equal(t, reason.TopicAliasInvalid, c.Expect(packets.DISCONNECT).ReasonCode)
	})

	t.Run("acknowledgements", func(t *testing.T) {
		pub, _ := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "pub", User: "admin", Pass: passwords["admin"]})
		watch := tp.raw(t, "watch")
		watch.Sub(t, "#")
		pub.Send(pub.PublishPacket("a/b", "x", 1, false, 7, e2e.Prop(packets.PropUserProperty, [2]string{"trace", "abc"})))
		assert.Equal(t, []byte{0x40, 0x02, 0x00, 0x07}, pub.Expect(packets.PUBACK).Raw)
	})
}
