package trust

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetFactorsAppliesToLaterViolations(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, UsernameFactor: -1})
	addr := netip.MustParseAddr("192.0.2.7")
	misbehave := func(user string) {
		for i := range 4 {
			tr.Violation(Identity{ClientID: fmt.Sprint(user, i), Username: user, Addr: addr}, RateLimited, t0)
		}
	}
	misbehave("acme")
	assert.Equal(t, Normal, tr.State(Identity{ClientID: "new", Username: "acme"}, t0), "factor off: the account is not tracked")

	require.NoError(t, tr.SetFactors(1, 0))
	assert.Equal(t, 1.0, tr.Config().UsernameFactor)
	misbehave("initech")
	assert.Equal(t, Throttled, tr.State(Identity{ClientID: "new", Username: "initech"}, t0), "factor 1: four devices of one account throttle it")

	var ce *ConfigError
	require.ErrorAs(t, tr.SetFactors(-1, 0), &ce)
	assert.Equal(t, 1.0, tr.Config().UsernameFactor, "a refused change keeps the factors")
}

// Escalations are WARN, a recovery is INFO: a step back to normal is
// good news, not something to look at.
func TestTransitionLogLevels(t *testing.T) {
	var buf bytes.Buffer
	tr := tracker(t, Config{Mode: EnforceFull, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for range 4 {
		tr.Violation(id("s"), RateLimited, t0)
	}
	tr.State(id("s"), t0.Add(10*time.Minute))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "level=WARN")
	assert.Contains(t, lines[0], "to=throttled")
	assert.Contains(t, lines[1], "level=INFO")
	assert.Contains(t, lines[1], "to=normal")
}
