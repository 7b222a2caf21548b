package wasmguard

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard/wasmguard/internal/wasmbin"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Exports of ABI version 1.
const (
	exportMarker = "mqttguard_abi_v1"
	exportBuffer = "mqttguard_buffer"
	exportMemory = "memory"
)

// Hook is one of the decisions a plugin can take part in.
type Hook uint8

const (
	HookConnect Hook = iota
	HookSubscribe
	HookPublish
	numHooks
)

var hookExports = [numHooks]string{"on_connect", "on_subscribe", "on_publish"}

func (h Hook) String() string {
	if h < numHooks {
		return hookExports[h]
	}
	return fmt.Sprintf("Hook(%d)", uint8(h))
}

// wasiAllowed are the WASI functions a Go-built plugin may import: the
// runtime's ten, and the descriptor functions the os package brings in
// (fmt, log/slog and encoding/json pull it in). With the module
// configuration wasmguard gives a plugin (no preopened directories, no
// sockets, stdin at EOF, stdout and stderr into a bounded buffer, fake
// clocks, no nanosleep) the only descriptors are those three, and none of
// these functions reaches the host or blocks. Functions that name paths
// or sockets are refused at load: a plugin gets its configuration from
// WithConfig.
var wasiAllowed = map[string]bool{
	"sched_yield": true, "proc_exit": true, "args_get": true, "args_sizes_get": true,
	"clock_time_get": true, "environ_get": true, "environ_sizes_get": true,
	"fd_write": true, "random_get": true, "poll_oneoff": true,
	"fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true, "fd_fdstat_set_rights": true,
	"fd_filestat_get": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"fd_read": true, "fd_pread": true, "fd_pwrite": true, "fd_seek": true, "fd_sync": true,
}

// hostAllowed are the functions of the host module "mqttguard".
var hostAllowed = map[string]bool{"log": true, "config": true}

// Option configures Load.
type Option func(*options)

type options struct {
	name     string
	logger   *slog.Logger
	policy   FailurePolicy
	cacheDir string
	breaker  breakerConfig
	logRate  int
	config   []byte
}

// WithName names the plugin in logs, errors and stats (default: the
// first 12 hex digits of the module's SHA-256).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithLogger receives the plugin's log calls and the host's reports about
// it (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithFailurePolicy sets what a failed call decides (default FailClosed).
func WithFailurePolicy(p FailurePolicy) Option { return func(o *options) { o.policy = p } }

// WithCacheDir keeps compiled modules in dir, so a restart loads a Go
// plugin in tens of milliseconds instead of half a second. Protect the
// directory like a binary: it holds machine code.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithBreaker sets the circuit breaker: after failures consecutive
// failed calls, or sooner once consecutive failed calls have taken
// WithBreakerBudget in all, the plugin is quarantined for cooldown
// (doubling, up to ten minutes, while it keeps failing). Defaults: 5 and
// 30 seconds.
func WithBreaker(failures int, cooldown time.Duration) Option {
	return func(o *options) { o.breaker.failures, o.breaker.cooldown = failures, cooldown }
}

// WithBreakerBudget sets the time consecutive failed calls may take in
// all before the breaker trips, however few they are (default:
// Limits.Timeout; negative: only WithBreaker's count trips it). A
// fail-open plugin whose calls each run to their limit thus costs the
// clients behind it about this much before it is quarantined, not five
// times its Timeout.
func WithBreakerBudget(d time.Duration) Option {
	return func(o *options) { o.breaker.budget = d }
}

// WithConfig gives the plugin a configuration (a deny list, thresholds,
// …) that it reads with guest.Config. Plugins cannot read files.
func WithConfig(b []byte) Option {
	return func(o *options) { o.config = append([]byte(nil), b...) }
}

// WithLogRate caps the plugin's log calls per second (default 20); the
// excess is counted and dropped.
func WithLogRate(perSecond int) Option { return func(o *options) { o.logRate = perSecond } }

var (
	sharedCache     = wazero.NewCompilationCache()
	dirCachesMu     sync.Mutex
	dirCaches       = map[string]wazero.CompilationCache{}
	instrumentedMu  sync.Mutex
	instrumentedMem = map[[32]byte][]byte{}
)

