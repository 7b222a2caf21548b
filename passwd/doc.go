// Package passwd authenticates MQTT clients against mosquitto password
// files, so an operator carries their users over unchanged and nothing
// is ever kept in plain text.
//
// # Format
//
// A password file has one user per line, "username:hash". mosquitto 2.0
// writes
//
//	$7$<iterations>$<base64 salt>$<base64 hash>
//
// which is PBKDF2-HMAC-SHA512 with a 64-byte result (mosquitto_passwd's
// default is 101 iterations, 2.1 moved to 210,000), and understands the
// legacy
//
//	$6$<base64 salt>$<base64 hash>
//
// one round of SHA-512 over password||salt (mosquitto 1.x,
// mosquitto_passwd -H sha512). ParseMosquitto reads both; anything else
// is an error naming the line. So is a user without a hash: mosquitto
// accepts any password for one, which is never what an operator meant.
// Files written by Write are read by mosquitto itself (the tests check
// both directions against the real mosquitto_passwd and broker).
//
// # Verification
//
// File.Verify compares in constant time and does the same work for a
// user that does not exist as for one that does, so response times tell
// an attacker nothing about which usernames are real.
//
// # Cost, and why a CONNECT flood must be limited first
//
// Password hashing is slow on purpose: Hash's default of 210,000
// PBKDF2-SHA512 iterations costs about 90 ms of one core on a small
// machine, so a stolen file cannot be brute-forced cheaply. The same cost
// makes every CONNECT with a password expensive: a client that sends
// CONNECT packets as fast as it can would keep every core busy hashing.
// Verify must therefore run behind a connection-rate limit per IP and
// per listener (package ratelimit; the example broker does it), and the
// iteration count is a trade between stolen-file resistance and how many
// CONNECTs per second a core can verify: about 11 at 210,000 iterations
// (92 ms each on the 2-core machine of bench/), about 22,000 at
// mosquitto 2.0's 101 (45 µs). Files made by mosquitto_passwd 2.0
// keep their 101 iterations until their passwords are set again.
//
// Holder keeps the file in force for a running broker and swaps it
// atomically on reload; a file that does not parse leaves the previous
// one in force. It also bounds what verification costs
// (Holder.VerifyContext, verify.go): at most GOMAXPROCS hashes at once,
// a queue whose wait the caller's deadline bounds (ErrBusy: refuse with
// "server busy"), and a cache of recent successes — keyed by an HMAC of
// username and password, never failures, emptied on reload — so that a
// device reconnecting in a loop costs one hash in five minutes (a cache
// hit: 0.4 µs, against 94 ms for the hash; BenchmarkHolderVerify).
package passwd
