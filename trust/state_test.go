package trust

import (
	"fmt"
	"testing"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One spelling of each mode everywhere: what String prints is what a
// configuration file says, and ParseMode reads it back.
func TestModeNamesAreTheConfigurationsSpelling(t *testing.T) {
	for m, name := range map[Mode]string{ObserveOnly: "observe", EnforceLight: "light", EnforceFull: "full"} {
		assert.Equal(t, name, m.String())
		got, err := ParseMode(name)
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("enforce-harder")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "want observe, light or full")
}

// Every enum prints as a word, never as a bare number.
func TestEnumsHaveNames(t *testing.T) {
	for _, s := range []fmt.Stringer{PublishAllow, PublishReject, PublishAckAndDrop, PublishDisconnect} {
		assert.NotRegexp(t, `^\d|\(`, s.String())
	}
	assert.Equal(t, "PublishAction(9)", PublishAction(9).String())
	assert.Equal(t, "reject 0x87", fmt.Sprintf("%v %#x", PublishReject, reason.NotAuthorized))
}

// States and dimensions read back from what String prints (the admin
// API's ?state= and the trust file use them).
func TestStateAndDimensionNamesRoundTrip(t *testing.T) {
	for s := Normal; s <= Disconnected; s++ {
		got, err := ParseState(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	for d := ByClientID; d <= ByAddr; d++ {
		got, err := ParseDimension(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, got)
	}
	_, err := ParseState("banned")
	assert.ErrorContains(t, err, "want normal, throttled")
	_, err = ParseDimension("device")
	assert.ErrorContains(t, err, "want client, username or ip")
}
