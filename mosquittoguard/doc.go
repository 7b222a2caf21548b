// Command mosquittoguard is the Guard inside mosquitto 2.0: a plugin
// (mosquitto's v5 plugin interface) built from this module with the
// standard Go toolchain, cgo and mosquitto's headers (Debian:
// mosquitto-dev):
//
//	go build -tags mosquitto -buildmode=c-shared -o mqttguard.so ./mosquittoguard
//
//	# mosquitto.conf
//	plugin /path/mqttguard.so
//	plugin_opt_config /etc/mqttguard/mqttguard.toml
//
// It reads the example broker's configuration file (package guardconf):
// passwords, ACL, bans, rate limits, trust, device profiles, plugins,
// fleet mode, the admin API with /metrics — so one file serves the
// example broker, the proxy and mosquitto. The [mqtt] listeners are
// mosquitto's own (its listener lines); the plugin opens none.
//
// mosquitto's events map onto the Guard's decision points:
//
//	MOSQ_EVT_BASIC_AUTH  Connect: bans, credentials (the configured
//	                     authenticators; the client certificate mosquitto
//	                     verified, with require_certificate), connection
//	                     rates, flapping, trust
//	MOSQ_EVT_ACL_CHECK   SUBSCRIBE → Subscribe, WRITE → Publish (ACL, rate
//	                     limits, trust, push intervals, plugins), READ →
//	                     Deliver, for every message to every subscriber,
//	                     online or queued for an offline session; WRITE
//	                     after the client left → Disconnect (its will)
//	MOSQ_EVT_MESSAGE     a publish the Guard dropped (a shadow ban, an
//	                     early report) is renamed DroppedTopic, which
//	                     nobody may read: acknowledged, delivered to no one
//	MOSQ_EVT_DISCONNECT  the client left; its session is kept for its will
//	                     and its queued deliveries
//	MOSQ_EVT_TICK        kicks the admin API, bans and trust escalations
//	                     asked for (mosquitto's API may be called only on
//	                     its own thread); the will is sent if the Guard
//	                     lets it
//	MOSQ_EVT_RELOAD      what SIGHUP does to the example broker
//
// To admit clients by certificate, set require_certificate and cafile on
// the mosquitto listener and use_identity_as_username = true in the
// Guard's file; mosquitto's own use_identity_as_username would skip the
// plugin's authentication altogether.
//
// Callbacks run on mosquitto's one broker thread, so nothing in them waits
// on the network: bans, trust and fleet-wide limits are decided from local
// state (the fleet syncs in the background), and a throttled client's
// publish is refused (0x97) rather than delayed (Config.CannotDelay).
// Verifying a password hashes on that thread, as mosquitto's own
// password_file does; the Guard's cache of recent successes spares
// reconnecting devices the hash. Mind the cost: a $7$ hash at 210,000
// iterations (the example broker's, and mosquitto 2.1's, default) holds
// the thread about 100 ms per CONNECT the cache does not know, so a
// fleet reconnecting at once after a restart waits in line behind it; at
// mosquitto 2.0's 101 iterations it is about 50 µs. Tokens (package
// jwtauth) cost 30–98 µs. The AuthGate refuses an address's guesses as
// busy once they fail, without hashing them.
//
// One Go runtime per process: do not load this plugin beside another
// plugin written in Go. The plugin never takes mosquitto's signals.
//
// Built without the mosquitto tag (as `go build ./...` and `go test ./...`
// do), this is an empty program, so that the module builds where
// mosquitto's headers are not installed.
package main

func main() {}