// Load checks, instruments, compiles and instantiates a plugin. Before
// wazero sees the module, its sections are read and it is refused — with
// an error naming the limit and the values — if it is too large, has more
// than one memory or table, declares a table or memory above the limits,
// imports anything but the WASI functions Go needs and the "mqttguard"
// host functions, or lacks the ABI marker. Then the code is rewritten so
// that every call is bounded (see the package doc), compiled once (an
// in-memory cache shared by all plugins, or WithCacheDir), and the pool
// is filled with MaxInstances instances.
func Load(ctx context.Context, wasm []byte, lim Limits, opts ...Option) (*Plugin, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	o := options{breaker: breakerConfig{failures: 5, cooldown: 30 * time.Second}, logRate: 20}
	for _, opt := range opts {
		opt(&o)
	}
	sum := sha256.Sum256(wasm)
	if o.name == "" {
		o.name = fmt.Sprintf("%x", sum[:6])
	}
	if len(wasm) > lim.MaxModuleBytes {
		return nil, &LimitError{Limit: "MaxModuleBytes", Msg: fmt.Sprintf("the module has %d bytes, the limit is %d", len(wasm), lim.MaxModuleBytes)}
	}
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, fmt.Errorf("wasmguard: plugin %s: %w", o.name, err)
	}
	if err := checkModule(m, lim); err != nil {
		return nil, err
	}
	instrumented, err := instrument(m, sum, lim)
	if err != nil {
		return nil, fmt.Errorf("wasmguard: plugin %s: %w", o.name, err)
	}

	cache := sharedCache
	if o.cacheDir != "" {
		if cache, err = dirCache(o.cacheDir); err != nil {
			return nil, err
		}
	}
	features := api.CoreFeaturesV2.SetEnabled(api.CoreFeatureReferenceTypes, false)
	rc := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(features).
		WithMemoryLimitPages(lim.memoryPages()).
		WithCloseOnContextDone(lim.Preempt).
		WithDebugInfoEnabled(false).
		WithCompilationCache(cache)
	p := &Plugin{name: o.name, lim: lim, opts: o, policy: o.policy, logger: o.logger, live: map[*instance]struct{}{}}
	p.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	ok := false
	defer func() {
		if !ok {
			p.rt.Close(ctx)
		}
	}()
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return nil, err
	}
	if err := p.instantiateHost(ctx); err != nil {
		return nil, err
	}
	p.compiled, err = p.rt.CompileModule(ctx, instrumented)
	if err != nil {
		return nil, fmt.Errorf("wasmguard: plugin %s does not compile: %w", o.name, err)
	}
	if err := p.checkExports(); err != nil {
		return nil, err
	}
	switch {
	case o.breaker.budget == 0:
		o.breaker.budget = lim.Timeout
	case o.breaker.budget < 0:
		o.breaker.budget = 0 // the count alone
	}
	p.breaker = newBreaker(o.breaker)
	p.logLimit = newLogLimiter(o.logRate)
	p.pool = make(chan *instance, lim.MaxInstances)
	for i := 0; i < lim.MaxInstances; i++ {
		inst, err := p.newInstance(ctx)
		if err != nil {
			p.drain(ctx)
			return nil, fmt.Errorf("wasmguard: plugin %s does not instantiate: %w", o.name, err)
		}
		p.pool <- inst
	}
	p.refill = make(chan struct{}, lim.MaxInstances)
	p.stop = make(chan struct{})
	p.stopped = make(chan struct{})
	go p.refiller()
	ok = true
	return p, nil
}

func dirCache(dir string) (wazero.CompilationCache, error) {
	dirCachesMu.Lock()
	defer dirCachesMu.Unlock()
	if c := dirCaches[dir]; c != nil {
		return c, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wasmguard: cache directory %s: %w", dir, err)
	}
	dirCaches[dir] = c
	return c, nil
}

