package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFleet runs two example brokers sharing one Redis, as two nodes of
// a fleet behind a load balancer would.
func startFleet(t *testing.T, redis *testenv.Redis, edit func(*guardconf.Config)) (a, b *testBroker) {
	t.Helper()
	return startFleetAt(t, redis.URL(), edit)
}

// startFleetAt is startFleet on the Redis at url (any topology).
func startFleetAt(t *testing.T, url string, edit func(*guardconf.Config)) (a, b *testBroker) {
	t.Helper()
	node := func(name string) *testBroker {
		return startBroker(t, func(c *guardconf.Config) {
			c.Cluster.RedisURL, c.Cluster.Node = url, name
			if edit != nil {
				edit(c)
			}
		})
	}
	return node("a"), node("b")
}

func kicked(t *testing.T, c *e2e.V5, within time.Duration) (*paho.Disconnect, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case d := <-c.Kicks:
		return d, time.Since(start)
	case <-time.After(within):
		t.Fatalf("not disconnected within %v", within)
		return nil, 0
	}
}

func TestFleetBanOnOneBrokerKicksOnTheOther(t *testing.T) {
	redis := testenv.StartRedis(t)
	a, b := startFleet(t, redis, nil)
	dev := b.Login(t, "dev-1", "sensor1")
	require.Equal(t, byte(0), dev.Pub(t, "sensors/sensor1/temp", "21.5", 1))

	code, body := a.Admin(t, "POST", "/bans", `{"kind": "client", "value": "dev-1", "for": "1h", "reason": "stolen"}`)
	require.Equal(t, 201, code, body)
	d, took := kicked(t, dev, 100*time.Millisecond)
	assert.Equal(t, byte(0x98), d.ReasonCode, "banned")
	t.Logf("ban on broker a kicked the client on broker b after %v", took)

	_, ca, err := b.Dial5(t, e2e.DialOpts{ID: "dev-1", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode, "and refuses it there")
	assert.Equal(t, "1", b.Metric(t, "mqttguard_fleet_connected"))
	require.Eventually(t, func() bool {
		saved, _ := os.ReadFile(filepath.Join(b.Dir, "bans.jsonl"))
		return strings.Contains(string(saved), `"value":"dev-1"`)
	}, 2*time.Second, 10*time.Millisecond, "b saves the fleet's ban to its own ban file")

	// Lifted on b, the client may come back to a.
	code, body = b.Admin(t, "DELETE", "/bans/client/dev-1", "")
	require.Equal(t, 200, code, body)
	require.Eventually(t, func() bool {
		c, _, err := a.Dial5(t, e2e.DialOpts{ID: "dev-1", User: "sensor1", Pass: passwords["sensor1"]})
		if err == nil {
			c.Disconnect(&paho.Disconnect{})
		}
		return err == nil
	}, time.Second, 20*time.Millisecond)
}

// Two example brokers on a Redis that loses its primary: a Sentinel
// topology and a Cluster. A ban made on a before the failover, and one
// made after it, each kick the client on b.
func TestFleetKicksAcrossAFailover(t *testing.T) {
	for _, topo := range []string{"sentinel", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			var url string
			var kill, healed func()
			if topo == "sentinel" {
				rs := testenv.StartRedisSentinel(t)
				url, kill = rs.URL(), rs.Primary.Kill
				healed = func() {
					require.Eventually(t, func() bool { return rs.CurrentPrimary() == rs.Replica.Addr }, 30*time.Second, 50*time.Millisecond)
				}
			} else {
				rc := testenv.StartRedisCluster(t)
				url = rc.URL()
				kill = func() { rc.PrimaryFor(t, "{mqttguard:}fleet").Kill() }
				healed = func() { rc.WaitHealthy(t, 30*time.Second) }
			}
			a, b := startFleetAt(t, url, nil)
			ban := func(id string) {
				t.Helper()
				dev := b.Login(t, id, "sensor1")
				code, body := a.Admin(t, "POST", "/bans", `{"kind": "client", "value": "`+id+`", "for": "1h", "reason": "stolen"}`)
				require.Equal(t, 201, code, body)
				d, took := kicked(t, dev, 2*time.Second)
				assert.Equal(t, byte(0x98), d.ReasonCode, "banned")
				t.Logf("%s: a ban on broker a kicked %s on broker b after %v", topo, id, took)
			}
			ban("dev-before")
			kill()
			healed()
			require.Eventually(t, func() bool {
				return a.Metric(t, "mqttguard_fleet_connected") == "1" && b.Metric(t, "mqttguard_fleet_connected") == "1"
			},
				20*time.Second, 50*time.Millisecond, "both brokers back in sync with the promoted primary")
			ban("dev-after")
			_, ca, err := b.Dial5(t, e2e.DialOpts{ID: "dev-before", User: "sensor1", Pass: passwords["sensor1"]})
			require.Error(t, err, "the ban made before the failover still holds")
			assert.Equal(t, byte(0x8A), ca.ReasonCode)
		})
	}
}

