package packets

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The watch reads the server's stream however the writes cut it.
func TestConnackWatch(t *testing.T) {
	connack311 := []byte{0x20, 0x02, 0x00, 0x00}
	refused311 := []byte{0x20, 0x02, 0x00, 0x05}
	connack5 := []byte{0x20, 0x06, 0x01, 0x00, 0x03, 0x22, 0x00, 0x0a} // session present, Topic Alias Maximum 10
	refused5 := []byte{0x20, 0x03, 0x00, 0x86, 0x00}
	auth5 := []byte{0xf0, 0x05, 0x18, 0x03, 0x15, 0x00, 0x00} // AUTH continue, a method property
	publish := []byte{0x30, 0x05, 0x00, 0x01, 'a', 'h', 'i'}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		stream   []byte
		decided  bool
		accepted bool
	}{
		{"3.1.1 accepted", connack311, true, true},
		{"3.1.1 refused", refused311, true, false},
		{"5.0 accepted, properties", connack5, true, true},
		{"5.0 refused", refused5, true, false},
		{"with what follows", cat(connack311, publish, publish), true, true},
		{"after an AUTH exchange", cat(auth5, auth5, connack5), true, true},
		{"refused after AUTH", cat(auth5, refused5), true, false},
		{"reserved flags set", []byte{0x21, 0x02, 0x00, 0x00}, true, false},
		{"too short", []byte{0x20, 0x01, 0x00, 0xd0, 0x00}, true, false},
		{"empty", []byte{0x20, 0x00}, true, false},
		{"half a CONNACK", connack311[:3], false, false},
		{"only AUTH", auth5, false, false},
	} {
		// Every way of cutting the stream in writes of 1, 2, 3 … bytes
		// reads the same.
		for size := 1; size <= len(tc.stream); size++ {
			var w connackWatch
			decided, accepted := false, false
			for at := 0; at < len(tc.stream); at += size {
				if d, a := w.feed(tc.stream[at:min(at+size, len(tc.stream))]); d {
					require.False(t, decided, "%s: decided twice", tc.name)
					decided, accepted = d, a
				}
			}
			assert.Equal(t, tc.decided, decided, "%s, writes of %d", tc.name, size)
			assert.Equal(t, tc.accepted, accepted, "%s, writes of %d", tc.name, size)
		}
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:1883":                   "192.0.2.7",
		"[::ffff:192.0.2.7]:1883":          "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:1883":      "2001:db8:1:2::",
		"[2001:db8:1:2:ffff::1%eth0]:1883": "2001:db8:1:2::",
	} {
		ap := netip.MustParseAddrPort(in)
		assert.Equal(t, want, addrKey(net.TCPAddrFromAddrPort(ap)).String(), in)
	}
	assert.Equal(t, netip.Addr{}, addrKey(&net.UnixAddr{Name: "@", Net: "unix"}), "no IP: one bucket")
}

