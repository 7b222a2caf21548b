package wasmguard

import (
	"fmt"
	"time"
)

// Limits bound what one plugin may take from the host. Zero fields take
// the defaults in their comments.
type Limits struct {
	// MaxMemoryBytes caps each instance's linear memory (default 16 MiB,
	// rounded down to 64 KiB pages). A Go-built guest's runtime leaves
	// about 13 MiB of that to its heap.
	MaxMemoryBytes uint64
	// MaxTableElements caps the declared size of the module's table
	// (default 10,000). Tables cannot grow (reference types are off), so
	// the declared size is the size. It must admit modules built by the
	// standard Go toolchain, which carry about 5,400 elements.
	MaxTableElements uint32
	// MaxInstances is the size of the instance pool (default 10): the
	// most calls into the plugin at once. Calls beyond it wait, with the
	// caller's context.
	MaxInstances int
	// MaxTables and MaxMemories may only be 1 (the default): wazero runs
	// without reference types and multiple memories, so a module with more
	// does not load.
	MaxTables   int
	MaxMemories int
	// Timeout is the wall-clock bound per call (default 100 ms). Fuel is
	// what stops a call (see the package doc), and its default is
	// calibrated so that the costliest guest code runs out of it within
	// Timeout; a call that returns after Timeout is a failure all the
	// same, and with Preempt the call is also interrupted at Timeout.
	// The circuit breaker counts failed calls' time against it too.
	Timeout time.Duration

	// MaxModuleBytes caps the module's size (default 8 MiB; a Go-built
	// plugin is about 1.9 MB).
	MaxModuleBytes int
	// Fuel is the work one call may do, in instruction units (default
	// 20,000,000, or less for a Timeout under 65 ms: see fuelFor); InitFuel
	// is what instantiation may use, the Go runtime's _initialize
	// included (default 200,000,000; a Go guest needs about 13,000,000).
	// A call to a host function weighs 200 units, what it costs the host
	// in time, so that fuel bounds a guest that loops on host calls too.
	Fuel     int64
	InitFuel int64
	// MaxLogBytesPerCall bounds what one call may write through the
	// host's log function (default 4 KiB, after each line is cut to 512
	// bytes); lines beyond it are dropped and counted in LogDropped, like
	// those over WithLogRate.
	MaxLogBytesPerCall int
	// MaxCallDepth bounds nested calls (default 10,000), so that recursion
	// cannot make the host grow a native stack of its own choosing.
	MaxCallDepth int
	// MaxEventBytes caps the encoded event given to a plugin (default 1
	// MiB); a larger PUBLISH is not shown to it and the failure policy
	// decides.
	MaxEventBytes int
	// RecycleAfter replaces an instance after this many calls (default
	// 100,000), and RecycleMemoryBytes when its memory grows past this
	// high-water mark (default three quarters of MaxMemoryBytes), so slow
	// leaks inside a guest do not accumulate.
	RecycleAfter       int
	RecycleMemoryBytes uint64
	// Preempt also interrupts a call at Timeout with wazero's
	// WithCloseOnContextDone. It costs about 1–2 µs per call (a goroutine
	// per call inside wazero) and the loop back-edges exit to Go; fuel
	// alone already bounds every call.
	Preempt bool
}

const pageSize = 64 << 10

// Fuel calibration. The costliest fuel measured (BenchmarkHostileCall,
// 2-core VM) is a loop of 16 MiB memory.fill calls: 20,000,000 units in
// 65 ms, about 300,000 a millisecond; ordinary code runs ~1,600,000 a
// millisecond. defaultFuel is the fuel of Timeout's default, 100 ms.
const (
	defaultFuel             = 20_000_000
	worstFuelPerMillisecond = 300_000
)

// fuelFor is the default fuel for a Timeout: defaultFuel, or, for a
// Timeout shorter than the worst case of defaultFuel (65 ms), what the
// worst case runs in Timeout, so that fuel stops every call within its
// Timeout without wazero's costly preemption. A Go guest's garbage
// collection of a 13 MiB heap takes about 3,000,000 units: a Timeout
// under 10 ms is for hand-written (or TinyGo) plugins.
func fuelFor(timeout time.Duration) int64 {
	return min(defaultFuel, max(1, timeout.Milliseconds())*worstFuelPerMillisecond)
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxMemoryBytes == 0 {
		l.MaxMemoryBytes = 16 << 20
	}
	if l.MaxTableElements == 0 {
		l.MaxTableElements = 10_000
	}
	if l.MaxInstances <= 0 {
		l.MaxInstances = 10
	}
	if l.MaxTables == 0 {
		l.MaxTables = 1
	}
	if l.MaxMemories == 0 {
		l.MaxMemories = 1
	}
	if l.Timeout <= 0 {
		l.Timeout = 100 * time.Millisecond
	}
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = 8 << 20
	}
	if l.Fuel <= 0 {
		l.Fuel = fuelFor(l.Timeout)
	}
	if l.MaxLogBytesPerCall <= 0 {
		l.MaxLogBytesPerCall = 4 << 10
	}
	if l.InitFuel <= 0 {
		l.InitFuel = 200_000_000
	}
	if l.MaxCallDepth <= 0 {
		l.MaxCallDepth = 10_000
	}
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = 1 << 20
	}
	if l.RecycleAfter <= 0 {
		l.RecycleAfter = 100_000
	}
	if l.RecycleMemoryBytes == 0 {
		l.RecycleMemoryBytes = l.MaxMemoryBytes / 4 * 3
	}
	switch {
	case l.MaxMemoryBytes < pageSize || l.MaxMemoryBytes > 4<<30:
		return l, &LimitError{Limit: "MaxMemoryBytes", Msg: fmt.Sprintf("%d is outside 64 KiB–4 GiB", l.MaxMemoryBytes)}
	case l.MaxTables > 1:
		return l, &LimitError{Limit: "MaxTables", Msg: "at most 1: plugins run without reference types, so a second table cannot load"}
	case l.MaxMemories > 1:
		return l, &LimitError{Limit: "MaxMemories", Msg: "at most 1: wazero has no multiple memories"}
	case l.MaxCallDepth > 1_000_000:
		return l, &LimitError{Limit: "MaxCallDepth", Msg: "at most 1,000,000"}
	}
	return l, nil
}

func (l Limits) memoryPages() uint32 { return uint32(l.MaxMemoryBytes / pageSize) }

// LimitError is a module that breaks a Limit, or a Limit that cannot be
// honoured. It names the limit and the values.
type LimitError struct {
	Limit string
	Msg   string
}

func (e *LimitError) Error() string { return "wasmguard: " + e.Limit + ": " + e.Msg }