// instrument rewrites the module, remembering the result per module and
// limits: the rewrite of a Go plugin takes about 100 ms.
func instrument(m *wasmbin.Module, sum [32]byte, lim Limits) ([]byte, error) {
	key := sha256.Sum256(fmt.Appendf(sum[:], "|%d|%d", lim.InitFuel, lim.MaxCallDepth))
	instrumentedMu.Lock()
	out, ok := instrumentedMem[key]
	instrumentedMu.Unlock()
	if ok {
		return out, nil
	}
	out, err := wasmbin.Instrument(m, wasmbin.Options{InitFuel: lim.InitFuel, MaxDepth: int32(lim.MaxCallDepth), BulkShift: 4})
	if err != nil {
		return nil, err
	}
	instrumentedMu.Lock()
	if len(instrumentedMem) >= 16 {
		clear(instrumentedMem)
	}
	instrumentedMem[key] = out
	instrumentedMu.Unlock()
	return out, nil
}

// checkModule applies the limits and the ABI to the module's sections.
func checkModule(m *wasmbin.Module, lim Limits) error {
	if len(m.Memories) > lim.MaxMemories {
		return &LimitError{Limit: "MaxMemories", Msg: fmt.Sprintf("the module defines %d memories, the limit is %d", len(m.Memories), lim.MaxMemories)}
	}
	if len(m.Memories) == 0 {
		return &LimitError{Limit: "ABI", Msg: "the module defines no memory; the ABI needs one, exported as \"memory\""}
	}
	if min := m.Memories[0].Min * pageSize; min > lim.MaxMemoryBytes {
		return &LimitError{Limit: "MaxMemoryBytes", Msg: fmt.Sprintf("the module's memory starts at %d bytes, the limit is %d", min, lim.MaxMemoryBytes)}
	}
	if len(m.Tables) > lim.MaxTables {
		return &LimitError{Limit: "MaxTables", Msg: fmt.Sprintf("the module defines %d tables, the limit is %d", len(m.Tables), lim.MaxTables)}
	}
	for i, t := range m.Tables {
		if t.Min > uint64(lim.MaxTableElements) {
			return &LimitError{Limit: "MaxTableElements", Msg: fmt.Sprintf("table %d declares %d elements, the limit is %d", i, t.Min, lim.MaxTableElements)}
		}
	}
	for _, imp := range m.Imports {
		switch {
		case imp.Module == "wasi_snapshot_preview1" && wasiAllowed[imp.Name]:
		case imp.Module == "mqttguard" && hostAllowed[imp.Name]:
		default:
			return &LimitError{Limit: "imports", Msg: fmt.Sprintf("the module imports %s.%s; a plugin may import only mqttguard.log, mqttguard.config and the WASI functions a Go plugin needs (%s); plugins cannot use files or sockets",
				imp.Module, imp.Name, strings.Join(sortedKeys(wasiAllowed), ", "))}
		}
	}
	exports := map[string]bool{}
	for _, e := range m.Exports {
		exports[e.Name] = true
	}
	for _, need := range []string{exportMarker, exportBuffer, exportMemory} {
		if !exports[need] {
			return &LimitError{Limit: "ABI", Msg: fmt.Sprintf("the module does not export %q; is it built for the mqttguard plugin ABI v1 (package wasmguard/guest)?", need)}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkExports verifies the signatures of the ABI's exports.
func (p *Plugin) checkExports() error {
	fns := p.compiled.ExportedFunctions()
	want := func(name string, params, results []api.ValueType) error {
		d, ok := fns[name]
		if !ok {
			return nil
		}
		if !equalTypes(d.ParamTypes(), params) || !equalTypes(d.ResultTypes(), results) {
			return &LimitError{Limit: "ABI", Msg: fmt.Sprintf("export %s has type %v -> %v, want %v -> %v", name, d.ParamTypes(), d.ResultTypes(), params, results)}
		}
		return nil
	}
	i32 := []api.ValueType{api.ValueTypeI32}
	if err := want(exportMarker, nil, nil); err != nil {
		return err
	}
	if err := want(exportBuffer, i32, i32); err != nil {
		return err
	}
	for h, name := range hookExports {
		if err := want(name, i32, i32); err != nil {
			return err
		}
		if _, ok := fns[name]; ok {
			p.hooks[h] = true
		}
	}
	return nil
}

func equalTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
