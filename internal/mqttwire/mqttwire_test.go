package mqttwire

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What Connect builds, packets (the strict server side) reads back.
func TestConnectParses(t *testing.T) {
	for _, v := range []packets.Version{packets.V31, packets.V311, packets.V5} {
		for _, c := range []struct{ id, user, pass string }{
			{"c1", "", ""},
			{"c2", "alice", "secret"},
			{"c3", "bob", ""},
			{"", "carol", "pw"}, // an empty client ID: refused for 3.1 by the reader
		} {
			raw := Connect(v, 30, c.id, c.user, c.pass)
			p, err := packets.Parse(raw, 0, packets.DefaultLimits())
			if v == packets.V31 && c.id == "" {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err, "v%d %+v: % x", v, c, raw)
			cn := p.Connect
			assert.Equal(t, v, cn.Level)
			assert.True(t, cn.CleanStart)
			assert.Equal(t, uint16(30), cn.KeepAlive)
			assert.Equal(t, c.id, string(cn.ClientID))
			assert.Equal(t, c.user != "", cn.UsernameFlag)
			assert.Equal(t, c.user, string(cn.Username))
			assert.Equal(t, c.pass != "", cn.PasswordFlag)
			assert.Equal(t, c.pass, string(cn.Password))
			assert.False(t, cn.WillFlag)
		}
	}
}

// The bytes of a CONNECT written out by hand, as the test clients did
// before they shared Connect.
func TestConnectBytes(t *testing.T) {
	assert.Equal(t, []byte{0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 60, 0, 1, 'c', 0, 1, 'u', 0, 1, 'p'},
		Connect(packets.V311, 60, "c", "u", "p"))
	assert.Equal(t, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 1, 'c'},
		Connect(packets.V5, 30, "c", "", ""))
}

func TestReadPacket(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200) // a two-byte Remaining Length
	stream := append([]byte{0xd0, 0}, packets.AppendVBI([]byte{0x30}, len(big))...)
	stream = append(stream, big...)
	stream = append(stream, 0x20, 2, 0, 0)
	r := bufio.NewReader(bytes.NewReader(stream))

	pkt, hdr, err := ReadPacket(r, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte{0xd0, 0}, pkt, "PINGRESP: a header and no body")
	assert.Equal(t, 2, hdr)

	buf := make([]byte, 0, 512)
	pkt, hdr, err = ReadPacket(r, buf)
	require.NoError(t, err)
	assert.Equal(t, 3, hdr)
	assert.Equal(t, byte(0x30), pkt[0])
	assert.Equal(t, big, pkt[hdr:])
	assert.Equal(t, &buf[:1][0], &pkt[0], "read into buf, which was large enough")

	pkt, hdr, err = ReadPacket(r, buf)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x20, 2, 0, 0}, pkt)
	assert.Equal(t, 2, hdr)

	_, _, err = ReadPacket(r, buf)
	assert.Equal(t, io.EOF, err, "a clean end between packets")
}

func TestReadPacketMalformed(t *testing.T) {
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"five length bytes": {[]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrRemainingLength},
		"end in the header": {[]byte{0x30, 0x80}, io.ErrUnexpectedEOF},
		"end in the body":   {[]byte{0x30, 5, 'a', 'b'}, io.ErrUnexpectedEOF},
	} {
		_, _, err := ReadPacket(bufio.NewReader(bytes.NewReader(c.in)), nil)
		assert.ErrorIs(t, err, c.want, name)
	}
	_, _, err := ReadPacket(bufio.NewReader(strings.NewReader("")), nil)
	assert.Equal(t, io.EOF, err)
}
