package redisstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
)

// The fleet on the topologies operators run in production: Sentinel
// (a primary, a replica, three sentinels) and Cluster (three primaries,
// each with a replica). Each test kills the primary that serves the
// fleet's keys mid-run and checks what the issue asks: decisions never
// wait on Redis beyond a bound, a ban made before, during and after the
// failover reaches the other broker, and a shared limit holds.

// topology is a running Redis topology as the failover test drives it.
type topology struct {
	url          string
	killPrimary  func(t *testing.T)
	waitFailover func(t *testing.T)
}

func TestFleetOnSentinelSurvivesFailover(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	testFleetSurvivesFailover(t, topology{
		url:         rs.URL(),
		killPrimary: func(*testing.T) { rs.Primary.Kill() },
		waitFailover: func(t *testing.T) {
			within(t, 30*time.Second, func() bool { return rs.CurrentPrimary() == rs.Replica.Addr }, "the sentinels promote the replica")
		},
	})
}

func TestFleetOnClusterSurvivesFailover(t *testing.T) {
	rc := testenv.StartRedisCluster(t)
	testFleetSurvivesFailover(t, topology{
		url: rc.URL(),
		// Every key of the fleet is in the slot of its prefix's hash tag.
		killPrimary:  func(t *testing.T) { rc.PrimaryFor(t, "{test:}fleet").Kill() },
		waitFailover: func(t *testing.T) { rc.WaitHealthy(t, 30*time.Second) },
	})
}

func testFleetSurvivesFailover(t *testing.T, tp topology) {
	a, b := joinAt(t, tp.url, "a", false), joinAt(t, tp.url, "b", false)
	before := trust.Identity{ClientID: "before", Addr: mustAddr("192.0.2.1")}
	during := trust.Identity{ClientID: "during", Addr: mustAddr("192.0.2.2")}
	after := trust.Identity{ClientID: "after", Addr: mustAddr("192.0.2.3")}
	ban := func(n *node, id trust.Identity) {
		require.NoError(t, n.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: id.ClientID, Until: time.Now().Add(time.Hour), By: "admin"}))
	}

	ban(a, before)
	took := within(t, time.Second, func() bool { return banned(b, before) }, "a ban on A reaches B")
	t.Logf("ban propagated in %v", took)

	// A shared limit, on both brokers, over the topology.
	cfg := ratelimit.SharedConfig{Prefix: "user:", Limit: 50, Burst: 100}
	cfg.Store = clientAt(t, tp.url, "la")
	la, err := ratelimit.NewShared(cfg)
	require.NoError(t, err)
	cfg.Store = clientAt(t, tp.url, "lb")
	lb, err := ratelimit.NewShared(cfg)
	require.NoError(t, err)

	// Decisions all along: a ban check and a shared-limit check, as a
	// broker makes for each CONNECT and PUBLISH. The slowest is kept.
	var slowest atomic.Int64
	var allowed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range []*ratelimit.Shared{la, lb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				banned(a, before)
				if l.AllowN("alice", start, 1) {
					allowed.Add(1)
				}
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	limitStart := time.Now()

	tp.killPrimary(t)
	ban(a, during)
	assert.True(t, banned(a, during), "a ban made during the failover holds on its broker at once")
	failoverStart := time.Now()
	tp.waitFailover(t)
	t.Logf("failover took %v", time.Since(failoverStart))
	took = within(t, 20*time.Second, func() bool { return banned(b, during) }, "the ban made during the failover reaches B once it is over")
	t.Logf("the ban made during the failover reached B %v after the failover", took)

	ban(b, after)
	took = within(t, 2*time.Second, func() bool { return banned(a, after) }, "a ban on B after the failover reaches A")
	t.Logf("after the failover, a ban propagated in %v", took)
	assert.True(t, banned(b, before) && banned(a, before), "the ban made before is still everywhere")

	close(stop)
	wg.Wait()
	elapsed := time.Since(limitStart).Seconds()
	// A decision waits on Redis at most the shared limit's timeout
	// (50 ms) and the ban check never; 250 ms leaves room for -race.
	assert.Less(t, time.Duration(slowest.Load()), 250*time.Millisecond, "a decision stalled on the failover")
	// Through a failover each broker may enforce the limit alone (the
	// default DownPolicy), so together at most twice the limit; the
	// promoted replica may hold an older bucket (replication is
	// asynchronous), or none: one burst (100) more; and a lease (10)
	// stranded on each broker.
	most := 2*(100+50*elapsed) + 100 + 2*10
	assert.LessOrEqual(t, float64(allowed.Load()), most, "the shared limit held within the documented accuracy")
	t.Logf("slowest decision %v; shared limit allowed %d in %.1fs (limit %.0f, bound: %.0f)",
		time.Duration(slowest.Load()), allowed.Load(), elapsed, 100+50*elapsed, most)
}

