package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/redis/go-redis/v9"
)

// Options configure a Client. Only URL is required.
type Options struct {
	// URL of the Redis the fleet shares, in one of three forms:
	//
	//   - one server: redis://[user:password@]host:port/db, rediss://…
	//     for TLS, or unix:///path/to/redis.sock;
	//   - Sentinel: redis-sentinel://[user:password@]host:port/db?master_name=NAME&addr=host:port&addr=…
	//     (rediss-sentinel:// for TLS): the sentinels' addresses, the
	//     user and password in the authority are the sentinels', and
	//     username= and password= parameters the primary's;
	//   - Cluster: redis-cluster://[user:password@]host:port?addr=host:port&addr=…
	//     (rediss-cluster:// for TLS): seed nodes.
	//
	// See the package documentation for what each topology gives.
	URL string
	// Prefix is put before every key and the channel (default
	// "mqttguard:"), so that one Redis can hold several fleets.
	Prefix string
	// Node names this broker in the fleet (default host name, process ID
	// and a random suffix). A broker ignores its own notifications.
	Node string
	// DialTimeout bounds a connection attempt (default 1 s).
	DialTimeout time.Duration
	// Logger hears when Redis goes away and comes back (nil: no log).
	Logger *slog.Logger
}

// Client is a connection pool to one Redis that holds a fleet's bans,
// trust records and rate-limit buckets. It implements trust.BanStore,
// trust.RecordStore and ratelimit.Store; NewFleet keeps a broker's local
// copies in step with it. A Client is safe for concurrent use.
type Client struct {
	rdb redis.UniversalClient
	// cluster is rdb on a Redis Cluster, nil otherwise: the fleet's keys
	// share one hash slot, whose primary scan asks.
	cluster *redis.ClusterClient
	// replicated: the topology keeps replicas (Sentinel, Cluster), and a
	// write counts as confirmed once one of them holds it (transact).
	replicated bool
	// noReplicaUntil (unix ns): a wait for a replica failed; until then
	// writes do not wait for one (each would hold the queue
	// replicaWait), and count as unconfirmed.
	noReplicaUntil atomic.Int64
	prefix         string
	node           string
	channel        string
	log            *slog.Logger
}

var (
	_ trust.BanStore    = (*Client)(nil)
	_ trust.RecordStore = (*Client)(nil)
	_ ratelimit.Store   = (*Client)(nil)
)

// New checks the options and returns a Client. It does not connect:
// Redis may come up after the broker, and every call reconnects.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("redisstore: Options.URL is empty; want redis://host:port/db or unix:///path")
	}
	rdb, cluster, err := dial(opts)
	if err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = "mqttguard:"
	}
	if cluster != nil && !strings.Contains(opts.Prefix, "{") {
		// A hash tag: every key and the channel in one slot, so that the
		// transactions and MGETs that span keys run on one primary.
		opts.Prefix = "{" + opts.Prefix + "}"
	}
	if opts.Node == "" {
		opts.Node = defaultNode()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scheme, _, _ := strings.Cut(opts.URL, "://")
	return &Client{rdb: rdb, cluster: cluster, replicated: strings.HasSuffix(scheme, "-sentinel") || cluster != nil,
		prefix: opts.Prefix, node: opts.Node,
		channel: opts.Prefix + "events", log: log}, nil
}

// dial makes the client for opts.URL's topology. It does not connect.
func dial(opts Options) (redis.UniversalClient, *redis.ClusterClient, error) {
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	bad := func(err error) error {
		return fmt.Errorf("redisstore: Options.URL %q: %v", redactURL(opts.URL), err)
	}
	scheme, rest, _ := strings.Cut(opts.URL, "://")
	// The callers' contexts carry the deadlines (a rate-limit check waits
	// 50 ms at most); one retry covers a connection Redis closed while
	// idle, more would only stretch an outage. The Fleet and
	// ratelimit.Shared back off on their own.
	switch scheme {
	case "redis-sentinel", "rediss-sentinel":
		fo, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "-sentinel") + "://" + rest)
		if err != nil {
			return nil, nil, bad(err)
		}
		if fo.MasterName == "" {
			return nil, nil, bad(errors.New("a Sentinel URL needs master_name=, the name the sentinels monitor the primary by"))
		}
		fo.DialTimeout, fo.ContextTimeoutEnabled, fo.MaxRetries, fo.DialerRetries, fo.DisableIdentity = timeout, true, 1, 1, true
		return redis.NewFailoverClient(fo), nil, nil
	case "redis-cluster", "rediss-cluster":
		co, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "-cluster") + "://" + rest)
		if err != nil {
			return nil, nil, bad(err)
		}
		co.DialTimeout, co.ContextTimeoutEnabled, co.MaxRetries, co.DialerRetries, co.DisableIdentity = timeout, true, 1, 1, true
		cc := redis.NewClusterClient(co)
		return cc, cc, nil
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, nil, bad(err)
	}
	ro.DialTimeout, ro.ContextTimeoutEnabled, ro.MaxRetries, ro.DialerRetries, ro.DisableIdentity = timeout, true, 1, 1, true
	return redis.NewClient(ro), nil, nil
}

