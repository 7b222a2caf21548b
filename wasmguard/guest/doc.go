// Package guest is the SDK for writing mqttguard policy plugins in Go.
// A plugin is a WebAssembly module that package wasmguard loads into a
// broker; it is shown connections, subscriptions and publishes and
// answers allow, deny (with an MQTT v5 reason code) or drop.
//
// A plugin is a main package that imports this package (which provides
// the ABI's marker and event buffer) and exports the hooks it implements:
//
//	package main
//
//	import (
//		"strings"
//
//		"github.com/mqttguard/mqttguard/wasmguard/guest"
//	)
//
//	//go:wasmexport on_publish
//	func onPublish(n int32) int32 { return guest.HandlePublish(n, check) }
//
//	func check(p *guest.Publish) guest.Verdict {
//		if strings.HasPrefix(p.Topic, "admin/") {
//			return guest.Deny(reason.NotAuthorized)
//		}
//		return guest.Allow()
//	}
//
//	func main() {}
//
// Build it with the standard toolchain as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// (A plain build makes a command module, whose _start would run main and
// exit; it is refused for lacking the ABI's exports.)
//
// What a plugin can and cannot do: it gets its configuration with Config
// (the host's wasmguard.WithConfig) and writes to the host's log with
// Log; it has no files, sockets, environment or real clock (the event's
// Time is the host's), and sleeping returns at once. Every call is
// bounded in instructions, call depth and memory; a plugin that runs out
// is stopped and its verdict is the host's failure policy. The host runs
// several instances of a plugin and replaces them when they fail or have
// served many calls, so state a plugin keeps between calls lives in one
// instance of several and may be lost at any time: keep counters
// approximate, or load the plugin with one instance.
//
// Decoded strings are copies (safe to keep); a Publish's Payload is the
// host's buffer, valid until the handler returns. Allocation is costly in
// a Go guest (its garbage collector runs inside the call, about 0.5 µs per
// allocation), so the decoder reuses strings it has seen recently, and a
// handler that allocates nothing runs in well under a microsecond.
//
// Decision functions are ordinary Go, testable without WebAssembly: call
// them with a Publish you build (see the example), or decode a record
// with DecodePublish.
package guest
