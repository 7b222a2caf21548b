package mqttguard_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The flood: 3,000 anonymous CONNECTs with random client IDs
// from one address in 1.4 s. Each client ID is new, so the per-client
// bucket lets each refusal through; the per-address bound writes 20
// lines, a real event from another address still appears, and the
// minute's summary says what was dropped.
func TestAuditLogFloodWithRandomClientIDs(t *testing.T) {
	const n = 3000
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil })
	attacker := netip.MustParseAddrPort("203.0.113.9:40000")
	at := t0
	for i := range n {
		at = t0.Add(time.Duration(i) * 1400 * time.Millisecond / n)
		_, d := f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: fmt.Sprintf("rnd-%08x", i*2654435761),
			Addr: attacker, Listener: "tcp", ProtocolVersion: 4}, at)
		require.Equal(t, mqttguard.Reject, d.Verdict)
	}
	assert.Equal(t, 20, strings.Count(f.audit(), "addr=203.0.113.9"), "20 lines a minute for the address")

	_, d := f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("guess"), HasPassword: true, Addr: netip.MustParseAddrPort("198.51.100.7:50000"),
		Listener: "tcp", ProtocolVersion: 5}, at.Add(time.Second))
	require.Equal(t, reason.BadUsernameOrPassword, d.Code)
	assert.Contains(t, f.audit(), "client=s1 username=sensor1 addr=198.51.100.7 component=password verdict=reject code=134",
		"a real event from another address is not buried")

	f.g.Sweep(t0.Add(time.Minute))
	lines := strings.Split(strings.TrimSpace(f.audit()), "\n")
	assert.Len(t, lines, 20+1+1, "20 of the flood, the real event, the summary")
	summary := lines[len(lines)-1]
	assert.Contains(t, summary, `msg="loglimit: 2980 similar records suppressed" suppressed=2980 keys=1 top="addr=203.0.113.9:2980"`)
	assert.Equal(t, uint64(n-20), f.g.Stats().AuditSuppressed)
	assert.Less(t, len(f.audit()), 10_000, "under 10 KB for 3,000 refusals (the issue measured 326 bytes each: ~1 MB)")
}

// A flood from many addresses is bounded in total: 300 lines, plus the
// first line of up to 300 addresses that had none, a minute.
func TestAuditLogFloodFromManyAddresses(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil })
	for i := range 5000 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
		f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: fmt.Sprintf("rnd-%d", i),
			Addr: from, Listener: "tcp", ProtocolVersion: 4}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	assert.Equal(t, 600, strings.Count(f.audit(), "mqttguard: reject"))
	f.g.Sweep(t0.Add(time.Minute))
	assert.Contains(t, f.audit(), "suppressed=4400 keys=4400 ")
}
