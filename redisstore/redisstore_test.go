package redisstore

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func client(t testing.TB, r *testenv.Redis, node string) *Client {
	t.Helper()
	return clientAt(t, r.URL(), node)
}

// clientAt is a Client of the Redis at url (any topology).
func clientAt(t testing.TB, url, node string) *Client {
	t.Helper()
	c, err := New(Options{URL: url, Node: node, Prefix: "test:"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestTakeIsGCRA(t *testing.T) {
	r := testenv.StartRedis(t)
	c := client(t, r, "a")
	ms := time.Millisecond
	// Burst 10 at 100 ms per event: tolerance 1 s.
	for i := 0; i < 10; i++ {
		got, wait, err := c.Take(ctx(t), "k", time.Second, 100*ms, 100*ms)
		require.NoError(t, err)
		require.Equal(t, 100*ms, got, "event %d", i)
		require.Zero(t, wait)
	}
	got, wait, err := c.Take(ctx(t), "k", time.Second, 100*ms, 100*ms)
	require.NoError(t, err)
	assert.Zero(t, got)
	assert.InDelta(t, float64(100*ms), float64(wait), float64(50*ms), "the next event fits in about one interval")

	// A partial grant: at most what is there, at least min.
	got, _, err = c.Take(ctx(t), "k2", time.Second, 100*ms, 5*time.Second)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Second), float64(got), float64(5*ms))
	got, _, err = c.Take(ctx(t), "k3", time.Second, 2*time.Second, 2*time.Second)
	require.NoError(t, err)
	assert.Zero(t, got, "more than the tolerance never fits")

	// The key expires when the bucket is full again.
	ttl, err := c.rdb.PTTL(ctx(t), "test:rl:k2").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Second), float64(ttl), float64(100*ms))
}

func TestSharedLimitOverRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := client(t, r, "a"), client(t, r, "b")
	cfg := ratelimit.SharedConfig{Prefix: "user:", Limit: 50, Burst: 100}
	cfg.Store = a
	la, err := ratelimit.NewShared(cfg)
	require.NoError(t, err)
	cfg.Store = b
	lb, err := ratelimit.NewShared(cfg)
	require.NoError(t, err)

	// Two brokers hammer one user's bucket for 1.5 s: together they get
	// the burst plus 50/s, less at most one lease (10) each.
	start := time.Now()
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for _, l := range []*ratelimit.Shared{la, lb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for time.Since(start) < 1500*time.Millisecond {
				if l.AllowN("alice", time.Now(), 1) {
					n++
				}
				time.Sleep(200 * time.Microsecond)
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	most := 100 + 50*elapsed
	assert.LessOrEqual(t, float64(allowed), most+1, "never more than the limit")
	assert.GreaterOrEqual(t, float64(allowed), most-2*10-5, "at most a lease each stranded (and scheduling)")
	assert.True(t, la.Healthy() && lb.Healthy())
	t.Logf("allowed %d in %.2fs (limit: %.0f); store calls a=%d b=%d", allowed, elapsed, most,
		la.Stats().StoreCalls, lb.Stats().StoreCalls)
}

func TestBansInRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	c := client(t, r, "a")
	now := time.Now()
	require.NoError(t, c.PutBan(ctx(t), trust.Ban{Kind: trust.BanClientID, Value: "dev:1*", Until: now.Add(time.Minute), Reason: "flood"}))
	require.NoError(t, c.PutBan(ctx(t), trust.Ban{Kind: trust.BanCIDR, Value: "10.0.0.0/8"}))
	require.NoError(t, c.PutBan(ctx(t), trust.Ban{Kind: trust.BanUsername, Value: "old", Until: now.Add(-time.Second)}))
	bans, err := c.ListBans(ctx(t), now)
	require.NoError(t, err)
	require.Len(t, bans, 2, "an expired ban is not stored")
	ttl, err := c.rdb.PTTL(ctx(t), "test:ban:client:dev:1*").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Minute), float64(ttl), float64(2*time.Second), "Redis expires the ban at Until")
	ttl, err = c.rdb.PTTL(ctx(t), "test:ban:cidr:10.0.0.0/8").Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "a permanent ban has no expiry")

	// A value that looks like a glob does not match other keys, and a
	// foreign entry that does not parse is skipped.
	require.NoError(t, c.rdb.Set(ctx(t), "test:ban:client:junk", "{not json", 0).Err())
	require.NoError(t, c.rdb.Set(ctx(t), "other:ban:client:x", `{"kind":"client","value":"x"}`, 0).Err())
	bans, err = c.ListBans(ctx(t), now)
	require.NoError(t, err)
	assert.Len(t, bans, 2)

	require.NoError(t, c.DeleteBan(ctx(t), trust.Ban{Kind: trust.BanClientID, Value: "dev:1*"}))
	bans, err = c.ListBans(ctx(t), now)
	require.NoError(t, err)
	require.Len(t, bans, 1)
	assert.Equal(t, "10.0.0.0/8", bans[0].Value)
}

