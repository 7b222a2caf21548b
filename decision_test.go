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
