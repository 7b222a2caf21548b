package packets

import (
	"bytes"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodersParseBack(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		for _, code := range []ReasonCode{reason.Success, reason.UnsupportedProtocolVersion, reason.ClientIdentifierNotValid, reason.BadUsernameOrPassword, reason.NotAuthorized, reason.Banned, reason.ConnectionRateExceeded, reason.ServerUnavailable} {
			raw := AppendConnack(nil, v, true, code)
			p, err := Parse(raw, v, Limits{})
			require.NoError(t, err, "%v %v", v, code)
			if v == V5 {
				assert.Equal(t, code, p.ReasonCode)
			} else {
				assert.Equal(t, ReasonCode(code.V3Connack()), p.ReasonCode)
			}
			assert.Equal(t, code == reason.Success, p.SessionPresent, "session present only with success")
		}
		for _, typ := range []Type{PUBACK, PUBREC, PUBREL, PUBCOMP} {
			code := reason.QuotaExceeded
			if typ == PUBREL || typ == PUBCOMP {
				code = reason.PacketIdentifierNotFound
			}
			p, err := Parse(AppendAck(nil, typ, v, 513, code), v, Limits{})
			require.NoError(t, err, "%v %v", v, typ)
			assert.Equal(t, uint16(513), p.PacketID)
			if v == V5 {
				assert.Equal(t, code, p.ReasonCode)
			}
		}
		p, err := Parse(AppendSuback(nil, v, 9, []ReasonCode{reason.GrantedQoS1, reason.NotAuthorized, reason.Success}), v, Limits{})
		require.NoError(t, err)
		want := []byte{1, 0x87, 0}
		if v != V5 {
			want = []byte{1, 0x80, 0}
		}
		assert.Equal(t, want, p.ReasonCodes)
		p, err = Parse(AppendUnsuback(nil, v, 9, []ReasonCode{reason.Success, reason.NoSubscriptionExisted}), v, Limits{})
		require.NoError(t, err)
		assert.Equal(t, uint16(9), p.PacketID)
		_, err = Parse(AppendPingresp(nil), v, Limits{})
		require.NoError(t, err)
	}
	assert.Empty(t, AppendDisconnect(nil, V311, reason.AdministrativeAction), "MQTT 3.1.1 servers just close")
	p, err := Parse(AppendDisconnect(nil, V5, reason.AdministrativeAction), V5, Limits{})
	require.NoError(t, err)
	assert.Equal(t, reason.AdministrativeAction, p.ReasonCode)
}

// paho.golang's decoder reads what we encode.
func TestEncodersAgainstPaho(t *testing.T) {
	cp, err := paho.ReadPacket(bytes.NewReader(AppendConnack(nil, V5, false, reason.Banned)))
	require.NoError(t, err)
	assert.Equal(t, byte(0x8A), cp.Content.(*paho.Connack).ReasonCode)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendAck(nil, PUBACK, V5, 77, reason.QuotaExceeded)))
	require.NoError(t, err)
	assert.Equal(t, uint16(77), cp.Content.(*paho.Puback).PacketID)
	assert.Equal(t, byte(0x97), cp.Content.(*paho.Puback).ReasonCode)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendSuback(nil, V5, 5, []ReasonCode{reason.GrantedQoS2, reason.TopicFilterInvalid})))
	require.NoError(t, err)
	assert.Equal(t, []byte{2, 0x8f}, cp.Content.(*paho.Suback).Reasons)
	cp, err = paho.ReadPacket(bytes.NewReader(AppendDisconnect(nil, V5, reason.MessageRateTooHigh)))
	require.NoError(t, err)
	assert.Equal(t, byte(0x96), cp.Content.(*paho.Disconnect).ReasonCode)
}

// packets.Type's values are the control packet types reason.Code.ValidIn
// is keyed by.
func TestReasonCodesByPacketType(t *testing.T) {
	assert.True(t, validFor(reason.QuotaExceeded, PUBACK))
	assert.False(t, validFor(reason.MessageRateTooHigh, PUBACK), "0x96 is DISCONNECT-only")
	assert.True(t, validFor(reason.MessageRateTooHigh, DISCONNECT))
	assert.True(t, validFor(reason.Banned, CONNACK))
	assert.False(t, validFor(reason.NoMatchingSubscribers, PUBREL))
	assert.True(t, validFor(reason.ReAuthenticate, AUTH))
	assert.True(t, validFor(reason.NoSubscriptionExisted, UNSUBACK))
	assert.True(t, validFor(reason.WildcardSubsNotSupported, SUBACK))
	assert.True(t, validFor(reason.PacketIdentifierNotFound, PUBCOMP))
	assert.True(t, validFor(reason.NoMatchingSubscribers, PUBREC))
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