// node is one broker's state, as the fleet tests see it.
type node struct {
	bans   *trust.Bans
	trust  *trust.Tracker
	fleet  *Fleet
	mu     sync.Mutex
	kicked []string
}

func (n *node) kicks() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.kicked...)
}

func join(t *testing.T, r *testenv.Redis, name string, seed bool, bans ...trust.Ban) *node {
	t.Helper()
	return joinAt(t, r.URL(), name, seed, bans...)
}

// joinAt is join on the Redis at url (any topology).
func joinAt(t *testing.T, url, name string, seed bool, bans ...trust.Ban) *node {
	t.Helper()
	n := &node{bans: &trust.Bans{}}
	for _, b := range bans {
		require.NoError(t, n.bans.Add(b))
	}
	n.bans.WatchAdded(func(b trust.Ban) {
		n.mu.Lock()
		n.kicked = append(n.kicked, "ban "+b.Value)
		n.mu.Unlock()
	})
	var fleet *Fleet
	// Spacing off: these tests record violations at one instant.
	tr, err := trust.New(trust.Config{Mode: trust.EnforceFull, Spacing: -1, OnTransition: func(x trust.Transition) {
		if x.To == trust.Disconnected && x.Escalation {
			n.mu.Lock()
			n.kicked = append(n.kicked, "trust "+x.Key)
			n.mu.Unlock()
		}
		fleet.Transition(x)
	}})
	require.NoError(t, err)
	n.trust = tr
	c := clientAt(t, url, name)
	fleet, err = c.NewFleet(FleetConfig{Bans: n.bans, Trust: tr, SeedBans: seed, RetryAfter: 20 * time.Millisecond, MaxRetryAfter: 200 * time.Millisecond})
	require.NoError(t, err)
	n.fleet = fleet
	fleet.Start()
	t.Cleanup(fleet.Close)
	require.NoError(t, fleet.WaitSynced(ctx(t)))
	return n
}

// within waits up to d for cond, and reports how long it took.
func within(t *testing.T, d time.Duration, cond func() bool, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func banned(n *node, id trust.Identity) bool {
	_, ok := n.bans.Banned(id, time.Now())
	return ok
}

func TestFleetBanReachesEveryBroker(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := join(t, r, "a", false), join(t, r, "b", false)
	dev := trust.Identity{ClientID: "dev-7", Addr: mustAddr("192.0.2.7")}

	require.NoError(t, a.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "dev-7", Until: time.Now().Add(time.Hour), By: "admin"}))
	took := within(t, 100*time.Millisecond, func() bool { return banned(b, dev) }, "ban on A refuses on B")
	within(t, 100*time.Millisecond, func() bool { return len(b.kicks()) == 1 }, "B kicks the banned client's sessions")
	t.Logf("ban propagated in %v", took)
	assert.Equal(t, []string{"ban dev-7"}, b.kicks())

	require.NoError(t, b.bans.Add(trust.Ban{Kind: trust.BanCIDR, Value: "192.0.2.0/24"}))
	within(t, 100*time.Millisecond, func() bool { return len(a.bans.List(time.Now())) == 2 }, "B's ban reaches A")

	assert.True(t, a.bans.Remove(trust.BanClientID, "dev-7"))
	within(t, 100*time.Millisecond, func() bool { return len(b.bans.List(time.Now())) == 1 }, "a lifted ban is lifted everywhere")
	// Each kicks for its own bans and the other's, once: no echo.
	assert.Equal(t, []string{"ban dev-7", "ban 192.0.2.0/24"}, b.kicks())
	assert.Equal(t, []string{"ban dev-7", "ban 192.0.2.0/24"}, a.kicks())

	// A third broker joining later starts with the fleet's list.
	c := join(t, r, "c", false)
	assert.True(t, banned(c, dev), "by its address")
	assert.Equal(t, uint64(0), a.fleet.Stats().Bad+b.fleet.Stats().Bad)
}

