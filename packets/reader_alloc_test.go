package packets

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A connection that announces a 64 KiB CONNECT and sends a few bytes of
// it holds a small packet buffer and no read-ahead: the Reader buffers
// what arrives, not what a header claims.
func TestReaderAllocatesByWhatArrives(t *testing.T) {
	partial := []byte{0x10, 0xfb, 0xff, 0x03, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00}
	src := io.MultiReader(bytes.NewReader(partial), blockingReader{})
	r := NewReader(src, Limits{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Read() // blocks in blockingReader
	}()
	<-readerBlocked
	assert.LessOrEqual(t, cap(r.buf), firstPacketBuf, "the packet buffer: what arrived, not 64 KiB")
	assert.LessOrEqual(t, len(r.in), len(r.first), "no read-ahead for a body that claims more than arrives")
	assert.Nil(t, r.pkt, "no decoded packet before one is complete")
	close(unblock)
	<-done

	// Idle: nothing at all.
	r = NewReader(strings.NewReader(""), Limits{})
	_, err := r.Read()
	assert.Equal(t, io.EOF, err)
	assert.Nil(t, r.buf)
	assert.Nil(t, r.pkt)
}

var (
	readerBlocked = make(chan struct{})
	unblock       = make(chan struct{})
)

// blockingReader stands for a client that stopped sending: it says so,
// then waits for the test.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) {
	close(readerBlocked)
	<-unblock
	return 0, io.ErrUnexpectedEOF
}

// However the bytes arrive — one at a time, with an error along with the
// last of them — the packets come out whole and in order, the read-ahead
// grows only while reads fill it, and a large packet's buffer grows as
// its body arrives.
func TestReaderAnyChunking(t *testing.T) {
	big := strings.Repeat("p", 100_000)
	want := [][]byte{connect311(0x02, "c"), publish311(0x02, "a/b", 1, "x"), publish311(0x00, "big", 0, big), {0xc0, 0}}
	all := cat(want...)
	for name, src := range map[string]io.Reader{
		"at once":        bytes.NewReader(all),
		"a byte a read":  iotest.OneByteReader(bytes.NewReader(all)),
		"half at a time": iotest.HalfReader(bytes.NewReader(all)),
		"EOF with data":  iotest.DataErrReader(bytes.NewReader(all)),
	} {
		r := NewReader(src, Limits{})
		for i, w := range want {
			p, err := r.Read()
			require.NoError(t, err, "%s: packet %d", name, i)
			assert.Equal(t, w, p.Raw, "%s: packet %d", name, i)
		}
		_, err := r.Read()
		assert.Equal(t, io.EOF, err, name)
		assert.LessOrEqual(t, len(r.in), maxReadAhead, name)
	}
}

// A connection that sends in small pieces keeps a small read-ahead.
func TestReaderReadAheadFollowsTheTraffic(t *testing.T) {
	var all []byte
	all = append(all, connect311(0x02, "c")...)
	for range 100 {
		all = append(all, 0xc0, 0)
	}
	r := NewReader(iotest.OneByteReader(bytes.NewReader(all)), Limits{})
	for range 101 {
		_, err := r.Read()
		require.NoError(t, err)
	}
	assert.Equal(t, minReadAhead, len(r.in), "reads of a byte never fill 512")

	r = NewReader(bytes.NewReader(append(all, bytes.Repeat([]byte{0xc0, 0}, 10_000)...)), Limits{})
	for range 10_101 {
		_, err := r.Read()
		require.NoError(t, err)
	}
	assert.Equal(t, maxReadAhead, len(r.in), "full reads grow it to the most")
}

// A client that sends packets right behind its CONNECT: reading the
// CONNECT takes them in too, so a server that refuses the CONNECT and
// closes leaves nothing unread, and the client gets the refusal and a
// clean end of stream, not a reset that could cost it the CONNACK.
func TestRefusedConnectWithPacketsBehindItClosesCleanly(t *testing.T) {
	l, accept := serve(t, ListenerConfig{})
	client := dial(t, l)
	server := accept()
	connect := connect311(0x02, "eager")
	_, err := client.Write(cat(connect, publish311(0x02, "a/b", 1, "21.5"), []byte{0xc0, 0}))
	require.NoError(t, err)
	_, err = io.ReadFull(server, make([]byte, len(connect)))
	require.NoError(t, err)
	assert.Equal(t, len(publish311(0x02, "a/b", 1, "21.5"))+2, server.(*Conn).Buffered(), "the packets behind the CONNECT are in")
	_, err = server.Write(AppendConnack(nil, V311, false, 5))
	require.NoError(t, err)
	require.NoError(t, server.Close())

	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	assert.NoError(t, err, "EOF, not a reset")
	assert.Equal(t, []byte{0x20, 0x02, 0x00, 0x05}, got)
}
