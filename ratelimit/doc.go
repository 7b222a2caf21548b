// Package ratelimit provides keyed token buckets: one bucket per client
// ID, username, IP address, topic or any other string, checked on every
// publish from every core at about the cost of a map lookup.
//
// # The model
//
// Each key has a token bucket with the semantics of
// golang.org/x/time/rate: it starts full with burst tokens, refills at
// limit tokens per second, never holds more than burst, and an event of
// cost n is allowed when n tokens are there, which takes them. A cost
// above burst is never allowed. rate.Inf allows everything; a limit of 0
// allows the first burst tokens and nothing after. The limit is
// golang.org/x/time/rate's type, so rate.Every(time.Minute) works.
//
// Burst is the most a key can spend at once after a quiet period; limit
// is the long-run rate. A sensor allowed one reading a second with
// bursts of 10 is New(1, 10).
//
// Time is a parameter. AllowN(key, t, n) decides at time t, so a broker
// reads the clock once per packet and tests need no fake clock; Allow
// calls time.Now. Time that goes backwards never adds tokens (it does in
// x/time/rate, which lets alternating timestamps mint tokens).
//
// # How it is stored
//
// A token bucket with limit r and burst b is equivalent to the Generic
// Cell Rate Algorithm with an emission interval T = 1/r and a tolerance
// b·T: the whole state is one integer, the bucket's theoretical arrival
// time, updated with a compare-and-swap. Keys are hashed with a per-limiter
// random seed and never stored, so an existing key costs no allocation
// even when it comes from a reused []byte, and a million keys take about
// 30 bytes each. Lookups write nothing shared; a refused event writes
// nothing at all.
//
// The interval is an integer number of nanoseconds, T = round(1e9/r)
// (at least 1 ns; Limiter.Interval returns it). Decisions are those of
// rate.NewLimiter(rate.Every(T), b), checked step by step in the tests.
// The one difference is x/time/rate's: its float arithmetic can compute
// a remaining wait of exactly 1 ns as slightly less, truncate it, and
// allow an event 1 ns early; this package's integer arithmetic does not.
// For a limit whose interval is not a whole number of nanoseconds the
// long-run rate differs from r by less than one part in T.
//
// # Memory bound
//
// A key whose bucket has refilled to full carries no information: it is
// indistinguishable from a key never seen, and is dropped when its shard
// needs room (or by Sweep). WithMaxKeys bounds the keys a Limiter keeps
// (default DefaultMaxKeys). When a shard is full of keys that are still
// paying off their debt, a new key evicts the one deepest out of debt of
// a small sample (the nearest to full), and starts with a full bucket of
// its own: a flood of keys cannot leave a newcomer without its burst.
// There is no LRU: an attacker spraying fresh keys (spoofed client IDs)
// evicts those barely-used fresh keys before its own throttled bucket,
// and evicting a throttled bucket gives its key no more than a fresh key
// would have; bound what fresh keys can do with a second limit on a key
// the attacker cannot mint (a username, as the Guard does).
//
// # Costs, multipliers and several dimensions
//
// AllowN takes a cost: 1 per message, len(payload) for a byte budget,
// FanoutCost(subscribers) for a message that a broker will copy to many
// subscribers. AllowScaled multiplies a key's rate and burst by a factor,
// which is how a trust score (package trust) widens or narrows a
// client's allowance without this package knowing about trust. Multi
// checks several buckets (user, client, IP, topic) as one: when one
// refuses, none is charged.
//
// # Across brokers
//
// A Limiter counts for one process. Shared holds a limit across a fleet
// of brokers: its buckets live in a Store (package redisstore keeps them
// in Redis, as the same GCRA), and each broker leases tokens and spends
// them locally, so a check waits on the store only when a lease runs out,
// and not at all while the store is down (DownPolicy).
package ratelimit
