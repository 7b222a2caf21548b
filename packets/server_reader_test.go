package packets

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/reason"
)

// What a broker sends its client, read as a proxy reads its upstream:
// no CONNECT first, server-only packet types, and the server's own topic
// aliases are not the client's session's business.
func TestServerReader(t *testing.T) {
	var in bytes.Buffer
	in.Write(AppendConnack(nil, V5, false, reason.Success))
	in.Write(AppendSuback(nil, V5, 7, []ReasonCode{reason.GrantedQoS1, reason.NotAuthorized}))
	in.Write([]byte{0x32, 13, 0, 3, 'a', '/', 'b', 0, 9, 3, 0x23, 0, 5, 'h', 'i'}) // QoS 1, id 9, Topic Alias 5
	in.Write(AppendPingresp(nil))
	r := NewServerReader(&in, V5, Limits{})
	var got []Type
	for {
		p, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, p.Type)
		switch p.Type {
		case SUBACK:
			assert.Equal(t, []byte{0x01, 0x87}, p.ReasonCodes)
		case PUBLISH:
			assert.Equal(t, "a/b", string(p.Publish.Topic))
			assert.Equal(t, uint16(9), p.PacketID)
			assert.Equal(t, 15, len(p.Raw), "the whole packet, to pass on")
		}
	}
	assert.Equal(t, []Type{CONNACK, SUBACK, PUBLISH, PINGRESP}, got)

	big := append([]byte{0x30}, AppendVBI(nil, 2000)...)
	big = append(big, make([]byte, 2000)...)
	_, err := NewServerReader(bytes.NewReader(big), V311, Limits{MaxPacketSize: 1024}).Read()
	assert.Equal(t, reason.PacketTooLarge, CodeOf(err), "limits hold for a server too")
	_, err = NewServerReader(bytes.NewReader([]byte{0x20, 3, 0, 0x42, 0}), V5, Limits{}).Read()
	assert.Error(t, err, "a CONNACK with a code it may not carry is malformed")
}

// FuzzServerReader: whatever an upstream sends, the reader ends with a
// packet or an error, never a panic, and its buffer stays near the
// limit.
func FuzzServerReader(f *testing.F) {
	for i, raw := range seedCorpus(f) {
		f.Add(raw, byte(4+i%2))
	}
	f.Add([]byte{0x20, 3, 0, 0, 0, 0x90, 4, 0, 7, 1, 0x87}, byte(5))
	f.Fuzz(func(t *testing.T, stream []byte, v byte) {
		r := NewServerReader(bytes.NewReader(stream), Version(v), Limits{MaxPacketSize: 4096})
		for n := 0; n < 1000; n++ {
			p, err := r.Read()
			if cap(r.buf) > 2*4096 {
				t.Fatalf("buffer grew to %d bytes with a 4096-byte limit", cap(r.buf))
			}
			if err != nil {
				return
			}
			if len(p.Raw) > 4096 {
				t.Fatalf("a packet of %d bytes passed a 4096-byte limit", len(p.Raw))
			}
		}
	})
}
