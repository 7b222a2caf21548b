package packets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve runs a Listener on a free loopback port and returns it with the
// server side of the next connection.
func serve(t *testing.T, cfg ListenerConfig) (*Listener, func() net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := Listen(inner, cfg)
	t.Cleanup(func() { l.Close() })
	return l, func() net.Conn {
		c, err := l.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func dial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

type rejects struct {
	mu   sync.Mutex
	errs []error
	ids  []string
}

func (r *rejects) record(c *Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
	r.ids = append(r.ids, c.ClientID())
}

func TestListenerPassesValidPacketsUnchanged(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	client := dial(t, l)
	server := accept()
	var stream []byte
	for _, p := range [][]byte{connect311(0x02, "dev-1"), publish311(0x02, "a/b", 1, "21.5"), {0xc0, 0}, {0xe0, 0}} {
		stream = append(stream, p...)
	}
	go client.Write(stream)
	got := make([]byte, len(stream))
	_, err := io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, stream, got)
	assert.Equal(t, "dev-1", server.(*Conn).ClientID())
	assert.Equal(t, V311, server.(*Conn).Version())
	client.Close()
	_, err = server.Read(make([]byte, 1))
	assert.Equal(t, io.EOF, err)
}

// MQTT 3.1 did not reserve CONNECT's flag bits; clients of the time set
// them. The Reader accepts them at level 3, and the server behind reads
// them cleared (mochi-mqtt refuses them at every level).
func TestListenerCleansAnMQTT31Connect(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	client := dial(t, l)
	server := accept()
	dirty := []byte{0x14, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x03, 0x00, 0x0a, 0x00, 0x01, 'p'}
	go client.Write(dirty)
	got := make([]byte, len(dirty))
	_, err := io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x0a, 0x00, 0x01, 'p'}, got,
		"fixed header flags and connect flag bit 0 cleared, clean session kept")
	assert.Equal(t, V31, server.(*Conn).Version())

	// MQTT 3.1.1 reserved them.
	client, server = dial(t, l), accept()
	go client.Write([]byte{0x14, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x0a, 0x00, 0x01, 'p'})
	_, err = server.Read(make([]byte, 16))
	var perr *Error
	require.ErrorAs(t, err, &perr)
	assert.Equal(t, "[MQTT-2.1.3-1]", perr.Rule)
}

func TestListenerClosesOnAMalformedPacket(t *testing.T) {
	var r rejects
	l, accept := serve(t, ListenerConfig{OnReject: r.record})
	client := dial(t, l)
	server := accept()
	connect := connect5(0x02, nil, "dev-5")
	bad := publish5(0x06, "a", 1, nil, "x") // QoS 3
	go client.Write(append(append([]byte(nil), connect...), bad...))

	got := make([]byte, len(connect))
	_, err := io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, connect, got, "the CONNECT got through")
	_, err = server.Read(make([]byte, 10))
	var perr *Error
	require.ErrorAs(t, err, &perr)
	assert.Equal(t, reason.MalformedPacket, perr.Code)

	// The v5 client is told why, then the connection is closed.
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(client)
	assert.Equal(t, []byte{0xe0, 0x01, 0x81}, resp)
	_, err = server.Write([]byte{0xd0, 0})
	assert.ErrorIs(t, err, net.ErrClosed, "nothing more is written after the DISCONNECT")
	r.mu.Lock()
	assert.Equal(t, []string{"dev-5"}, r.ids)
	r.mu.Unlock()
}

func TestListenerRefusesAnOversizedPacketBeforeReadingIt(t *testing.T) {
	var r rejects
	l, accept := serve(t, ListenerConfig{OnReject: r.record, Limits: Limits{MaxPacketSize: 1024}})
	client := dial(t, l)
	server := accept()
	// A PUBLISH that claims 200 MB: refused from its header.
	go client.Write(append(connect5(0x02, nil, "big"), 0x30, 0x80, 0x80, 0x80, 0x60))
	_, err := io.ReadFull(server, make([]byte, len(connect5(0x02, nil, "big"))))
	require.NoError(t, err)
	_, err = server.Read(make([]byte, 10))
	assert.Equal(t, reason.PacketTooLarge, CodeOf(err))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(client)
	assert.Equal(t, []byte{0xe0, 0x01, 0x95}, resp)
}

func TestListenerNeedsCONNECTFirst(t *testing.T) {
	var r rejects
	l, accept := serve(t, ListenerConfig{OnReject: r.record})
	client := dial(t, l)
	server := accept()
	go client.Write([]byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}) // SUBSCRIBE first
	_, err := server.Read(make([]byte, 10))
	assert.Equal(t, reason.ProtocolError, CodeOf(err))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(client)
	assert.Empty(t, resp, "no version yet: nothing to say, the connection is closed")
	r.mu.Lock()
	assert.Len(t, r.errs, 1)
	r.mu.Unlock()
}

