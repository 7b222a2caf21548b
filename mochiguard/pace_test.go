package mochiguard_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/internal/loadgen"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/mochiguard"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/trust"
)

// paceServer serves an allow-all Guard in mochi with outbound queues of
// queue packets.
func paceServer(t *testing.T, queue int32, o mochiguard.Options) string {
	t.Helper()
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Bans: &trust.Bans{}})
	require.NoError(t, err)
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = queue
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: slog.New(slog.DiscardHandler)})
	hook := mochiguard.New(g, srv, o)
	require.NoError(t, srv.AddHook(hook, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, srv.AddListener(hook.Listen("tcp", ln, packets.ListenerConfig{})))
	require.NoError(t, srv.Serve())
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Fan-in at QoS 0 into a subscriber that reads: 20 publishers as fast
// as they can, a queue of 64. mochi alone drops what finds the queue
// full (-1 below loses most of it); paced, every message arrives. The
// wait is long so that a slow run (-race) cannot make the subscriber
// look congested.
func TestFanInDeliversEverything(t *testing.T) {
	addr := paceServer(t, 64, mochiguard.Options{DeliveryWait: 10 * time.Second})
	res, err := loadgen.Run(context.Background(), loadgen.Config{Addr: addr, Publishers: 20, Subscribers: 1,
		QoS: 0, Payload: 1024, Messages: 1000, Filter: "load/#",
		Topic: func(i int) string { return fmt.Sprintf("load/%d", i) }, Settle: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 20_000, res.Sent)
	assert.Zero(t, res.Lost(), "fan-in at QoS 0 lost messages a reading subscriber could take")
}

// A subscriber that never reads must not hold up the publishers of the
// topics it may read: its queue fills, the first deliveries wait
// DeliveryWait for it, and then it is congested, so what does not fit
// is dropped for it alone. The publisher's 20,000 messages (20 MiB,
// more than the kernel's socket buffers hold) and a subscriber that
// reads get through; unbounded, each delivery would wait: 20,000 ×
// 200 ms.
func TestStalledSubscriberDoesNotStallPublishers(t *testing.T) {
	addr := paceServer(t, 64, mochiguard.Options{DeliveryWait: 200 * time.Millisecond})

	stalled := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, stalled, "stalled", "u", "p", nil))
	mqtttest.Subscribe5(t, stalled, "load/#") // and never reads again

	reader := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, reader, "reader", "u", "p", nil))
	mqtttest.Subscribe5(t, reader, "load/last")

	pub := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, pub, "pub", "u", "p", nil))
	// An MQTT 5 PUBLISH, QoS 0: topic, no properties, 1 KiB.
	body := append([]byte{0, 9}, "load/bulk\x00"...)
	body = append(body, make([]byte, 1024)...)
	msg := append(packets.AppendVBI([]byte{0x30}, len(body)), body...)
	batch := make([]byte, 0, 100*len(msg))
	for range 100 {
		batch = append(batch, msg...)
	}
	pub.SetWriteDeadline(time.Now().Add(60 * time.Second))
	for range 200 {
		_, err := pub.Write(batch)
		require.NoError(t, err, "the broker stopped reading the publisher: deliveries to a stalled subscriber held it up")
	}
	assert.Equal(t, byte(0), mqtttest.Publish5(t, pub, "load/last", 1, 1), "the publisher's last message is acknowledged")
	assert.Equal(t, 1, mqtttest.Count(mqtttest.Received(t, reader, time.Second), "load/last"),
		"a subscriber that reads gets the publisher's last message")
}

// Many subscribers that do not read: a publisher waits for each in turn,
// so 40 of them at 250 ms would hold it 10 s a round. The broker-wide
// budget of waits that end congested (a tenth of the time, bursts of 4)
// lets its 5,000 messages through in a few seconds.
func TestManyStalledSubscribersDoNotStallPublishers(t *testing.T) {
	addr := paceServer(t, 64, mochiguard.Options{DeliveryWait: 250 * time.Millisecond})
	// Small receive windows: the kernel holds little for each, and their
	// queues fill after a few messages.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	for i := range 40 {
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		require.Equal(t, byte(0), mqtttest.Connect5(t, c, fmt.Sprint("stalled-", i), "u", "p", nil))
		mqtttest.Subscribe5(t, c, "load/#") // and never reads again
	}
	pub := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, pub, "pub", "u", "p", nil))
	var batch []byte
	for range 100 {
		batch = appendPublish5(batch, "load/bulk", 0, 0, 1024)
	}
	// 6 s: unbounded, the first round of waits alone is 10 s.
	pub.SetWriteDeadline(time.Now().Add(6 * time.Second))
	for range 50 {
		_, err := pub.Write(batch)
		require.NoError(t, err, "the broker stopped reading the publisher: it waited for the stalled subscribers one by one")
	}
	assert.Equal(t, byte(0), mqtttest.Publish5(t, pub, "load/last", 1, 1), "the publisher's last message is acknowledged")
}