func TestFleetSharesTheUserLimit(t *testing.T) {
	redis := testenv.StartRedis(t)
	a, b := startFleet(t, redis, func(c *guardconf.Config) {
		r := &c.Security.RateLimit
		r.UserTokensPerSecond, r.UserBurstCapacity = 1, 6 // a lease of 1
		r.ChannelMessagesPerSecond = 0
		c.Security.Devices = nil
	})
	// One user, one device on each broker, ten readings each at once.
	var subs []*e2e.V5
	for _, n := range []*testBroker{a, b} {
		s := n.Login(t, "dash-"+n.Addr("tcp"), "dashboard")
		require.Equal(t, byte(1), s.Sub(t, "sensors/#"))
		subs = append(subs, s)
	}
	devA, devB := a.Login(t, "s2-a", "sensor2"), b.Login(t, "s2-b", "sensor2")
	start := time.Now()
	for i := 0; i < 10; i++ {
		devA.Pub(t, "sensors/sensor2/a", "x", 1)
		devB.Pub(t, "sensors/sensor2/b", "x", 1)
	}
	elapsed := time.Since(start)
	delivered := len(subs[0].Received(300*time.Millisecond)) + len(subs[1].Received(10*time.Millisecond))
	// The burst (6) plus what refilled at 1/s, less at most one lease
	// (1 message) stranded on each broker. Alone, each broker would have
	// let 6 through: 12.
	most := 6 + int(elapsed.Seconds()) + 1
	assert.LessOrEqual(t, delivered, most, "the fleet holds one user to one limit (elapsed %v)", elapsed)
	assert.GreaterOrEqual(t, delivered, 6-2)
	t.Logf("delivered %d of 20 in %v (limit %d)", delivered, elapsed, most)
}

func TestFleetRidesOutARedisOutage(t *testing.T) {
	redis := testenv.StartRedis(t)
	a, b := startFleet(t, redis, nil)
	devB := b.Login(t, "dev-2", "sensor1")

	redis.Stop()
	require.Eventually(t, func() bool { return a.Metric(t, "mqttguard_fleet_connected") == "0" }, 5*time.Second, 20*time.Millisecond)
	// Traffic goes on, and a ban still holds where it was made.
	assert.Equal(t, byte(0), devB.Pub(t, "sensors/sensor1/temp", "20", 1))
	code, body := a.Admin(t, "POST", "/bans", `{"kind": "client", "value": "dev-2", "for": "1h"}`)
	require.Equal(t, 201, code, body)
	_, ca, err := a.Dial5(t, e2e.DialOpts{ID: "dev-2", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode)
	assert.Equal(t, "1", a.Metric(t, "mqttguard_fleet_pending"))
	assert.Equal(t, byte(0), devB.Pub(t, "sensors/sensor1/temp", "20.5", 1), "b has not heard of it")

	// Redis back: a flushes its queue, b hears the ban and kicks.
	redis.Start()
	d, took := kicked(t, devB, 10*time.Second)
	assert.Equal(t, byte(0x98), d.ReasonCode)
	t.Logf("converged %v after the restart", took)
	assert.Equal(t, "0", a.Metric(t, "mqttguard_fleet_pending"))
	assert.Contains(t, a.Logs.String(), "fleet: Redis unreachable")
}