// replicaWait bounds how long a write waits for a replica to confirm it
// (WAIT). Replication on a LAN takes well under a millisecond; a
// replica that is down or behind must not hold the fleet's queue.
const replicaWait = 250 * time.Millisecond

// receipt is what a write learnt: whether a replica confirmed it, and
// the replication ID of the primary that took it ("" when not known).
// A primary promoted by a failover starts a new replication ID, so a
// confirmation from it says nothing of what the old one took.
type receipt struct {
	confirmed bool
	primary   string
}

// transact runs fn as one MULTI/EXEC on the primary that holds key. On
// a topology with replicas it then waits, on the same connection, up to
// replicaWait for one replica to hold it (Redis replicates
// asynchronously, so a write the primary took can die with it), and
// reads the primary's replication ID. With no replicas, a write is
// confirmed when the server took it.
func (c *Client) transact(ctx context.Context, key string, fn func(redis.Pipeliner) error) (receipt, error) {
	if !c.replicated {
		_, err := c.rdb.TxPipelined(ctx, fn)
		return receipt{confirmed: err == nil}, err
	}
	var conn *redis.Conn
	switch rdb := c.rdb.(type) {
	case *redis.ClusterClient:
		primary, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			return receipt{}, err
		}
		conn = primary.Conn()
	case *redis.Client:
		conn = rdb.Conn()
	default:
		return receipt{}, fmt.Errorf("redisstore: no single connection on a %T", c.rdb)
	}
	defer conn.Close()
	if _, err := conn.TxPipelined(ctx, fn); err != nil {
		return receipt{}, err
	}
	r := receipt{primary: replicationID(ctx, conn)}
	if time.Now().UnixNano() < c.noReplicaUntil.Load() {
		return r, nil
	}
	n, err := conn.Wait(ctx, 1, replicaWait).Result()
	if err != nil || n < 1 {
		c.noReplicaUntil.Store(time.Now().Add(noReplicaFor).UnixNano())
		return r, nil
	}
	r.confirmed = true
	return r, nil
}

// replicationID is the master_replid of the server conn is on, or "".
func replicationID(ctx context.Context, conn *redis.Conn) string {
	info, err := conn.Info(ctx, "replication").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "master_replid:"); ok {
			return id
		}
	}
	return ""
}

// noReplicaFor is how long writes stop waiting for a replica after a
// wait failed: at most one write a second waits replicaWait while the
// replicas are gone.
const noReplicaFor = time.Second

// Node is this broker's name in the fleet.
func (c *Client) Node() string { return c.node }

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }

func defaultNode() string {
	host, _ := os.Hostname()
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// redactURL hides the passwords in a URL for error messages: the
// authority's, and a Sentinel URL's password= parameter (the primary's).
func redactURL(u string) string {
	if q := strings.IndexByte(u, '?'); q >= 0 {
		params := strings.Split(u[q+1:], "&")
		for i, p := range params {
			if name, _, ok := strings.Cut(p, "="); ok && strings.Contains(strings.ToLower(name), "password") {
				params[i] = name + "=…"
			}
		}
		u = u[:q+1] + strings.Join(params, "&")
	}
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	if q := strings.IndexByte(u, '?'); q >= 0 && at > q {
		return u // an @ in the query, not in the authority
	}
	return u[:scheme+3] + "…" + u[at:]
}

// globEscape escapes SCAN MATCH's special characters in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scan returns every key with the given prefix (SCAN: it never blocks
// Redis the way KEYS does).
func (c *Client) scan(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	var node redis.Cmdable = c.rdb
	if c.cluster != nil {
		// SCAN walks one node: the primary of the fleet's slot.
		primary, err := c.cluster.MasterForKey(ctx, prefix)
		if err != nil {
			return nil, err
		}
		node = primary
	}
	it := node.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	return keys, it.Err()
}

// list reads every JSON value under a key prefix (SCAN, then MGET in
// batches), keeping those keep accepts; a value that does not parse
// (written by something else) is logged and skipped.
func list[T any](ctx context.Context, c *Client, prefix, what string, keep func(T) bool) ([]T, error) {
	keys, err := c.scan(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("redisstore: list %s: %w", what, err)
	}
	var out []T
	err = c.values(ctx, keys, func(key, val string) {
		var v T
		if err := json.Unmarshal([]byte(val), &v); err != nil {
			c.log.Warn("redisstore: skipping an entry that does not parse", "key", key, "error", err)
			return
		}
		if keep(v) {
			out = append(out, v)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: list %s: %w", what, err)
	}
	return out, nil
}

// values reads keys in batches; a key that expired meanwhile is skipped.
func (c *Client) values(ctx context.Context, keys []string, f func(key, val string)) error {
	for len(keys) > 0 {
		n := min(len(keys), 500)
		vals, err := c.rdb.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return err
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				f(keys[i], s)
			}
		}
		keys = keys[n:]
	}
	return nil
}
