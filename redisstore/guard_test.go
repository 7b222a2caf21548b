package redisstore_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/redisstore"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guard is one broker's Guard in fleet mode.
func guard(t *testing.T, r *testenv.Redis, node string, rl mqttguard.RateLimits) (*mqttguard.Guard, *trust.Bans) {
	t.Helper()
	c, err := redisstore.New(redisstore.Options{URL: r.URL(), Node: node})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	bans := &trust.Bans{}
	f, err := c.NewFleet(redisstore.FleetConfig{Bans: bans})
	require.NoError(t, err)
	f.Start()
	t.Cleanup(f.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, f.WaitSynced(ctx))
	rl.Store = c
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Bans: bans, AllowAnonymous: true, RateLimits: rl})
	require.NoError(t, err)
	return g, bans
}

func TestTwoGuardsShareOneRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	rl := mqttguard.RateLimits{
		MessagesPerUser:    mqttguard.Rate{PerSecond: 1, Burst: 4},
		MessagesPerClient:  mqttguard.Rate{PerSecond: 1, Burst: 2},
		ConnectionsPerAddr: mqttguard.Rate{PerSecond: 1, Burst: 3},
	}
	a, bansA := guard(t, r, "a", rl)
	b, _ := guard(t, r, "b", rl)
	ctx := context.Background()
	now := time.Now()
	req := func(id string) *mqttguard.ConnectRequest {
		return &mqttguard.ConnectRequest{ClientID: id, Username: "fleet-user", Addr: netip.MustParseAddrPort("192.0.2.1:5000"), ProtocolVersion: 5}
	}

	// Connections per address are counted fleet-wide: 3 in all.
	var clients []mqttguard.Client
	codes := ""
	for i, g := range []*mqttguard.Guard{a, b, a, b} {
		c, d := g.Connect(ctx, req([]string{"c1", "c2", "c3", "c4"}[i]), now)
		codes += d.String() + ";"
		if d.Allowed() {
			clients = append(clients, c)
		}
	}
	require.Len(t, clients, 3, codes)

	// One user's 4 tokens across both Guards. c1's own limit (2) refuses
	// its third message after the user's token was taken: the token goes
	// back (to a's lease), and c3 spends it. 4 of 4 are delivered.
	msg := &mqttguard.Message{Topic: "t", Payload: []byte("x"), Subscribers: -1}
	pub := func(g *mqttguard.Guard, c *mqttguard.Client) string { return g.Publish(ctx, c, msg, now).String() }
	assert.Equal(t, "allow", pub(a, &clients[0]))
	assert.Equal(t, "allow", pub(a, &clients[0]))
	assert.Contains(t, pub(a, &clients[0]), `0x97 by rate-limit "messages per client"`)
	assert.Contains(t, pub(b, &clients[1]), `0x97 by rate-limit "messages per user"`, "the fleet's bucket is empty")
	assert.Equal(t, "allow", pub(a, &clients[2]))
	assert.Equal(t, "allow", pub(a, &clients[2]), "the refunded token")
	assert.Contains(t, pub(a, &clients[2]), `0x97 by rate-limit "messages per user"`)

	// A ban made through one Guard's list refuses on the other within
	// 100 ms.
	require.NoError(t, bansA.Add(trust.Ban{Kind: trust.BanUsername, Value: "fleet-user", Until: now.Add(time.Hour)}))
	deadline := time.Now().Add(100 * time.Millisecond)
	for {
		_, d := b.Connect(ctx, req("c9"), time.Now())
		if d.Code == 0x8A {
			break
		}
		require.True(t, time.Now().Before(deadline), "b still admits the user: %v", d)
		time.Sleep(time.Millisecond)
	}
}

func TestGuardRejectsAnUnknownDownPolicy(t *testing.T) {
	_, err := mqttguard.New(mqttguard.Config{RateLimits: mqttguard.RateLimits{WhenStoreDown: ratelimit.DownRefuse + 1}})
	assert.ErrorContains(t, err, "RateLimits.WhenStoreDown")
}
