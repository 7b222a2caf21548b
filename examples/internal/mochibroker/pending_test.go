package mochibroker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/examples/internal/mochibroker"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startBroker runs the example broker (mochi-mqtt behind the stack) on
// a free loopback port, plain MQTT only, with the default configuration.
func startBroker(t *testing.T) *mochibroker.Broker {
	t.Helper()
	dir := e2e.PrepareDir(t)
	_, err := guardstack.Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	cfg, err := guardconf.LoadConfig(filepath.Join(dir, guardstack.ConfigFile), nil)
	require.NoError(t, err)
	cfg.MQTT.Port, cfg.MQTT.EnableTLS, cfg.Admin.Listen = 0, false, "127.0.0.1:0"
	b, err := mochibroker.Start(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// idle opens n connections to addr from the loopback address from,
// each sending nothing, one byte, or the start of a CONNECT that
// announces 64 KiB.
func idle(t *testing.T, addr string, n int, from func(i int) string) []net.Conn {
	t.Helper()
	out := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range out {
			c.Close()
		}
	})
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from(i))}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		switch i % 3 {
		case 1:
			c.Write([]byte{0x10})
		case 2:
			c.Write([]byte{0x10, 0xfb, 0xff, 0x03, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00})
		}
		out = append(out, c)
	}
	return out
}

// waitPending waits until the broker has accepted all n connections,
// want of them still pending.
func waitPending(t *testing.T, b *mochibroker.Broker, n, want int) packets.PendingStats {
	t.Helper()
	var ps packets.PendingStats
	require.Eventually(t, func() bool {
		ps = b.Pending()
		return ps.Pending+int(ps.EvictedPerAddress+ps.EvictedTotal) == n && ps.Pending == want
	}, 30*time.Second, 10*time.Millisecond, "want %d accepted, %d pending", n, want)
	return ps
}

// What 3,000 connections that never authenticate cost the example
// broker: the packet validator's Conn and Reader, and mochi-mqtt's
// client with its two goroutines, read buffer and outbound queue. Spread
// over 50 addresses, 60 each, under the default caps.
//
// Measured on a 2-core amd64 VM (Go 1.26), heap and goroutine stacks,
// the clients' own sockets included (they are in this process): 27 KiB
// each — the validator 1.4 KiB; mochi a 2 KiB bufio.Reader, 8 KiB of
// outbound queue (MaximumClientWritesPending, 1,024 pointers; its
// default of 8,192 made it 64 KiB) and its client record, ~2 KiB; and
// the goroutines' stacks, 12 KiB. It was 88 KiB (heap 76 KiB) before the
// outbound queue was cut and the validator stopped allocating a 4 KiB
// read buffer at accept; the issue measured 54 KiB of RSS per socket.
func TestPendingMemoryOfTheExampleBroker(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("memory figures mean little under the race detector")
	}
	const n, addrs = 3000, 50
	const bound = 40 << 10 // bytes per pending connection
	b := startBroker(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idle(t, b.Addr("tcp"), n, func(i int) string { return fmt.Sprintf("127.0.3.%d", i%addrs+1) })
	ps := waitPending(t, b, n, n)
	time.Sleep(200 * time.Millisecond) // every reader is blocked
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc+after.StackInuse) - int64(before.HeapAlloc+before.StackInuse)) / n
	t.Logf("%d pending connections: %d bytes each (heap %d, stacks %d)", n, per,
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, (int64(after.StackInuse)-int64(before.StackInuse))/n)
	assert.Less(t, per, int64(bound))
	assert.Equal(t, packets.PendingStats{Pending: n, Addresses: addrs}, ps, "under the caps: nothing closed")
}

// 3,000 idle connections from one address: the default per-address cap
// keeps 256 and closes the oldest of the rest; meanwhile a device with a
// password connects from the same address and is accepted.
func TestPendingCapOfTheExampleBroker(t *testing.T) {
	const n = 3000
	b := startBroker(t)
	addr := b.Addr("tcp")
	idle(t, addr, n, func(int) string { return "127.0.4.1" })
	ps := waitPending(t, b, n, packets.DefaultMaxPendingPerAddress)
	assert.Equal(t, uint64(n-packets.DefaultMaxPendingPerAddress), ps.EvictedPerAddress)

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.4.1")}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	connect := (&e2e.Raw{V: packets.V311}).ConnectPacket(e2e.RawOpts{ID: "sensor-7", User: "sensor1", Pass: e2e.Passwords["sensor1"]})
	_, err = conn.Write(connect)
	require.NoError(t, err)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	ack := make([]byte, 4)
	_, err = io.ReadFull(conn, ack)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x00}, ack, "CONNACK, accepted")
	ps = b.Pending()
	assert.Equal(t, packets.DefaultMaxPendingPerAddress-1, ps.Pending, "the device's connection closed the oldest; accepted, it is no longer pending")
	assert.Equal(t, uint64(n-packets.DefaultMaxPendingPerAddress+1), ps.EvictedPerAddress)
}
