package mqttguard_test

import (
	"testing"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
)

// A refusal is never answered with a success code, whatever the
// Decision carries.
func TestRefusalIsAlwaysAFailureCode(t *testing.T) {
	for _, tc := range []struct {
		d    mqttguard.Decision
		want reason.Code
	}{
		{mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.Banned}, reason.Banned},
		{mqttguard.Decision{Verdict: mqttguard.Reject}, reason.NotAuthorized},
		{mqttguard.Decision{Verdict: mqttguard.Drop}, reason.NotAuthorized},
		{mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.GrantedQoS1}, reason.NotAuthorized},
		{mqttguard.Decision{Verdict: mqttguard.Disconnect, Code: reason.AdministrativeAction}, reason.AdministrativeAction},
	} {
		assert.Equal(t, tc.want, tc.d.Refusal(), "%v", tc.d)
	}
}

// A code a packet may not carry is not sent in it (a plugin may deny
// with any failure code).
func TestRefusalInAPacketType(t *testing.T) {
	d := mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.MessageRateTooHigh}
	assert.Equal(t, reason.NotAuthorized, d.RefusalIn(4), "no 0x96 in a PUBACK")
	assert.Equal(t, reason.NotAuthorized, d.RefusalIn(9), "nor in a SUBACK")
	assert.Equal(t, reason.MessageRateTooHigh, d.RefusalIn(14), "a DISCONNECT may say it")
	b := mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.Banned}
	assert.Equal(t, reason.Banned, b.RefusalIn(2))
	assert.Equal(t, reason.AdministrativeAction, b.RefusalIn(14), "0x8A is not a DISCONNECT code")
	q := mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.QuotaExceeded}
	assert.Equal(t, reason.QuotaExceeded, q.RefusalIn(9))
}
