package bench

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// BenchmarkTrust: the per-packet calls for a client the tracker knows.
// No broker has a peer for this; the goal is 0 allocs and <= 100 ns.
func BenchmarkTrust(b *testing.B) {
	tr, err := trust.New(trust.Config{Mode: trust.EnforceFull})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]trust.Identity, 10_000)
	now := time.Now()
	for i := range ids {
		ids[i] = trust.Identity{ClientID: fmt.Sprintf("sensor-%05d", i)}
		tr.Good(ids[i], now)
	}
	b.Run("op=Violation/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		at := now
		for i := 0; i < b.N; i++ {
			at = at.Add(time.Millisecond) // spread out: no escalation storm
			tr.Violation(ids[i%len(ids)], trust.RateLimited, at)
		}
	})
	b.Run("op=Good/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			tr.Good(ids[i%len(ids)], now)
		}
	})
	b.Run("op=Verdict/impl=mqttguard", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			tr.Verdict(ids[i%len(ids)], now)
		}
	})
}

// BenchmarkBanned: a CONNECT's ban check against 100k bans of mixed kinds.
func BenchmarkBanned(b *testing.B) {
	var bans trust.Bans
	for i := 0; i < 25_000; i++ {
		bans.Add(trust.Ban{Kind: trust.BanClientID, Value: fmt.Sprintf("client-%d", i)})
		bans.Add(trust.Ban{Kind: trust.BanUsername, Value: fmt.Sprintf("user-%d", i)})
		bans.Add(trust.Ban{Kind: trust.BanIP, Value: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)})
		bans.Add(trust.Ban{Kind: trust.BanCIDR, Value: fmt.Sprintf("2001:db8:%x::/%d", i, 48+8*(i%2))})
	}
	ids := []trust.Identity{
		{ClientID: "client-1234"},                                                      // hit by client ID
		{ClientID: "x", Username: "user-99"},                                           // hit by username
		{ClientID: "x", Username: "y", Addr: netip.MustParseAddr("10.0.48.57")},        // hit by IP
		{ClientID: "x", Username: "y", Addr: netip.MustParseAddr("172.20.7.9")},        // hit by CIDR
		{ClientID: "clean", Username: "clean", Addr: netip.MustParseAddr("192.0.2.1")}, // miss everything
	}
	now := time.Now()
	b.Run(fmt.Sprintf("bans=%d/impl=mqttguard", bans.Len()), func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			bans.Banned(ids[i%len(ids)], now)
		}
	})
}
