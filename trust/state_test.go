package trust

import (
	"fmt"
	"testing"

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
	assert.Equal(t, "reject 0x87", fmt.Sprintf("%v %#x", PublishReject, CodeNotAuthorized))
}
