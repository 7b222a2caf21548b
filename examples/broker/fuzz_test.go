package main

import (
	"encoding/hex"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mqttguard/mqttguard/packets"
)

// pipeListener hands out in-memory connections, so that a fuzz run needs
// no ports.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "127.0.0.1:1" }

// closeNotifier tells when the server has closed its side.
type closeNotifier struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifier) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

const fuzzMaxPacket = 64 << 10

// FuzzBrokerStream feeds arbitrary client byte streams through the packet
// validator into a real, bare mochi-mqtt (allow-all authentication, so
// every packet that gets through reaches mochi's decoders). mochi must
// never panic — a panic on a client's read goroutine kills the process —
// and must not allocate by a packet's claim: a connection costs a bounded
// amount however many bytes it declares.
func FuzzBrokerStream(f *testing.F) {
	f.Add(append(e2e.RawConnect(5, "c", "", ""), e2e.CrashSubscribe...))
	f.Add(append(e2e.RawConnect(4, "c", "u", "p"), 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00))
	f.Add(append(e2e.RawConnect(5, "c", "", ""), 0x30, 0xff, 0xff, 0xff, 0x7f)) // claims 256 MB
	{
		for _, c := range e2e.Corpus(f, "../..") {
			pkt, _ := hex.DecodeString(c.Hex)
			v := c.Version
			if v == 3 {
				v = 4
			}
			f.Add(append(e2e.RawConnect(v, "c", "", ""), pkt...))
		}
	}

	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	srv.AddHook(new(auth.AllowHook), nil)
	guarded := packets.Listen(ln, packets.ListenerConfig{Limits: packets.Limits{MaxPacketSize: fuzzMaxPacket},
		ConnectTimeout: time.Second, TopicAliasMaximum: srv.Options.Capabilities.TopicAliasMaximum})
	if err := srv.AddListener(listeners.NewNet("fuzz", guarded)); err != nil {
		f.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		f.Fatal(err)
	}
	defer srv.Close()

	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		srvSide := &closeNotifier{Conn: server, closed: make(chan struct{})}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		ln.conns <- srvSide
		client.SetDeadline(time.Now().Add(200 * time.Millisecond))
		go func() { // drain what the broker writes, so it never blocks
			buf := make([]byte, 4096)
			for {
				if _, err := client.Read(buf); err != nil {
					return
				}
			}
		}()
		client.Write(stream)
		// Give the broker time to act on everything before the client
		// goes (a closed pipe would fail its CONNACK and end the
		// connection before the rest of the stream is decoded).
		select {
		case <-srvSide.closed:
		case <-time.After(50 * time.Millisecond):
		}
		client.Close()
		select {
		case <-srvSide.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the broker did not close the connection after the client did")
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64*fuzzMaxPacket+16<<20 {
			t.Fatalf("one connection of %d bytes allocated %d bytes", len(stream), grew)
		}
	})
}
