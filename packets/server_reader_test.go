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