// dialFrom connects from a loopback address of the test's choosing
// (127.0.0.0/8 is all loopback on Linux), so that one machine can play
// many clients.
func dialFrom(t testing.TB, l *Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// acceptN accepts n connections and starts a reader on each, as a
// server does; each reader's error arrives on the returned channel.
func acceptN(t testing.TB, l *Listener, n int) ([]*Conn, chan connErr) {
	t.Helper()
	conns := make([]*Conn, n)
	errs := make(chan connErr, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i := range conns {
		c, err := l.Accept()
		require.NoError(t, err)
		conns[i] = c.(*Conn)
		go func(i int, c *Conn) {
			var b [1]byte
			_, err := c.Read(b[:])
			errs <- connErr{i, err}
		}(i, conns[i])
	}
	return conns, errs
}

type connErr struct {
	i   int
	err error
}

// Over the per-address cap, the address's oldest pending connections
// are closed, in order, and each reports why; other addresses are not
// touched.
func TestPendingPerAddressClosesTheOldest(t *testing.T) {
	var r rejects
	l, _ := serve(t, ListenerConfig{MaxPendingPerAddress: 3, OnReject: r.record})
	dialFrom(t, l, "127.0.0.2")
	for range 5 {
		dialFrom(t, l, "127.0.0.3")
	}
	conns, errs := acceptN(t, l, 6)
	closed := map[int]bool{}
	for range 2 {
		select {
		case e := <-errs:
			closed[e.i] = true
			var perr *PendingError
			require.ErrorAs(t, e.err, &perr)
			assert.True(t, errors.Is(e.err, ErrTooManyPending))
			assert.Equal(t, PendingError{Addr: netip.MustParseAddr("127.0.0.3"), PerAddress: true, Limit: 3}, *perr)
			assert.Contains(t, e.err.Error(), "MaxPendingPerAddress")
		case <-time.After(10 * time.Second):
			t.Fatal("no connection was closed")
		}
	}
	assert.Equal(t, map[int]bool{1: true, 2: true}, closed, "127.0.0.3's two oldest")
	for i, c := range conns {
		assert.Equal(t, i != 1 && i != 2, c.Pending(), "connection %d", i)
	}
	st := l.Pending()
	assert.Equal(t, PendingStats{Pending: 4, Addresses: 2, EvictedPerAddress: 2}, st)
	r.mu.Lock()
	assert.Len(t, r.errs, 2, "OnReject heard of both")
	r.mu.Unlock()
}

// A CONNACK with reason code 0 ends the pending time: an accepted client
// is never closed to make room, however many connections come after it.
// One that refuses leaves the connection pending until it closes.
func TestPendingEndsWithASuccessfulConnack(t *testing.T) {
	l, _ := serve(t, ListenerConfig{MaxPending: 4})
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		dialFrom(t, l, from)
	}
	conns, errs := acceptN(t, l, 3)
	accepted, refused := conns[0], conns[1]

	// Written as a buffered writer would: the CONNACK cut in two, its
	// end together with a PUBLISH.
	_, err := accepted.Write([]byte{0x20, 0x02})
	require.NoError(t, err)
	assert.True(t, accepted.Pending(), "half a CONNACK decides nothing")
	_, err = accepted.Write([]byte{0x00, 0x00, 0x30, 0x03, 0x00, 0x01, 'a'})
	require.NoError(t, err)
	assert.False(t, accepted.Pending())
	_, err = refused.Write(AppendConnack(nil, V311, false, 5))
	require.NoError(t, err)
	assert.True(t, refused.Pending(), "refused: still pending")
	assert.Equal(t, 2, l.Pending().Pending)

	// Four more: the cap of 4 closes the two oldest pending (refused,
	// then the third), never the accepted one.
	for _, from := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"} {
		dialFrom(t, l, from)
	}
	acceptN(t, l, 4)
	got := map[int]bool{}
	for range 2 {
		select {
		case e := <-errs:
			assert.ErrorIs(t, e.err, ErrTooManyPending)
			got[e.i] = true
		case <-time.After(10 * time.Second):
			t.Fatal("no connection was closed")
		}
	}
	assert.Equal(t, map[int]bool{1: true, 2: true}, got)
	assert.Equal(t, uint64(2), l.Pending().EvictedTotal)
	_, err = accepted.Write([]byte{0xd0, 0x00})
	assert.NoError(t, err, "the accepted connection is open")
	assert.Equal(t, 4, l.Pending().Pending)
}

func TestPendingCloseAndAdmit(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	dial(t, l)
	dial(t, l)
	a, b := accept().(*Conn), accept().(*Conn)
	assert.Equal(t, 2, l.Pending().Pending)
	a.Admit()
	assert.False(t, a.Pending())
	require.NoError(t, b.Close())
	assert.False(t, b.Pending())
	assert.Equal(t, PendingStats{}, l.Pending(), "nothing left, no address kept")
}

// 3,000 connections from one address that send nothing, one byte or
// half a CONNECT: the default per-address cap keeps the newest 256 and
// closes the rest, oldest first.
func TestPendingFloodFromOneAddress(t *testing.T) {
	const n = 3000
	l, _ := serve(t, ListenerConfig{})
	openIdle(t, l, n, "127.0.0.9")
	conns, errs := acceptN(t, l, n)
	var order []int
	timeout := time.After(time.Minute)
	for len(order) < n-DefaultMaxPendingPerAddress {
		select {
		case e := <-errs:
			require.ErrorIs(t, e.err, ErrTooManyPending, "connection %d", e.i)
			order = append(order, e.i)
		case <-timeout:
			t.Fatalf("%d connections closed in a minute", len(order))
		}
	}
	closed := map[int]bool{}
	for _, i := range order {
		closed[i] = true
	}
	for i, c := range conns {
		want := i >= n-DefaultMaxPendingPerAddress
		if c.Pending() != want || closed[i] == want {
			t.Fatalf("connection %d: pending %v, closed %v; only the newest %d stay", i, c.Pending(), closed[i], DefaultMaxPendingPerAddress)
		}
	}
	st := l.Pending()
	assert.Equal(t, DefaultMaxPendingPerAddress, st.Pending)
	assert.Equal(t, uint64(n-DefaultMaxPendingPerAddress), st.EvictedPerAddress)
}

