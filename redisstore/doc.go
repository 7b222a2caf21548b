// Package redisstore shares a fleet's bans, trust records and rate limits
// through Redis, so that a device banned on one broker is refused by all,
// a client shadow-banned on one is shadow-banned on the next, and a user
// allowed 50 messages a second gets 50 in all rather than 50 per broker.
// It builds on Redis (keys with expiry, one Lua script, pub/sub), not on
// a replication protocol of its own.
//
// # The model
//
// A broker never waits on Redis to decide. It checks its own trust.Bans
// and trust.Tracker, as a broker without a fleet does; a Fleet keeps them
// current. Every change a broker makes (Bans.Add, Bans.Remove, a trust
// transition to ShadowBanned or Disconnected) goes to Redis from a queue,
// as a key with an expiry and an event on one channel; every other
// broker applies the event as it arrives (within a millisecond or two on
// one host) and kicks the live sessions a new ban or Disconnected record
// matches. On every (re)connection a broker flushes its queue, then
// reads the whole list back (SCAN, never KEYS) and makes its copy
// exactly Redis's: Redis is the fleet's list. A ban made while Redis is
// down holds locally at once and reaches the fleet when Redis is back.
//
// Rate limits are different: a shared limit must be counted in one place.
// Client.Take runs GCRA (the token bucket of package ratelimit, as one
// theoretical arrival time per key) in a Lua script on Redis's clock, one
// round trip and atomic; ratelimit.Shared leases tokens from it and
// spends them locally. The accuracy that trades is in ratelimit.Shared's
// documentation.
//
// # Keys
//
// With the default prefix "mqttguard:":
//
//	mqttguard:ban:<kind>:<value>      a trust.Ban as JSON; expires at Until
//	mqttguard:trust:<dim>:<key>       a trust.Record as JSON; expires when
//	                                  the client would be Normal again
//	mqttguard:rl:<limit>:<key>        a GCRA TAT; expires when the bucket
//	                                  is full again
//	mqttguard:at:<key>                when <key> last changed (µs); 24 h
//	mqttguard:events                  the channel: {"node", "ban"|"record"}
//
// # Topologies
//
// Options.URL picks one: a single server (redis://, rediss://, unix://),
// Sentinel (redis-sentinel://, the sentinels' addresses and the master
// name) or Cluster (redis-cluster://, seed nodes). On a Cluster the
// prefix becomes a hash tag ("{mqttguard:}"): every key and the channel
// share one slot, so that the writes (a key, when it changed, and its
// event) and the MGETs that read the list run on one primary, and SCAN
// asks that primary. Events go by plain PUBLISH, which a Cluster forwards to every
// node (sharded pub/sub would keep them on the slot's nodes, but
// needs Redis 7 and gains nothing when every key is in one slot).
//
// Redis replicates asynchronously: a write the primary took can die with
// it. On Sentinel and Cluster a write of a ban, a lifted ban or a trust
// record waits (WAIT, up to 250 ms, and not again for a second after one
// failed) for a replica to hold it. One that none confirmed stays with
// the Fleet that made it (FleetStats.Unconfirmed) and is written again
// at the next resync, before the broker adopts Redis's list: so a
// failover loses no change while the broker that made it runs. A later
// confirmed write confirms only what the same primary took (its
// replication ID and offset: a promoted replica starts a new ID, and
// says which offset of the old one it holds), and a replica that
// catches up later confirms what it now holds (checked every 2 s).
// Every write is a script that skips a change older than the key's last
// one (<prefix>at:<key>, kept 24 h; brokers' clocks order changes), so a
// change written again after a failover cannot undo a newer one another
// broker made meanwhile (a lift, say), and for a second after each
// resync an event is checked against Redis before it is applied (one
// published before the list was read may arrive after it). The
// window that stays open is both at once: the primary dies unreplicated
// and the broker that made the change restarts before the failover.
// Rate-limit buckets are not confirmed: a failover may hand each user its
// burst again.
//
// # Faults
//
// Redis down or slow: decisions go on from local state. Bans keep the
// last known list; local changes queue (bounded, FleetConfig.MaxPending);
// shared limits decide by their DownPolicy (by default each broker
// enforces the limit alone) after one call of at most their timeout, and
// try Redis again after a backoff. Each part logs once when Redis goes
// and once when it is back. On a failover (Sentinel or Cluster) the
// Fleet reconnects to the promoted primary and resyncs; decisions go on
// from local state meanwhile (tested: no decision slower than a shared
// limit's 50 ms timeout while the primary was killed). Redis restarted empty (no persistence) or
// flushed: a marker key (<prefix>fleet) is gone, so the brokers put
// their bans and shared trust records back before adopting Redis's list
// (within a second of a restart, at the next 2 s idle check after a
// FLUSHALL); nobody is unbanned by a routine Redis restart. A ban lifted
// while Redis was away may come back that way: lift it again.
package redisstore
