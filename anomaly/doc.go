// Package anomaly catches devices that behave unlike devices: sensors
// that report every second instead of every five minutes, and clients
// that connect and disconnect in a loop.
//
// # Push interval
//
// A device profile declares how often a device reports, a
// push interval T, and how far it may drift, a tolerance E. For the gap A
// between two reports of the same device,
//
//	T − E ≤ A ≤ T + E   normal (both ends inclusive: T=60s, E=5s, A=65s is normal)
//	A < T − E           too early: a misconfigured or malicious device
//	A > T + E           too late: usually a device that was offline
//
// The policy for anomalous data is to acknowledge it (so the device does
// not retry) and not store or deliver it, and to ban a device that keeps
// doing it: by client ID first (precise), then by username (covers a
// group of devices), and by IP address last (covers everyone behind a
// NAT). IntervalDetector.Observe
// returns a Verdict with the measured gap, the device's strikes and a
// recommendation: drop the message, flag the device, or ban it. "Too
// late" is reported but, by default, neither dropped nor punished: a
// device that was offline is not an attacker (Policy.PunishLate changes
// that).
//
// Profiles come from a Resolver the caller provides; NewResolver builds
// one from rules that match by client ID, username or a topic filter
// such as "sensors/+/temperature". A device that publishes several
// topics at their own intervals is tracked per (client ID, topic) with
// ObserveMessage.
//
// The state of a device is a timestamp and a strike counter, keyed by a
// hash of its identity (the identity itself is not stored), in sharded
// maps bounded by Config.MaxDevices. Time is a parameter; a timestamp
// older than the device's last report is reported as out of order and
// changes nothing.
//
// # Flapping
//
// FlappingDetector counts connects per client ID within a window and
// recommends a ban when there are too many. The defaults are EMQX's: 15
// connects within one minute ban the client for five minutes.
package anomaly
