// Package trust gives MQTT clients a graded response instead of a binary
// one: a client that misbehaves is slowed, then silenced, then
// shadow-banned, then shut out, and one that behaves again climbs back
// down step by step. This is how large chat services (Telegram, Discord)
// treat abuse, brought to MQTT, where mosquitto, EMQX, mochi-mqtt and
// HiveMQ CE either let a client go on or cut it off.
//
// # States
//
// Normal → Throttled → WriteDisabled → ShadowBanned → Disconnected. What
// each means for a broker is in Verdict.Publish and Verdict.Connect:
// Throttled shrinks the client's rate limits to the lowest band and
// delays its publishes (500 ms by default); WriteDisabled refuses its
// publishes with 0x87; ShadowBanned acknowledges them exactly as usual
// (PUBACK 0x00 — never 0x10 "no matching subscribers", which would give
// the ban away) and delivers them to no one; Disconnected sends DISCONNECT
// 0x98 now and CONNACK 0x8A to every reconnect until the ban period ends.
//
// # Escalation and recovery
//
// Every violation has a kind and a weight (a malformed packet weighs more
// than a rate-limit hit). The weights of the violations in the last
// Config.Window make the escalation level; when it reaches a threshold
// the client jumps to that state at once. Recovery is slow on purpose: a
// client steps down one state at a time, and only after holding the
// current state for a quiet period without violations, so a ShadowBanned
// client passes WriteDisabled and Throttled on its way to Normal, and a
// client cannot flap between states. A Disconnected client stays so for
// the ban period whether or not it reconnects: records outlive
// connections.
//
// Each client also has a trust score from 0 to 1000. Newcomers start low
// (300), violations take a lot away at once, good traffic adds a little
// at most every ten seconds, and over time scores drift back towards the
// initial score (forgiveness for the bad, upkeep for the good). The score
// picks the client's rate multiplier (Band): 0–100 ×0.5, 101–300 ×0.8,
// 301–600 ×1.0, 601–800 ×1.5, 801–1000 ×2.0; the ratelimit package
// applies it with AllowScaled.
//
// Nothing runs in the background: decay, leaks and recovery are computed
// when a record is read, so a million clients cost no goroutine and no
// ticker. Every method takes the time as a parameter.
//
// # Modes
//
// A staged rollout: ObserveOnly ("observe") records what it would do and
// never punishes (and counts at most one violation per client per
// cooldown, so that turning enforcement on later does not ban a whole
// fleet for its past); EnforceLight ("light") uses Normal and Throttled
// only; EnforceFull ("full") uses everything. Preset returns the defaults of each.
//
// # Bans
//
// Bans is an explicit ban list by client ID, username, address and
// network, with expiry, reason and author, saved to and loaded from a
// file of JSON lines so bans survive a restart. A broker checks it on
// every CONNECT, before credentials.
package trust