func TestFleetTrustRecordFollowsTheClient(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := join(t, r, "a", false), join(t, r, "b", false)
	rogue := trust.Identity{ClientID: "rogue"}
	now := time.Now()
	for i := 0; i < 3; i++ {
		a.trust.Violation(rogue, trust.Malformed, now)
	}
	require.Equal(t, trust.Disconnected, a.trust.State(rogue, now))
	within(t, 100*time.Millisecond, func() bool { return b.trust.State(rogue, time.Now()) == trust.Disconnected }, "B adopts A's record")
	within(t, 100*time.Millisecond, func() bool { return len(b.kicks()) == 1 }, "B kicks the client")
	assert.Equal(t, []string{"trust rogue"}, b.kicks())
	assert.Equal(t, a.trust.Score(rogue, now), b.trust.Score(rogue, time.Now()), "the score travels with the state")

	// Throttled is local: a client that slipped once on A starts afresh
	// on B.
	for range 4 {
		a.trust.Violation(trust.Identity{ClientID: "slip"}, trust.ACLDenied, now)
	}
	require.Equal(t, trust.Throttled, a.trust.State(trust.Identity{ClientID: "slip"}, now))

	// A broker that joins later adopts the record from Redis, with the
	// ban period counted from A's transition.
	c := join(t, r, "c", false)
	assert.Equal(t, trust.Disconnected, c.trust.State(rogue, time.Now()))
	assert.Equal(t, trust.Normal, c.trust.State(trust.Identity{ClientID: "slip"}, time.Now()))
	end := now.Add(c.trust.Config().BanDuration)
	assert.Equal(t, trust.ShadowBanned, c.trust.State(rogue, end.Add(time.Second)))
}

func TestFleetSurvivesRedisOutage(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := join(t, r, "a", false), join(t, r, "b", false)
	require.NoError(t, a.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "before"}))
	within(t, 100*time.Millisecond, func() bool { return banned(b, trust.Identity{ClientID: "before"}) }, "ban before the outage")
	rogue := trust.Identity{ClientID: "rogue"}
	for range 3 {
		a.trust.Violation(rogue, trust.Malformed, time.Now())
	}
	within(t, 100*time.Millisecond, func() bool { return b.trust.State(rogue, time.Now()) == trust.Disconnected }, "a record before the outage")

	limit, err := ratelimit.NewShared(ratelimit.SharedConfig{Store: a.fleet.c, Prefix: "user:", Limit: 1, Burst: 2, Lease: -1})
	require.NoError(t, err)
	require.True(t, limit.AllowN("u", time.Now(), 1))

	r.Stop()
	within(t, 5*time.Second, func() bool { return !a.fleet.Stats().Connected && !b.fleet.Stats().Connected }, "both notice the outage")
	// The last known bans are kept; local bans still work and queue.
	assert.True(t, banned(b, trust.Identity{ClientID: "before"}))
	require.NoError(t, a.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "during"}))
	assert.True(t, banned(a, trust.Identity{ClientID: "during"}))
	assert.False(t, banned(b, trust.Identity{ClientID: "during"}))
	// Shared limits fall back to the local bucket at once, without
	// waiting on the dead Redis twice.
	start := time.Now()
	got := 0
	for i := 0; i < 100; i++ {
		if limit.AllowN("u2", time.Now(), 1) {
			got++
		}
	}
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, 2, got, "DownLocal: the burst of the local bucket")
	assert.False(t, limit.Healthy())
	assert.Equal(t, 1, a.fleet.Stats().Pending)

	// Redis comes back empty (no persistence): the brokers see that it
	// lost the fleet's data and put their bans and shared records back,
	// within a second; nobody is unbanned, not for a moment.
	r.Start()
	inRedis := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		list, err := a.fleet.c.ListBans(ctx, time.Now())
		recs, err2 := a.fleet.c.ListRecords(ctx)
		if err != nil || err2 != nil {
			return false
		}
		values := map[string]bool{}
		for _, b := range list {
			values[b.Value] = true
		}
		return values["before"] && values["during"] && len(recs) > 0
	}
	stop := make(chan struct{})
	unbanned := make(chan string, 1)
	go func() { // watches B every millisecond until the end
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if !banned(b, trust.Identity{ClientID: "before"}) {
				select {
				case unbanned <- "before":
				default:
				}
			}
		}
	}()
	within(t, time.Second, inRedis, "the bans and the record are back in Redis within a second")
	within(t, time.Second, func() bool { return banned(b, trust.Identity{ClientID: "during"}) }, "the queued ban reaches B after the restart")
	within(t, 5*time.Second, func() bool { return a.fleet.Stats().Connected && b.fleet.Stats().Connected }, "both resync")
	close(stop)
	select {
	case id := <-unbanned:
		t.Errorf("%q was unbanned on B during the resync", id)
	default:
	}
	assert.Equal(t, trust.Disconnected, b.trust.State(rogue, time.Now()))
	assert.Equal(t, 0, a.fleet.Stats().Pending)
	time.Sleep(150 * time.Millisecond) // the limiter's backoff (100 ms)
	assert.True(t, limit.AllowN("u3", time.Now(), 1))
	assert.True(t, limit.Healthy())
}

