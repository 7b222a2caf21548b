package redisstore

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
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

	banUnreplicated(t, rs, a, dev)
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

// A confirmation confirms only what the same primary took, up to its
// offset: after a failover, the promoted primary (a new replication ID)
// confirming a later change says nothing of one the old primary took
// and may have lost.
func TestSettleConfirmsOnlyTheSamePrimary(t *testing.T) {
	f := &Fleet{c: &Client{prefix: "t:"}, cfg: FleetConfig{MaxPending: 3}}
	f.settle(ban("x"), receipt{primary: "old", offset: 10})
	f.settle(ban("y"), receipt{primary: "new", offset: 5})
	f.settle(ban("u"), receipt{primary: "new", offset: 9})
	assert.Equal(t, []string{"x", "y", "u"}, unconfirmed(f))
	f.settle(ban("z"), receipt{primary: "new", offset: 7, confirmed: true})
	assert.Equal(t, []string{"x", "u"}, unconfirmed(f), "the new primary's confirmation at 7 confirms y (5), not u (9) nor x")
	f.settle(ban("w"), receipt{primary: "old", offset: 20, confirmed: true})
	assert.Equal(t, []string{"u"}, unconfirmed(f))
	f.settle(ban("v"), receipt{confirmed: true})
	assert.Equal(t, []string{"u"}, unconfirmed(f), "a confirmed write is not kept")

	for _, v := range []string{"1", "2", "3"} {
		f.settle(ban(v), receipt{})
	}
	assert.Equal(t, []string{"1", "2", "3"}, unconfirmed(f), "bounded by MaxPending, oldest dropped")
	assert.Equal(t, uint64(1), f.dropped.Load())
	assert.Equal(t, uint64(6), f.notConfirmed.Load())

	f.supersede(f.keyOf(ban("2")))
	assert.Equal(t, []string{"1", "3"}, unconfirmed(f), "a later change of the key decides it")
}

// review sorts what no replica confirmed by what the current primary
// says: acknowledged by a replica, carried over by a promoted replica,
// still waiting on this primary, or lost with the old one.
func TestReviewUnconfirmed(t *testing.T) {
	f := &Fleet{c: &Client{prefix: "t:"}, cfg: FleetConfig{MaxPending: 10}}
	f.settle(ban("acked"), receipt{primary: "p1", offset: 100})
	f.settle(ban("waiting"), receipt{primary: "p1", offset: 300})
	f.settle(ban("carried"), receipt{primary: "p0", offset: 50})
	f.settle(ban("lost"), receipt{primary: "p0", offset: 90})
	f.settle(ban("unknown"), receipt{})
	var lost []string
	for _, o := range f.review(replication{id: "p1", offset: 400, replicated: 200, previous: "p0", previousOffset: 60}) {
		lost = append(lost, o.ban.Ban.Value)
	}
	assert.Equal(t, []string{"lost", "unknown"}, lost)
	assert.Equal(t, []string{"waiting"}, unconfirmed(f))

	rep := parseReplication("# Replication\r\nrole:master\r\nconnected_slaves:2\r\n" +
		"slave0:ip=127.0.0.1,port=1,state=online,offset=120,lag=0\r\nslave1:ip=127.0.0.1,port=2,state=online,offset=180,lag=1\r\n" +
		"master_replid:aaa\r\nmaster_replid2:bbb\r\nmaster_repl_offset:200\r\nsecond_repl_offset:77\r\n")
	assert.Equal(t, replication{id: "aaa", previous: "bbb", offset: 200, previousOffset: 77, replicated: 180}, rep)
}

func ban(v string) op {
	return op{ban: &trust.BanChange{Ban: trust.Ban{Kind: trust.BanClientID, Value: v}}}
}

func unconfirmed(f *Fleet) (vs []string) {
	for _, u := range f.unconfirmed {
		vs = append(vs, u.ban.Ban.Value)
	}
	return vs
}

// banUnreplicated stops replication (the replica paused, and its link
// dropped by the primary: a paused replica's socket would still take
// in what the primary sends) and bans ids on n: the primary takes the
// bans, and no replica confirms them.
func banUnreplicated(t *testing.T, rs *testenv.RedisSentinel, n *node, ids ...trust.Identity) {
	t.Helper()
	rs.Replica.Pause()
	require.NoError(t, testenv.RedisDo(rs.Primary.Addr, "CLIENT", "KILL", "TYPE", "replica"))
	for _, id := range ids {
		require.NoError(t, n.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: id.ClientID, Until: time.Now().Add(time.Hour), By: "admin"}))
	}
	within(t, 5*time.Second, func() bool { return n.fleet.Stats().Unconfirmed == len(ids) }, "no replica confirms the bans")
}

