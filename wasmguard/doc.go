// Package wasmguard runs MQTT policy plugins compiled to WebAssembly in a
// sandbox that no plugin can escape or stall: a plugin sees the events it
// is shown, answers allow, deny or drop, and can take no more memory,
// table space, CPU time or call depth than its Limits allow. It is built
// on wazero (github.com/tetratelabs/wazero), a pure-Go runtime, so a
// broker embeds it without cgo.
//
// # The model
//
// Load checks a module, rewrites it so that every call is bounded,
// compiles it once and fills a pool of MaxInstances instances. Each call
// — OnConnect, OnSubscribe, OnPublish — takes an instance from the pool
// (waiting, with the caller's context, when all are busy), writes the
// event into the instance's buffer, runs the plugin's hook and decodes its
// verdict. Instances are never shared by two calls at once.
//
// A call that fails — the plugin trapped, ran out of fuel, nested calls
// too deeply, reached its memory limit, ran past Timeout, returned a
// malformed verdict or an event buffer outside its memory — is decided by
// the plugin's FailurePolicy (FailClosed, the default, denies with 0x80;
// FailOpen allows), reported as a *CallError whose Kind is one of the Err
// values, and its instance is closed and replaced in the background. A
// plugin that keeps failing is quarantined by a circuit breaker
// (WithBreaker): its calls get the failure policy's verdict without
// running it, for a cooldown that doubles while it keeps failing. An
// operator can take a plugin out at run time with Disable (its calls
// allow without running it) and put it back with Enable. Instances are
// also recycled after RecycleAfter calls and when their memory passes
// RecycleMemoryBytes, so that slow leaks inside a guest do not
// accumulate. A plugin must therefore not rely on state surviving from
// one call to the next; state it keeps lives in one instance of several,
// and is lost when that instance is replaced.
//
// # What is checked at load
//
// Before wazero sees the module, its sections are read and it is refused
// with a *LimitError naming the limit and the values if it is larger than
// MaxModuleBytes; defines more than one memory or table; declares a table
// above MaxTableElements or a memory that starts above MaxMemoryBytes;
// imports a table, memory or global; imports a function other than the
// "mqttguard" host functions and the WASI functions a Go plugin needs (no
// files, no sockets); uses instructions outside the WebAssembly 2.0 core
// features wasmguard can meter (SIMD, threads, tail calls, exceptions and
// reference types are refused: without reference types a table can
// neither grow nor be added, and wazero has no table limit of its own); or
// lacks the ABI's exports. Every vector count in every section is checked
// against the section's size, because wazero allocates what a count claims
// before it reads the entries.
//
// # How a call is bounded, and why not by wazero alone
//
// wazero's own bound is WithCloseOnContextDone with a deadline on the
// call's context. It has three problems for a per-message hook:
//
//   - It checks only at loop headers. A loop-free call tree (f calls g
//     twice, g calls h twice, … 40 levels deep) runs for hours past its
//     deadline, and because compiled WebAssembly has no safe points, the
//     Go garbage collector waits for it: the whole broker stops.
//   - It starts a goroutine per call: about 1.5 µs of overhead on a
//     trivial hook (BenchmarkWasmCall in bench/: 1477 ns against 19 ns
//     unbounded), and every loop back-edge exits to Go.
//   - Unbounded recursion grows a native stack held in Go memory to
//     ~50 MB (+140 MiB of heap, 1.7 s) before wazero reports an overflow.
//
// So Load instruments the module instead (the model of wasmtime's fuel):
//
//   - Fuel. A counter in a global is charged at the start of every
//     metered block — a straight-line run of code entered only at its
//     start: the function's start and the instruction after each loop,
//     if, else and end — with the weight of the block's instructions
//     (calls weigh 10, memory.grow 256, calls to host functions 200);
//     memory.fill, memory.copy and memory.init are charged one unit per
//     16 bytes before they run. The counter is set to Fuel before each
//     call; below zero the guest traps. A host call weighs what it costs
//     the host: weighed like a guest call, a loop of 64 KiB log calls ran
//     135 ms on the default fuel (the issue measured 270 ms of CPU under
//     load); it now runs out in ~10 ms. What a host function does per
//     byte is bounded per call instead: MaxLogBytesPerCall for log, 64
//     KiB of WASI randomness (a loop of 64 KiB random_get calls ran 19 s
//     on the default fuel before this bound), 2.5 KiB of output kept.
//     Every loop iteration and every call pays, so loops, loop-free call
//     trees and recursion are all bounded, deterministically, with no
//     goroutine and no exit to Go. Charging per metered block rather than
//     per function matters for Go guests, whose compiled functions are one
//     big loop over a br_table.
//   - Call depth. Every function gets a wrapper that counts the depth in
//     a global and traps beyond MaxCallDepth; calls, the table, exports
//     and the start function all go through the wrappers.
//   - Memory. wazero's memory limit caps each instance at MaxMemoryBytes;
//     the linear memory is an anonymous mapping of the whole limit,
//     reserved but committed only as the guest touches it (on Linux), so
//     growing copies nothing and stays off the Go heap.
//   - Time. A call that returns after Timeout fails all the same (it is
//     measured); with Preempt, wazero's WithCloseOnContextDone also
//     interrupts it at Timeout, for hosts that want a wall-clock bound
//     even on a guest that is slow per unit of fuel, at wazero's cost.
//
// The default Fuel of 20 million units stops an infinite loop in about
// 12 ms, the 2^40-call tree in about 13 ms, a loop of host calls in
// about 10 ms and a loop of 16 MiB memory.fill calls in about 65 ms on a
// 2-core VM, with the garbage collector running throughout (the hostile
// suite in the tests measures this): every call ends within the default
// Timeout of 100 ms without preemption. A shorter Timeout scales the
// default fuel down with it (300,000 units a millisecond, the costliest
// rate measured). A Go guest's whole garbage collection of a 13 MiB heap
// costs about 3 million units.
//
// A fail-open plugin that keeps failing costs the clients behind it the
// time of its failed calls. The circuit breaker quarantines it after 5
// consecutive failures or, sooner, once its consecutive failures have
// taken Timeout in all (WithBreakerBudget): a plugin whose every call
// runs out of fuel is quarantined after ~30 ms of failures (5 calls), one
// whose calls take 90 ms after 2 (BenchmarkQuarantine).
//
// What it costs (bench/, 2-core VM, medians): a trivial on_publish
// written by hand takes 190 ns per call with every limit enforced, against
// 1,480 ns for wazero's WithCloseOnContextDone alone (0.13×) and 19 ns
// unbounded; the same hook in a Go-built plugin, 1.2 µs against 4.4 µs
// (0.27×) and 0.55 µs unbounded. Loading a Go plugin takes about 1.5 s
// cold (instrumentation and compilation) and 45 ms cached; a Go instance
// holds about 1.7 MB of Go heap and 3 MiB of linear memory.
//
// # The plugin ABI, version 1
//
// A plugin exports "memory"; "mqttguard_abi_v1" () → (), a marker a module
// without which is refused; "mqttguard_buffer" (size i32) → i32, a pointer
// to a guest-owned scratch buffer of at least size bytes; and any of the
// hooks "on_connect", "on_subscribe", "on_publish" (len i32) → i32. Before
// a hook runs, the host writes the event into the first len bytes of the
// buffer. The result is a verdict: the low byte the action (0 allow, 1
// deny, 2 drop silently), the next byte the MQTT v5 reason code to send
// with a deny (0 means 0x87 not authorized; codes below 0x80 and bits
// above 16 make the verdict malformed). A hook the plugin does not export
// allows. Reactor modules' _initialize runs at instantiation, on InitFuel.
//
// The event record is little-endian; strings and bytes are a u32 length
// and the bytes:
//
//	u16 version (1) | u8 kind (1 connect, 2 subscribe, 3 publish) | u8 flags
//	4 bytes by kind | i64 time (Unix nanoseconds) | strings by kind
//
//	connect:   flags bit 0 clean start, bit 1 password present;
//	           u8 protocol version, u8 0, u16 keep alive;
//	           client ID, username, remote address, certificate identity
//	subscribe: u8 QoS, 3 × u8 0; client ID, username, filter
//	publish:   flags bit 0 retain; u8 QoS, 3 × u8 0;
//	           client ID, username, topic, payload
//
// The password is never shown to a plugin. Plugins get no clock of their
// own (WASI clocks are fake): the event's time is the host's.
//
// The host module "mqttguard" provides log(level i32, ptr i32, len i32),
// which writes to the WithLogger logger at a slog level (cut to 512
// bytes, at most MaxLogBytesPerCall a call, rate limited by
// WithLogRate), and config(ptr i32, cap i32) → i32,
// which copies up to cap bytes of the WithConfig configuration to ptr and
// returns its length. A pointer range outside the guest's memory traps the
// guest: the host never trusts a guest pointer. WASI gives a plugin no
// files, no sockets, no environment, no arguments, stdout and stderr into
// a bounded buffer the host reads when a call fails, and sleeping returns
// at once.
//
// Package guest is the other half: plugin authors import it and build
// with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
package wasmguard

//go:generate ./testdata/build.sh
