package guardstack

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
)

// Trust transitions of 3,000 client IDs invented by one address: the
// transition log writes a bounded number of lines, the escalation of an
// address the flood has not touched still appears, and the sweeper's
// flush writes the summary with the right count. (The line of the
// client at that address may not: the flood spent the client IDs'
// budget, and a transition of a client ID does not say its address.)
func TestTransitionLogIsBounded(t *testing.T) {
	ts := startStack(t, testConfig())
	now := time.Now()
	attacker := netip.MustParseAddr("203.0.113.9")
	for i := range 3000 {
		id := trust.Identity{ClientID: fmt.Sprintf("rnd-%d", i), Addr: attacker}
		for j := range 4 {
			ts.Tracker.Violation(id, trust.ACLDenied, now.Add(time.Duration(j)*time.Second))
		}
	}
	written := strings.Count(ts.logs.String(), "trust: state change")
	assert.LessOrEqual(t, written, 2*(transitionLimits.Total+transitionLimits.NewKeys), "client IDs' budget and the address's")
	assert.Greater(t, written, 100, "the flood's first lines are there")

	for j := range 4 {
		ts.Tracker.Violation(trust.Identity{ClientID: "sensor-7", Addr: netip.MustParseAddr("198.51.100.7")}, trust.ACLDenied, now.Add(time.Duration(j)*time.Second))
	}

	st := ts.transitions.Stats()
	ts.transitions.Flush(time.Now().Add(2 * time.Minute)) // records carry the wall clock
	logs := ts.logs.String()
	assert.Contains(t, logs, "ip=198.51.100.7 from=normal to=throttled", "a real escalation is not buried")
	assert.Contains(t, logs, fmt.Sprintf("loglimit: %d similar records suppressed", st.Suppressed))
	assert.NotZero(t, st.Suppressed)
	assert.Equal(t, uint64(strings.Count(logs, "trust: state change")), st.Passed)
}