// Red team (issue 30): a ban no replica confirmed at first, which the
// replica then caught up with, is lifted on another broker; a routine
// reconnection must not write the old ban again.
func TestFleetLiftedBanStaysLiftedAfterAResync(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	a, b := joinAt(t, rs.URL(), "a", false), joinAt(t, rs.URL(), "b", false)
	dev := trust.Identity{ClientID: "dev-x", Addr: mustAddr("192.0.2.50")}
	banUnreplicated(t, rs, a, dev)
	rs.Replica.Resume() // it catches up: the primary holds the ban, and so does it
	within(t, 5*time.Second, func() bool { return banned(b, dev) }, "B has the ban")

	require.True(t, b.bans.Remove(trust.BanClientID, dev.ClientID))
	within(t, 2*time.Second, func() bool { return !banned(a, dev) }, "the lift reaches A")
	require.NoError(t, testenv.RedisDo(rs.Primary.Addr, "CLIENT", "KILL", "TYPE", "pubsub")) // a routine reconnection
	within(t, 10*time.Second, func() bool { return a.fleet.Stats().Resyncs >= 2 && b.fleet.Stats().Resyncs >= 2 }, "both brokers resync")
	time.Sleep(500 * time.Millisecond)
	list, err := clientAt(t, rs.URL(), "check").ListBans(ctx(t), time.Now())
	require.NoError(t, err)
	assert.Empty(t, list, "Redis")
	assert.False(t, banned(a, dev), "A")
	assert.False(t, banned(b, dev), "B")
}

// Red team (issue 30): during a failover, B lifts a ban A made and no
// replica confirmed, and A lifts one of its own. After it, both stay
// lifted on both brokers and in Redis, and a later reconnection
// changes nothing.
func TestFleetLiftDuringAFailover(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	a, b := joinAt(t, rs.URL(), "a", false), joinAt(t, rs.URL(), "b", false)
	y := trust.Identity{ClientID: "dev-y", Addr: mustAddr("192.0.2.51")}
	z := trust.Identity{ClientID: "dev-z", Addr: mustAddr("192.0.2.52")}
	banUnreplicated(t, rs, a, y, z)
	within(t, time.Second, func() bool { return banned(b, y) && banned(b, z) }, "B has them")
	rs.Primary.Kill()
	rs.Replica.Resume()
	require.True(t, b.bans.Remove(trust.BanClientID, y.ClientID))
	require.True(t, a.bans.Remove(trust.BanClientID, z.ClientID))
	within(t, 30*time.Second, func() bool { return rs.CurrentPrimary() == rs.Replica.Addr }, "the sentinels promote the replica")
	within(t, 10*time.Second, func() bool { return a.fleet.Stats().Resyncs >= 2 && b.fleet.Stats().Resyncs >= 2 }, "both brokers resync")
	check := func(when string) {
		t.Helper()
		time.Sleep(time.Second)
		list, err := clientAt(t, rs.URL(), "check").ListBans(ctx(t), time.Now())
		require.NoError(t, err)
		assert.Empty(t, list, "Redis, %s", when)
		for _, id := range []trust.Identity{y, z} {
			assert.False(t, banned(a, id) || banned(b, id), "%s lifted everywhere, %s", id.ClientID, when)
		}
	}
	check("after the failover")
	require.NoError(t, testenv.RedisDo(rs.Replica.Addr, "CLIENT", "KILL", "TYPE", "pubsub"))
	within(t, 10*time.Second, func() bool { return a.fleet.Stats().Resyncs >= 3 && b.fleet.Stats().Resyncs >= 3 }, "both brokers resync again")
	check("after a later reconnection")
}

// Red team (issue 30): redis:// pointed at a replica. The broker says
// what is wrong and what to write instead, rather than "in sync" while
// every change it makes fails.
func TestFleetSaysWhenTheURLIsAReplica(t *testing.T) {
	rs := testenv.StartRedisSentinel(t)
	var log mqtttest.SyncBuffer
	c, err := New(Options{URL: "redis://" + rs.Replica.Addr, Node: "a", Prefix: "test:",
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	bans := &trust.Bans{}
	f, err := c.NewFleet(FleetConfig{Bans: bans, RetryAfter: 20 * time.Millisecond, MaxRetryAfter: 100 * time.Millisecond})
	require.NoError(t, err)
	f.Start()
	t.Cleanup(f.Close)
	require.NoError(t, bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "dev", Until: time.Now().Add(time.Hour)}))
	within(t, 5*time.Second, func() bool { return strings.Contains(log.String(), "the server is a replica") }, "the log says the URL names a replica")

}
