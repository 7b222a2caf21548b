package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
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
		// scripts (a key, when it changed, its event) and the MGETs that
		// span keys run on one primary.
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
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			// Its text repeats the whole URL, password and all, and an
			// escape it cannot read is a piece of the password.
			err = errors.New("it does not parse as a URL (percent-encode special characters in the user and password)")
		}
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

// primary is the client of the server that holds key: on a Cluster,
// the primary of its slot; otherwise the one client, which follows the
// primary (Sentinel) or is the server.
func (c *Client) primary(ctx context.Context, key string) (*redis.Client, error) {
	if c.cluster != nil {
		return c.cluster.MasterForKey(ctx, key)
	}
	return c.rdb.(*redis.Client), nil
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
	offset    int64 // the primary's replication offset after the write
}

// change is one write of the fleet's state: a key's new value (nil:
// deleted) and expiry (0: none), the event that announces it, and when
// the broker made it.
type change struct {
	key   string
	value []byte
	ttl   time.Duration
	event []byte
	at    time.Time
}

// changeTTL is how long Redis remembers when a key last changed
// (<key's at-key>): a change older than the last one is not written, so
// that one written again after a failover (Fleet.review) cannot undo a
// newer one another broker made meanwhile. Brokers' clocks order
// changes: keep them in step (NTP).
const changeTTL = 24 * time.Hour

// write applies a change unless the key changed later (its at-key, in
// microseconds), and announces it, atomically. It returns 0 for a
// change it did not write.
var write = redis.NewScript(`
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) > tonumber(ARGV[1]) then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[7])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`)

// atKey is where Redis keeps when key last changed.
func (c *Client) atKey(key string) string {
	return c.prefix + "at:" + strings.TrimPrefix(key, c.prefix)
}

// transact writes ch on the primary that holds its key. On a topology
// with replicas it then waits, on the same connection, up to
// replicaWait for one replica to hold it (Redis replicates
// asynchronously, so a write the primary took can die with it), and
// reads the primary's replication ID. With no replicas, a write is
// confirmed when the server took it; a change older than the key's last
// is confirmed without being written.
func (c *Client) transact(ctx context.Context, ch change) (receipt, error) {
	op, value := "set", ch.value
	if value == nil {
		op = "del"
	}
	keys := []string{ch.key, c.atKey(ch.key)}
	args := []any{ch.at.UnixMicro(), op, value, ch.ttl.Milliseconds(), c.channel, ch.event, changeTTL.Milliseconds()}
	if !c.replicated {
		err := write.Run(ctx, c.rdb, keys, args...).Err()
		return receipt{confirmed: err == nil}, err
	}
	primary, err := c.primary(ctx, ch.key)
	if err != nil {
		return receipt{}, err
	}
	conn := primary.Conn()
	defer conn.Close()
	wrote, err := write.Run(ctx, conn, keys, args...).Int()
	if err != nil {
		return receipt{}, err
	}
	if wrote == 0 {
		return receipt{confirmed: true}, nil // a newer change decides the key
	}
	var r receipt
	if info, err := conn.Info(ctx, "replication").Result(); err == nil {
		rep := parseReplication(info)
		r.primary, r.offset = rep.id, rep.offset
	}
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

// hint says what to do about an error from Redis an operator can fix
// in redis_url, or "".
func hint(err error) string {
	if err == nil {
		return ""
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "READONLY"):
		return "the server is a replica: point the URL at the primary, or use redis-sentinel:// to follow it"
	case strings.HasPrefix(msg, "MOVED") || strings.Contains(msg, "CROSSSLOT"):
		return "the server is a node of a Redis Cluster: use redis-cluster://"
	case strings.Contains(msg, "unknown command") && strings.Contains(msg, "scan"),
		strings.Contains(msg, "unknown command") && strings.Contains(msg, "subscribe"):
		return "the server is a sentinel: use redis-sentinel://…?master_name=NAME"
	case strings.Contains(msg, "redis: nil") && strings.Contains(msg, "sentinels"):
		return "no sentinel monitors a primary by that master_name"
	}
	return ""
}

// replication is what INFO replication says of a primary: its
// replication ID and offset, the ID and offset it took over from (a
// promoted replica: master_replid2, second_repl_offset), and the
// furthest offset a replica has acknowledged.
type replication struct {
	id, previous   string
	offset         int64
	previousOffset int64
	replicated     int64
}

func parseReplication(info string) replication {
	var r replication
	for _, line := range strings.Split(info, "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case name == "master_replid":
			r.id = val
		case name == "master_replid2":
			r.previous = val
		case name == "master_repl_offset":
			r.offset, _ = strconv.ParseInt(val, 10, 64)
		case name == "second_repl_offset":
			r.previousOffset, _ = strconv.ParseInt(val, 10, 64)
		case strings.HasPrefix(name, "slave"): // ip=…,port=…,state=online,offset=N,lag=…
			for _, kv := range strings.Split(val, ",") {
				if v, ok := strings.CutPrefix(kv, "offset="); ok {
					if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > r.replicated {
						r.replicated = n
					}
				}
			}
		}
	}
	return r
}

// replicationOf reads INFO replication from the primary that holds the
// fleet's keys.
func (c *Client) replicationOf(ctx context.Context) (replication, error) {
	primary, err := c.primary(ctx, c.markerKey())
	if err != nil {
		return replication{}, err
	}
	info, err := primary.Info(ctx, "replication").Result()
	if err != nil {
		return replication{}, err
	}
	return parseReplication(info), nil
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
	// SCAN walks one node: on a Cluster, the primary of the fleet's slot.
	primary, err := c.primary(ctx, prefix)
	if err != nil {
		return nil, err
	}
	it := primary.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
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
