package reason_test

import (
	"fmt"
	"testing"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
)

// TestV3Connack pins what an MQTT 3.1.1 client hears for every code a v5
// CONNACK may carry, and for every other byte: one table, so the Guard,
// packets and every adapter agree.
func TestV3Connack(t *testing.T) {
	want := map[reason.Code]byte{
		reason.Success:                     0,
		reason.UnspecifiedError:            5,
		reason.MalformedPacket:             5,
		reason.ProtocolError:               5,
		reason.ImplementationSpecificError: 5,
		reason.UnsupportedProtocolVersion:  1,
		reason.ClientIdentifierNotValid:    2,
		reason.BadUsernameOrPassword:       4,
		reason.NotAuthorized:               5,
		reason.ServerUnavailable:           3,
		reason.ServerBusy:                  3,
		reason.Banned:                      5,
		reason.ServerShuttingDown:          3, // not a CONNACK code, but a broker may refuse with it
		reason.BadAuthenticationMethod:     4,
		reason.TopicNameInvalid:            5,
		reason.PacketTooLarge:              5,
		reason.QuotaExceeded:               5,
		reason.PayloadFormatInvalid:        5,
		reason.RetainNotSupported:          5,
		reason.QoSNotSupported:             5,
		reason.UseAnotherServer:            3,
		reason.ServerMoved:                 3,
		reason.ConnectionRateExceeded:      5,
	}
	for c := range 256 {
		code := reason.Code(c)
		w, listed := want[code]
		if code.ValidIn(2) {
			assert.True(t, listed, "0x%02X: every CONNACK code is pinned here", c)
		}
		if !listed {
			w = 5 // any other code: not authorized, never success
		}
		assert.Equal(t, w, code.V3Connack(), "0x%02X %v", c, code)
	}
}

func TestV3Suback(t *testing.T) {
	for c := range 256 {
		code := reason.Code(c)
		want := byte(0x80)
		if c <= 2 {
			want = byte(c)
		}
		assert.Equal(t, want, code.V3Suback(), "0x%02X", c)
	}
}

func TestValidIn(t *testing.T) {
	assert.True(t, reason.QuotaExceeded.ValidIn(4))
	assert.False(t, reason.MessageRateTooHigh.ValidIn(4), "0x96 is DISCONNECT-only")
	assert.True(t, reason.MessageRateTooHigh.ValidIn(14))
	assert.True(t, reason.Banned.ValidIn(2))
	assert.False(t, reason.NoMatchingSubscribers.ValidIn(6))
	assert.False(t, reason.Success.ValidIn(1), "CONNECT carries no reason code")
	assert.False(t, reason.Success.ValidIn(200))
}

func TestString(t *testing.T) {
	assert.Equal(t, "not authorized", reason.NotAuthorized.String())
	assert.Equal(t, "reason code 0x7f", reason.Code(0x7F).String())
	assert.Equal(t, "0x87 not authorized", fmt.Sprintf("0x%02X %v", reason.NotAuthorized, reason.NotAuthorized))
	assert.Equal(t, "8a|138|\"banned\"|banned", fmt.Sprintf("%x|%d|%q|%s", reason.Banned, reason.Banned, reason.Banned, reason.Banned))
	assert.True(t, reason.Banned.IsError())
	assert.False(t, reason.GrantedQoS2.IsError())
}