// A ban the primary took but never replicated, because it died first:
// Redis's asynchronous replication loses it, and a broker that adopted
// the promoted replica's list would unban the client everywhere. The
// broker keeps what no replica confirmed (WAIT) and writes it again
// when it resyncs after the failover.
func TestFleetOnSentinelKeepsAnUnreplicatedBan(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	a, b := joinAt(t, rs.URL(), "a", false), joinAt(t, rs.URL(), "b", false)
	dev := trust.Identity{ClientID: "unreplicated", Addr: mustAddr("192.0.2.9")}

	// Replication stops: the replica is paused, and the primary drops its
	// link (what a paused replica's socket would still take in).
	rs.Replica.Pause()
	require.NoError(t, testenv.RedisDo(rs.Primary.Addr, "CLIENT", "KILL", "TYPE", "replica"))
	require.NoError(t, a.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: dev.ClientID, Until: time.Now().Add(time.Hour), By: "admin"}))
	within(t, 5*time.Second, func() bool { return a.fleet.Stats().Unconfirmed == 1 }, "no replica confirms the ban")
	within(t, time.Second, func() bool { return banned(b, dev) }, "the primary announced it: B has it")
	rs.Primary.Kill() // with the ban, never replicated
	rs.Replica.Resume()
	within(t, 30*time.Second, func() bool { return rs.CurrentPrimary() == rs.Replica.Addr }, "the sentinels promote the replica")
	within(t, 10*time.Second, func() bool { return a.fleet.Stats().Resyncs >= 2 && b.fleet.Stats().Resyncs >= 2 }, "both brokers resync")

	list, err := clientAt(t, rs.URL(), "check").ListBans(ctx(t), time.Now())
	require.NoError(t, err)
	assert.Len(t, list, 1, "the new primary has the ban again")
	assert.True(t, banned(a, dev), "A still bans the client")
	within(t, 5*time.Second, func() bool { return banned(b, dev) }, "B bans it again after adopting the new primary's list")
}

// A confirmation confirms only what the same primary took: after a
// failover, the promoted primary (a new replication ID) confirming a
// later change says nothing of one the old primary took and may have
// lost.
func TestSettleConfirmsOnlyTheSamePrimary(t *testing.T) {
	f := &Fleet{cfg: FleetConfig{MaxPending: 3}}
	ban := func(v string) op {
		return op{ban: &trust.BanChange{Ban: trust.Ban{Kind: trust.BanClientID, Value: v}}}
	}
	values := func() (vs []string) {
		for _, u := range f.unconfirmed {
			vs = append(vs, u.ban.Ban.Value)
		}
		return vs
	}
	f.settle(ban("x"), receipt{primary: "old"})
	f.settle(ban("y"), receipt{primary: "new"})
	assert.Equal(t, []string{"x", "y"}, values())
	f.settle(ban("z"), receipt{primary: "new", confirmed: true})
	assert.Equal(t, []string{"x"}, values(), "the new primary's confirmation confirms y, not x")
	f.settle(ban("w"), receipt{primary: "old", confirmed: true})
	assert.Empty(t, values())
	f.settle(ban("v"), receipt{confirmed: true})
	assert.Empty(t, values(), "a confirmed write is not kept")

	for _, v := range []string{"1", "2", "3", "4"} {
		f.settle(ban(v), receipt{})
	}
	assert.Equal(t, []string{"2", "3", "4"}, values(), "bounded by MaxPending, oldest dropped")
	assert.Equal(t, uint64(1), f.dropped.Load())
	assert.Equal(t, uint64(6), f.notConfirmed.Load())
}
