// Package mqttguard is a library of composable MQTT security primitives for
// Go brokers, and the Guard that composes them into one decision pipeline.
//
// Each primitive is a leaf package that imports only the standard library
// (plus one named dependency where it says so), so a broker author pays
// only for what they import:
//
//   - acl: topic-name and filter rules, spec-exact matching, an ACL engine
//     with mosquitto acl_file compatibility.
//   - passwd: mosquitto password files ($7$ PBKDF2-SHA512 and $6$).
//   - ratelimit: sharded keyed token buckets with x/time/rate semantics.
//   - trust: a five-state client state machine, trust score and ban list.
//   - anomaly: push-interval and flapping detectors.
//   - packets: a strict MQTT 3.1.1/5.0 packet reader with size limits.
//   - tlsconf: TLS configuration with safe defaults and hot reload.
//   - wasmguard: resource-limited WebAssembly policy plugins.
//
// The leaves never import each other. This package is the only one that
// knows them all.
//
// # The Guard
//
// A Guard answers each decision point of a broker with a Decision: a
// Verdict (Allow, Reject, Drop, Disconnect), the MQTT v5 reason code to
// send, a Delay for a throttled client, and the Cause — component, rule,
// file and line — for the audit log. A broker calls
//
//   - Connect for each CONNECT; it returns the Client (identity as
//     established: username from the certificate, common name) that the
//     broker keeps with the session and passes to the other points;
//   - Publish for each PUBLISH the client sends;
//   - Subscribe for each filter of a SUBSCRIBE;
//   - Deliver for each message about to go to a subscriber (the receive
//     check: a subscriber to '#' gets only what it may read);
//   - Disconnect when the session ends, to ask whether its will may be
//     sent;
//   - Violation for what the broker saw itself (a malformed packet).
//
// Every component is optional (Config): a nil one is not consulted.
// Checks run cheapest first, and every refusal counts against the
// client's trust while traffic that passes counts for it:
//
//	CONNECT:   ban list → flapping → connection rate per address and per
//	           listener → credentials or certificate identity → trust
//	           state → will topic → plugins
//	PUBLISH:   trust state → ACL → rate limits (client messages and bytes,
//	           user, topic × fan-out, total) → push interval → plugins
//	SUBSCRIBE: filter validity → trust state → ACL → plugins
//
// The allow path of a publish allocates nothing.
//
// # What blocks
//
// Only what the caller's ctx bounds, and never on a lock held by another
// client:
//
//	Connect    the AuthGate's turn for an address that keeps failing
//	           (at most AuthGateConfig.MaxDelay, else refused 0x89 at
//	           once), then the authenticators (at most Config.VerifyWait,
//	           default 2 s: a password waits for a hashing slot and
//	           hashes, ~90 ms at 210,000 iterations); a fleet-wide
//	           per-address limit's store call (ratelimit.SharedConfig
//	           Timeout, 50 ms, only when its lease is spent); plugins
//	           (their timeout, 100 ms by default).
//	Publish    the fleet-wide per-user and total limits' store calls
//	           (as above); plugins. Nothing else: no hashing, no I/O.
//	Subscribe  plugins.
//	Deliver    nothing (in-memory checks only).
//	Disconnect nothing.
//
// A Decision's Delay is not carried out by the Guard: it asks the broker
// to hold a throttled client's publish that long. A broker that holds
// messages on its client's own goroutine (the mochi adapter, the proxy)
// sleeps that goroutine, which slows only that client. A broker that
// cannot hold one message without holding up every client (mosquitto
// runs plugins on its one thread) sets Config.CannotDelay, and the Guard
// refuses such a publish with 0x97 instead of delaying it.
//
// # Decisions
//
//	situation                                     v5                      v3.1.1
//	bad credentials                               CONNACK 0x86            CONNACK 4
//	not authorized (connect/publish/subscribe)    0x87                    CONNACK 5 / SUBACK 0x80 / dropped
//	banned (ban list, flapping, Disconnected)     CONNACK 0x8A            CONNACK 5
//	over a rate limit (client, user, topic, total) PUBACK 0x97            dropped
//	connection rate exceeded                      CONNACK 0x9F            CONNACK 5
//	invalid topic name / filter                   0x90 / 0x8F             dropped / SUBACK 0x80
//	shadow-banned or anomalous publish            acknowledged normally, never delivered
//	trust escalated to Disconnected               DISCONNECT 0x98         close
//
// Malformed (0x81) and oversized (0x95) packets are the packet reader's
// to refuse, before the broker decodes them; it reports them here as
// Violation.
//
// # Modes
//
// A staged rollout governs the abuse layer: rate limits, trust states
// (throttling, write-disable, shadow ban, disconnect), anomaly drops and
// the automatic bans that flapping and anomalies make.
// In ObserveOnly (the zero Mode) the abuse layer decides as usual, and the
// Guard returns Allow with Observed set, counts what would have happened
// in Stats.Observed and writes it to the audit log ("would reject …").
// EnforceLight enforces rate limits and Normal/Throttled only;
// EnforceFull enforces everything, shadow bans and fan-out cost included.
//
// Access control is not part of the rollout and is enforced in every
// mode: credentials, certificate identity, the ACL, the ban list an
// operator keeps, will checks and plugins. Observing is for learning what
// the abuse layer would do before turning it on, not for switching
// security off.
//
// # Reloading
//
// The components are the broker's: an acl.Holder and a passwd.Holder
// reload their files atomically and keep the old state when a new file
// does not load; SetPlugins swaps the plugin set, SetRateLimits the rate
// limits and SetMode the mode; trust.Bans is edited in place;
// tlsconf.Reloader rotates certificates under live connections.
// Nothing needs the connections dropped.
//
// # Fleets
//
// Several brokers share what must follow a client from one to the next
// through interfaces the leaves define and package redisstore implements
// on Redis: the ban list (trust.BanStore, kept current in every broker's
// trust.Bans), shadow-ban and disconnect states (trust.RecordStore), and
// the per-user, per-address and total limits (RateLimits.Store, a
// ratelimit.Store). The Guard still decides from local state: the ban
// check and every per-client limit never wait on the network.
package mqttguard
