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
// knows them all: its Guard answers each decision point of a broker
// (CONNECT, PUBLISH, SUBSCRIBE, delivery, disconnect) with a Decision that
// carries the MQTT v5 reason code to send.
package mqttguard
