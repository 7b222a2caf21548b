package dashboard_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func refusal(i int, topic string) mqttguard.Refusal {
	c := &mqttguard.Client{ID: fmt.Sprintf("dev-%d", i), Username: "u", Addr: netip.MustParseAddr("198.51.100.7")}
	return mqttguard.Refusal{At: time.Unix(1700000000, int64(i)), Point: mqttguard.PointPublish, Client: c, Topic: topic,
		Decision: mqttguard.Decision{Verdict: mqttguard.Reject, Code: reason.NotAuthorized,
			Cause: mqttguard.Cause{Component: mqttguard.ByACL, Rule: "topic read x", File: "acl.conf", Line: 7}}}
}

// The ring keeps the last n, says how many a slow reader missed, and
// reads from where it left off.
func TestFeedRing(t *testing.T) {
	f := dashboard.NewFeed(4)
	evs, next, missed := f.Since(0, 10, nil)
	assert.Empty(t, evs)
	assert.Zero(t, missed)
	for i := range 3 {
		f.Add(refusal(i, "t"))
	}
	evs, next, missed = f.Since(next, 10, nil)
	require.Len(t, evs, 3)
	assert.Zero(t, missed)
	assert.Equal(t, "dev-0", evs[0].Client, "oldest first")
	for i := 3; i < 10; i++ {
		f.Add(refusal(i, "t"))
	}
	evs, next, missed = f.Since(next, 10, nil)
	assert.Equal(t, uint64(3), missed, "dev-3 … dev-5 were overwritten")
	require.Len(t, evs, 4)
	assert.Equal(t, "dev-6", evs[0].Client)
	assert.Equal(t, "dev-9", evs[3].Client)
	evs, _, missed = f.Since(next, 10, nil)
	assert.Empty(t, evs)
	assert.Zero(t, missed)

	// max and a filter; the next read starts after the last returned.
	evs, n2, _ := f.Since(0, 2, func(e *dashboard.Event) bool { return e.Client != "dev-7" })
	require.Len(t, evs, 2)
	assert.Equal(t, []string{"dev-6", "dev-8"}, []string{evs[0].Client, evs[1].Client})
	evs, _, _ = f.Since(n2, 10, nil)
	require.Len(t, evs, 1)
	assert.Equal(t, "dev-9", evs[0].Client)

	latest := f.Latest(3, nil)
	require.Len(t, latest, 3)
	assert.Equal(t, "dev-9", latest[0].Client, "newest first")
	e := latest[0]
	assert.Equal(t, "reject", e.Verdict)
	assert.Equal(t, "0x87", e.Code)
	assert.Equal(t, "not authorized", e.CodeName)
	assert.Equal(t, "acl", e.Component)
	assert.Equal(t, `acl "topic read x" (acl.conf:7)`, e.Cause)
	assert.Equal(t, "198.51.100.7", e.Addr)
}

// A Feed keeps its own copy: a broker that reuses its buffers (the
// mosquitto plugin lends its own memory for topics) cannot change what
// was recorded, and long values are cut to a bound, not kept whole.
func TestFeedCopiesAndBounds(t *testing.T) {
	f := dashboard.NewFeed(8)
	buf := []byte("sensors/a/temperature")
	f.Add(refusal(1, string(buf)))
	copy(buf, "XXXXXXXXX")
	r := refusal(2, strings.Repeat("é", 1000)) // 2,000 bytes, cut mid-character
	r.Client.ID = strings.Repeat("c", 70000)
	f.Add(r)
	evs, _, _ := f.Since(0, 10, nil)
	require.Len(t, evs, 2)
	assert.Equal(t, "sensors/a/temperature", evs[0].Topic)
	assert.True(t, utf8.ValidString(evs[1].Topic))
	assert.True(t, strings.HasSuffix(evs[1].Topic, "…"))
	assert.Less(t, len(evs[1].Topic), 300)
	assert.Less(t, len(evs[1].Client), 200)
}

// Add allocates nothing: the Guard's refusal path stays as it was.
func TestFeedAddAllocatesNothing(t *testing.T) {
	f := dashboard.NewFeed(16)
	r := refusal(1, "sensors/a/temperature")
	allocs := testing.AllocsPerRun(1000, func() { f.Add(r) })
	assert.Zero(t, allocs)
}

// A known device's anomaly costs a copy, no allocation (a new device's
// costs its key; BenchmarkFeedAdd has both).
func TestFeedAnomalyOfAKnownDeviceAllocatesNothing(t *testing.T) {
	f := dashboard.NewFeed(16)
	r := refusal(1, "sensors/temperature/x")
	r.Decision = mqttguard.Decision{Verdict: mqttguard.Drop, Cause: mqttguard.Cause{Component: mqttguard.ByAnomaly, Detail: "too-early"}}
	f.Add(r)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { f.Add(r) }))
}

// Observed decisions show what enforcement would have done.
func TestFeedObserved(t *testing.T) {
	f := dashboard.NewFeed(8)
	r := refusal(1, "t")
	r.Decision = mqttguard.Decision{Verdict: mqttguard.Allow, Observed: true, Would: mqttguard.Drop, WouldCode: reason.QuotaExceeded,
		Cause: mqttguard.Cause{Component: mqttguard.ByRateLimit}}
	f.Add(r)
	e := f.Latest(1, nil)[0]
	assert.True(t, e.Observed)
	assert.Equal(t, "drop", e.Verdict)
	assert.Equal(t, "0x97", e.Code)
}

// The devices page remembers anomalous devices past the ring, bounded.
func TestFeedAnomalous(t *testing.T) {
	f := dashboard.NewFeed(2)
	now := time.Now()
	for i := range 600 {
		r := refusal(i%520, "sensors/temperature/x")
		r.At = now.Add(time.Duration(i) * time.Millisecond)
		r.Decision = mqttguard.Decision{Verdict: mqttguard.Drop, Cause: mqttguard.Cause{Component: mqttguard.ByAnomaly, Detail: fmt.Sprintf("too-early: strike %d", i)}}
		f.Add(r)
	}
	list := f.Anomalous(now.Add(-time.Minute))
	assert.Len(t, list, 512, "bounded")
	assert.Equal(t, "dev-79", list[0].Client, "the most recent first")
	assert.Equal(t, 1, list[0].Count, "evicted as the oldest before it came back")
	assert.Equal(t, "too-early: strike 599", list[0].Detail)
	assert.Empty(t, f.Anomalous(now.Add(time.Hour)))
}