func TestListenerConnectTimeout(t *testing.T) {
	var r rejects
	l, accept := serve(t, ListenerConfig{OnReject: r.record, ConnectTimeout: 50 * time.Millisecond})
	client := dial(t, l)
	server := accept()
	client.Write([]byte{0x10}) // half a fixed header, then nothing
	_, err := server.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrConnectTimeout)
	r.mu.Lock()
	assert.Equal(t, []error{ErrConnectTimeout}, r.errs)
	r.mu.Unlock()

	// Once CONNECT is in, the timeout no longer applies.
	client = dial(t, l)
	server = accept()
	client.Write(connect311(0x02, "slow"))
	_, err = io.ReadFull(server, make([]byte, len(connect311(0x02, "slow"))))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("read ended after CONNECT: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	client.Write([]byte{0xc0, 0})
	assert.NoError(t, <-done)
}

func TestListenerTLSState(t *testing.T) {
	cert := selfSigned(t)
	inner, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	l := Listen(inner, ListenerConfig{})
	defer l.Close()
	go func() {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Write(connect311(0x02, "tls-client"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	server, err := l.Accept()
	require.NoError(t, err)
	defer server.Close()
	_, err = io.ReadFull(server, make([]byte, len(connect311(0x02, "tls-client"))))
	require.NoError(t, err)
	cs := server.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
	assert.True(t, cs.HandshakeComplete)
	_, isTLS := server.(*Conn).NetConn().(*tls.Conn)
	assert.True(t, isTLS)
}

// Every malformed case closes the connection with the case's code.
func TestListenerRefusesEveryMalformedCase(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	for _, c := range malformedCases() {
		client := dial(t, l)
		server := accept()
		var connect []byte
		if c.raw[0]>>4 != byte(CONNECT) {
			connect = connect311(0x02, "x")
			if c.v == V5 {
				connect = connect5(0x02, nil, "x")
			}
		}
		go func() {
			client.Write(append(append([]byte(nil), connect...), c.raw...))
			client.(*net.TCPConn).CloseWrite() // a packet cut short ends the stream
		}()
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if connect != nil {
			_, err := io.ReadFull(server, make([]byte, len(connect)))
			require.NoError(t, err, c.name)
		}
		// A stream has no packet boundaries but the remaining length: a
		// packet with bytes after its end hands out a valid packet, and
		// the trailing bytes are the next packet's start.
		var err error
		for err == nil {
			_, err = server.Read(make([]byte, 1<<16))
		}
		assert.False(t, errors.Is(err, io.EOF), c.name)
		if c.rule != "§2.1.4" {
			assert.Equal(t, c.code, CodeOf(err), "%s: %v", c.name, err)
		}
		client.Close()
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A read deadline the server sets after CONNECT is its keep-alive: an
// MQTT 5 client is told 0x8D when it passes.
func TestListenerKeepAliveDeadline(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	client := dial(t, l)
	server := accept()
	connect := connect5(0x02, nil, "sleepy")
	client.Write(connect)
	_, err := io.ReadFull(server, make([]byte, len(connect)))
	require.NoError(t, err)
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = server.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, _ := io.ReadAll(client)
	assert.Equal(t, []byte{0xe0, 0x01, 0x8d}, resp)
}

// A client that pipelines its publishes always has bytes in flight when
// the server refuses it. Closing a socket with unread bytes sends a
// reset, which can destroy the refusal (a DISCONNECT with its reason)
// before the client reads it; Close drains instead, so the client reads
// every byte the server wrote and then a clean end of stream.
func TestListenerCloseDeliversTheLastWordsToAPipeliningClient(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	client := dial(t, l)
	server := accept()
	pub := publish311(0x02, "a/b", 1, string(make([]byte, 4096)))
	written := make(chan struct{})
	go func() { // the client floods until the server goes (at most 8 MiB)
		defer close(written)
		client.Write(connect311(0x02, "dev-1"))
		for range 2048 {
			if _, err := client.Write(pub); err != nil {
				return
			}
		}
	}()
	_, err := server.(*Conn).ReadPacket() // the CONNECT
	require.NoError(t, err)
	_, err = server.(*Conn).ReadPacket() // a publish: the client is well under way
	require.NoError(t, err)
	last := []byte{0xe0, 0x02, 0x96, 0x00} // DISCONNECT 0x96, message rate too high
	_, err = server.Write(last)
	require.NoError(t, err)
	require.NoError(t, server.Close())
	_, err = server.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "the server reads nothing more after Close")

	got, err := io.ReadAll(client)
	assert.NoError(t, err, "a clean end of stream, not a reset")
	assert.Equal(t, last, got)
	<-written
}
