package mochiguard

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/packets"
)

// TestQueueLengthIsFound: pacing reads mochi's outbound queue by name;
// a mochi release that renames it must fail here, not silently stop
// pacing.
func TestQueueLengthIsFound(t *testing.T) {
	if queueField == nil {
		t.Fatal("mochi's ClientState has no outbound chan *packets.Packet: deliveries are not paced (pace.go)")
	}
}

// TestGatheredIsFound: flow control flushes mochi's gathered writes by
// name; a mochi release that renames the buffer must fail here.
func TestGatheredIsFound(t *testing.T) {
	if gatheredField == nil {
		t.Fatal("mochi's ClientConnection has no outbuf *bytes.Buffer: a client with a small Receive Maximum stalls (flow.go)")
	}
}

// unsentBytes sees what a peer has not read: the signal that tells a
// slow subscriber (pacing gives up on it) from a writer that did not
// run (pacing waits on).
func TestUnsentBytes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unsentBytes is Linux's TIOCOUTQ; elsewhere every full queue counts as a slow subscriber")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()

	n, size, ok := unsentBytes(server)
	require.True(t, ok)
	assert.Zero(t, n, "nothing written")
	assert.Positive(t, size)

	// A peer that does not read: the writes stop when both sides'
	// buffers are full, and the sender's queue holds the backlog.
	server.SetWriteDeadline(time.Now().Add(2 * time.Second))
	chunk := make([]byte, 64<<10)
	for {
		if _, err := server.Write(chunk); err != nil {
			break
		}
	}
	n, _, ok = unsentBytes(server)
	require.True(t, ok)
	assert.GreaterOrEqual(t, n, unreadBacklog, "a peer that does not read leaves a backlog")

	// Behind the packet validator's connection, as mochi holds it.
	wrapped := &packets.Conn{Conn: server}
	_, _, ok = unsentBytes(wrapped)
	assert.True(t, ok, "found through NetConn")
	_, _, ok = unsentBytes(struct{ net.Conn }{server})
	assert.False(t, ok, "a connection it cannot unwrap is not known")
}
