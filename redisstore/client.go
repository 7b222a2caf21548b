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
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/redis/go-redis/v9"
)

// Options configure a Client. Only URL is required.
type Options struct {
	// URL of the Redis server: redis://[user:password@]host:port/db,
	// rediss://… for TLS, or unix:///path/to/redis.sock.
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
	rdb     *redis.Client
	prefix  string
	node    string
	channel string
	log     *slog.Logger
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
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: Options.URL %q: %v", redactURL(opts.URL), err)
	}
	ro.DialTimeout = opts.DialTimeout
	if ro.DialTimeout <= 0 {
		ro.DialTimeout = time.Second
	}
	// The callers' contexts carry the deadlines (a rate-limit check waits
	// 50 ms at most); one retry covers a connection Redis closed while
	// idle, more would only stretch an outage.
	ro.ContextTimeoutEnabled = true
	ro.MaxRetries = 1
	ro.DialerRetries = 1 // the Fleet and ratelimit.Shared back off on their own
	ro.DisableIdentity = true
	if opts.Prefix == "" {
		opts.Prefix = "mqttguard:"
	}
	if opts.Node == "" {
		opts.Node = defaultNode()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{rdb: redis.NewClient(ro), prefix: opts.Prefix, node: opts.Node,
		channel: opts.Prefix + "events", log: log}, nil
}

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

// redactURL hides a password in a URL for error messages.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
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
	it := c.rdb.Scan(ctx, 0, globEscape(prefix)+"*", 500).Iterator()
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
