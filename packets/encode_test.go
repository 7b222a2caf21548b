package packets

import (
	"bytes"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodersParseBack(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		for _, code := range []ReasonCode{Success, UnsupportedProtocolVersion, ClientIdentifierNotValid, BadUsernameOrPassword, NotAuthorized, Banned, ConnectionRateExceeded, ServerUnavailable} {
			raw := AppendConnack(nil, v, true, code)
			p, err := Parse(raw, v, Limits{})
			require.NoError(t, err, "%v %v", v, code)
			if v == V5 {
				assert.Equal(t, code, p.ReasonCode)
			} else {
				assert.Equal(t, ReasonCode(connackReturnCode(code)), p.ReasonCode)
			}
			assert.Equal(t, code == Success, p.SessionPresent, "session present only with success")
		}
		for _, typ := range []Type{PUBACK, PUBREC, PUBREL, PUBCOMP} {
			code := QuotaExceeded
			if typ == PUBREL || typ == PUBCOMP {
				code = PacketIdentifierNotFound
			}
			p, err := Parse(AppendAck(nil, typ, v, 513, code), v, Limits{})
			require.NoError(t, err, "%v %v", v, typ)
			assert.Equal(t, uint16(513), p.PacketID)
			if v == V5 {
				assert.Equal(t, code, p.ReasonCode)
			}
		}
		p, err := Parse(AppendSuback(nil, v, 9, []ReasonCode{GrantedQoS1, NotAuthorized, Success}), v, Limits{})
		require.NoError(t, err)
		want := []byte{1, 0x87, 0}
		if v != V5 {
			want = []byte{1, 0x80, 0}
		}
		assert.Equal(t, want, p.ReasonCodes)
		p, err = Parse(AppendUnsuback(nil, v, 9, []ReasonCode{Success, NoSubscriptionExisted}), v, Limits{})
		require.NoError(t, err)
		assert.Equal(t, uint16(9), p.PacketID)
		_, err = Parse(AppendPingresp(nil), v, Limits{})
		require.NoError(t, err)
	}
	assert.Empty(t, AppendDisconnect(nil, V311, AdministrativeAction), "MQTT 3.1.1 servers just close")
	p, err := Parse(AppendDisconnect(nil, V5, AdministrativeAction), V5, Limits{})
	require.NoError(t, err)
	assert.Equal(t, AdministrativeAction, p.ReasonCode)
}

// paho.golang's decoder reads what we encode.
func TestEncodersAgainstPaho(t *testing.T) {
	cp, err := paho.ReadPacket(bytes.NewReader(AppendConnack(nil, V5, false, Banned)))
	require.NoError(t, err)
	assert.Equal(t, byte(0x8A), cp.Content.(*paho.Connack).ReasonCode)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendAck(nil, PUBACK, V5, 77, QuotaExceeded)))
	require.NoError(t, err)
	assert.Equal(t, uint16(77), cp.Content.(*paho.Puback).PacketID)
	assert.Equal(t, byte(0x97), cp.Content.(*paho.Puback).ReasonCode)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendSuback(nil, V5, 5, []ReasonCode{GrantedQoS2, TopicFilterInvalid})))
	require.NoError(t, err)
	assert.Equal(t, []byte{2, 0x8f}, cp.Content.(*paho.Suback).Reasons)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendDisconnect(nil, V5, MessageRateTooHigh)))
	require.NoError(t, err)
	assert.Equal(t, byte(0x96), cp.Content.(*paho.Disconnect).ReasonCode)
}

func TestReasonCodes(t *testing.T) {
	assert.Equal(t, "banned", Banned.String())
	assert.True(t, QuotaExceeded.ValidFor(PUBACK))
	assert.False(t, MessageRateTooHigh.ValidFor(PUBACK), "0x96 is DISCONNECT-only")
	assert.True(t, MessageRateTooHigh.ValidFor(DISCONNECT))
	assert.True(t, Banned.ValidFor(CONNACK))
	assert.False(t, NoMatchingSubscribers.ValidFor(PUBREL))
	assert.Equal(t, "reason code 0xfe", ReasonCode(0xfe).String())
}

func TestAppendVBI(t *testing.T) {
	for _, n := range []int{0, 127, 128, 16383, 16384, 2097151, 2097152, maxRemaining} {
		b := AppendVBI(nil, n)
		v, size, err := decodeVBI(b)
		require.Nil(t, err)
		assert.Equal(t, n, v)
		assert.Equal(t, len(b), size)
	}
}

func TestAppendConnectRoundTrip(t *testing.T) {
	for _, raw := range [][]byte{
		connect311(0xee, "dev-1", func(b body) body { return b.str("status/dev-1").str("offline").str("alice").str("s3cret") }),
		connect311(0x02, "c"),
		connect5(0xc6, cat(prop(PropReceiveMaximum, 0, 10), prop(PropTopicAliasMaximum, 0, 5)), "c5", func(b body) body {
			return b.props(prop(PropWillDelay, 0, 0, 0, 5)...).str("w").str("bye").str("u").str("p")
		}),
	} {
		p, err := Parse(raw, 0, Limits{})
		require.NoError(t, err)
		again := AppendConnect(nil, &p.Connect, p.Props.Raw)
		assert.Equal(t, raw, again, "an unchanged CONNECT encodes to the same bytes")

		c := p.Connect
		c.Username, c.UsernameFlag = []byte("upstream-user"), true
		c.Password, c.PasswordFlag = []byte("upstream-pw"), true
		q, err := Parse(AppendConnect(nil, &c, WithoutProperties(p.Props.Raw, PropTopicAliasMaximum)), 0, Limits{})
		require.NoError(t, err)
		assert.Equal(t, "upstream-user", string(q.Connect.Username))
		assert.Equal(t, "upstream-pw", string(q.Connect.Password))
		assert.Equal(t, string(p.Connect.ClientID), string(q.Connect.ClientID))
		assert.Equal(t, string(p.Connect.WillTopic), string(q.Connect.WillTopic))
		assert.False(t, q.Props.Has(PropTopicAliasMaximum))
		assert.Equal(t, p.Props.ReceiveMaximum, q.Props.ReceiveMaximum)
	}
}