func TestFleetSeedsBansOnFirstSync(t *testing.T) {
	r := testenv.StartRedis(t)
	a := join(t, r, "a", true, trust.Ban{Kind: trust.BanUsername, Value: "from-file"})
	b := join(t, r, "b", false, trust.Ban{Kind: trust.BanUsername, Value: "stale"})
	assert.True(t, banned(b, trust.Identity{Username: "from-file"}), "A's ban file joined the fleet")
	assert.False(t, banned(b, trust.Identity{Username: "stale"}), "without SeedBans the fleet's list wins")
	assert.True(t, banned(a, trust.Identity{Username: "from-file"}))
}

func TestFleetIgnoresGarbage(t *testing.T) {
	r := testenv.StartRedis(t)
	a := join(t, r, "a", false)
	c := client(t, r, "x")
	// Past the moment after a sync when events are checked against
	// Redis first (and one it does not hold is dropped unread).
	time.Sleep(verifyFor)
	for _, msg := range []string{"not json", `{"node":"x","ban":{"ban":{"kind":"cidr","value":"nope"}}}`,
		`{"node":"x","record":{"dim":0,"key":"","state":4}}`} {
		require.NoError(t, c.rdb.Publish(ctx(t), c.channel, msg).Err())
	}
	within(t, time.Second, func() bool { return a.fleet.Stats().Bad == 3 }, "three bad events counted")
	require.NoError(t, c.PutBan(ctx(t), trust.Ban{Kind: trust.BanClientID, Value: "ok"}))
	within(t, 100*time.Millisecond, func() bool { return banned(a, trust.Identity{ClientID: "ok"}) }, "still listening")
}

func TestNewChecksTheURL(t *testing.T) {
	_, err := New(Options{})
	assert.ErrorContains(t, err, "Options.URL is empty")
	_, err = New(Options{URL: "http://user:secret@host/"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "a password never reaches a log")
	// Sentinel: the sentinels' password in the authority, the primary's
	// in a parameter; a URL it cannot parse names neither.
	_, err = New(Options{URL: "redis-sentinel://sent:s3cret@127.0.0.1:26379?master_name=m&password=pr1mary&bogus=1"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.NotContains(t, err.Error(), "pr1mary")
	// go-redis's parse errors repeat the URL (red team, issue 30).
	for _, u := range []string{"redis-cluster://fleet:S3CRET@127.0.0.1:6379x?addr=127.0.0.1:6380",
		"redis://fleet:Pa%ssw0rd@127.0.0.1:6379/0", "redis-sentinel://s:S3CRET@127.0.0.1:x?master_name=m"} {
		_, err = New(Options{URL: u})
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "S3CRET", u)
		assert.NotContains(t, err.Error(), "ssw0rd", u)
	}
	_, err = New(Options{URL: "redis-sentinel://127.0.0.1:26379?addr=127.0.0.1:26380"})
	assert.ErrorContains(t, err, "master_name=", "a Sentinel URL without the master's name")
	_, err = New(Options{URL: "redis-cluster://u:cl0ster@127.0.0.1:6379?nonsense=1"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "cl0ster")
	for _, url := range []string{"redis-sentinel://127.0.0.1:26379?master_name=m&addr=127.0.0.1:26380",
		"rediss-cluster://u:p@127.0.0.1:6379?addr=127.0.0.1:6380"} {
		c, err := New(Options{URL: url})
		require.NoError(t, err, url)
		c.Close()
	}
	c, err := New(Options{URL: "redis://127.0.0.1:1/0"})
	require.NoError(t, err, "New does not connect")
	assert.Error(t, c.Ping(ctx(t)))
	c.Close()
	_, err = (&Client{}).NewFleet(FleetConfig{})
	assert.ErrorContains(t, err, "Bans is nil")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// A FLUSHALL keeps the connections: the brokers notice the fleet's data
// is gone at their next idle check (every 2 s) and put it back.
func TestFleetReseedsAFlushedRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	a, b := join(t, r, "a", false), join(t, r, "b", false)
	require.NoError(t, a.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "keep"}))
	within(t, 100*time.Millisecond, func() bool { return banned(b, trust.Identity{ClientID: "keep"}) }, "B has the ban")
	ctx := context.Background()
	require.NoError(t, a.fleet.c.rdb.FlushAll(ctx).Err())
	within(t, 5*time.Second, func() bool {
		list, err := a.fleet.c.ListBans(ctx, time.Now())
		return err == nil && len(list) == 1 && list[0].Value == "keep"
	}, "the ban is back in Redis")
	assert.True(t, banned(a, trust.Identity{ClientID: "keep"}))
	assert.True(t, banned(b, trust.Identity{ClientID: "keep"}))
}