// openIdle opens n connections from one address that each send nothing,
// one byte, or the first half of a CONNECT that announces 64 KiB.
func openIdle(t testing.TB, l *Listener, n int, from string) []net.Conn {
	t.Helper()
	out := make([]net.Conn, n)
	for i := range out {
		c := dialFrom(t, l, from)
		switch i % 3 {
		case 1:
			c.Write([]byte{0x10})
		case 2:
			c.Write([]byte{0x10, 0xfb, 0xff, 0x03, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00})
		}
		out[i] = c
	}
	return out
}

// What a pending connection costs the server's process in this
// package: the socket, the Conn, its Reader (no buffer until bytes
// arrive, then only what arrived) and the goroutine a server reads it
// with. Measured on a 2-core amd64 VM (Go 1.26), a third of the clients
// sending nothing, a third one byte, a third the first 13 bytes of a
// CONNECT that announces 64 KiB: 5.5 KiB each, of which 4 KiB is the
// reading goroutine's stack and 1.4 KiB the heap (0.4 KiB of it the
// socket's). Before the Reader allocated by what arrives it was 32.5
// KiB: a 4 KiB read buffer from the accept, and the announced 64 KiB
// for every third connection.
func TestPendingMemory(t *testing.T) {
	if testenv.RaceEnabled {
		t.Skip("memory figures mean little under the race detector")
	}
	const n = 3000
	const bound = 8 << 10 // bytes per pending connection
	l, _ := serve(t, ListenerConfig{MaxPendingPerAddress: -1, MaxPending: -1})
	// The clients' side first: it is in this process too, and not the
	// server's cost.
	openIdle(t, l, n, "127.0.0.10")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns, _ := acceptN(t, l, n)
	// The readers block once they have read what the clients sent.
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc+after.StackInuse) - int64(before.HeapAlloc+before.StackInuse)) / n
	t.Logf("%d pending connections: %d bytes each (heap %d, stacks %d)", n, per,
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, (int64(after.StackInuse)-int64(before.StackInuse))/n)
	assert.Less(t, per, int64(bound))
	assert.Equal(t, n, l.Pending().Pending)
	runtime.KeepAlive(conns)
}

// While idle sockets from many addresses keep the total cap saturated, a
// device that connects and is accepted at once is never the oldest: it
// gets its CONNACK and stays connected.
func TestPendingCapSaturatedLegitimateClientConnects(t *testing.T) {
	const limit, flood, devices = 500, 3000, 20
	l, _ := serve(t, ListenerConfig{MaxPending: limit})
	// A server: accept, read the CONNECT, answer CONNACK 0.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				if _, err := c.Read(buf); err != nil {
					return
				}
				if _, err := c.Write(AppendConnack(nil, V311, false, 0)); err != nil {
					return
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // the flood: idle sockets from 127.0.1.x until told or done
		defer wg.Done()
		for i := range flood {
			select {
			case <-stop:
				return
			default:
			}
			if i >= limit {
				// Past the cap, a newcomer a millisecond: each evicts
				// the oldest, and a device has hundreds of
				// milliseconds before it would be the oldest.
				time.Sleep(time.Millisecond)
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%250+1))}, Timeout: 10 * time.Second}
			if c, err := d.Dial("tcp", l.Addr().String()); err == nil {
				t.Cleanup(func() { c.Close() })
			}
		}
	}()
	for deadline := time.Now().Add(time.Minute); l.Pending().Pending < limit; {
		require.True(t, time.Now().Before(deadline), "the flood never filled the cap")
		time.Sleep(time.Millisecond)
	}
	var connected []net.Conn
	for i := range devices {
		c := dialFrom(t, l, "127.0.2.1")
		c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err := c.Write(connect311(0x02, "device"))
		require.NoError(t, err)
		ack := make([]byte, 4)
		_, err = io.ReadFull(c, ack)
		require.NoError(t, err, "device %d", i)
		assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x00}, ack)
		connected = append(connected, c)
	}
	close(stop)
	wg.Wait()
	st := l.Pending()
	assert.NotZero(t, st.EvictedTotal, "the flood was being evicted")
	assert.LessOrEqual(t, st.Pending, limit)
	// Every device is still connected: a PINGREQ gets through.
	for _, c := range connected {
		_, err := c.Write([]byte{0xc0, 0x00})
		assert.NoError(t, err)
	}
}
