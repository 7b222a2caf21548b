package wasmguard

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/wasmguard/internal/wasmbin"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Plugin is a loaded plugin: its compiled module and a pool of at most
// MaxInstances instances, each used by one call at a time. It is safe for
// concurrent use.
type Plugin struct {
	name     string
	lim      Limits
	opts     options
	policy   FailurePolicy
	logger   *slog.Logger
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	hooks    [numHooks]bool
	breaker  *breaker
	logLimit *logLimiter

	// pool holds the MaxInstances slots: an instance, or nil for a slot
	// whose instance must be created by whoever takes it. A slot is in
	// the pool, held by a call, or (as a token in refill) with the
	// refiller, which re-creates failed and recycled instances off the
	// callers' path.
	pool     chan *instance
	refill   chan struct{}
	refillMu sync.Mutex // orders replace against Close
	stop     chan struct{}
	stopped  chan struct{}

	disabled  atomic.Bool
	closed    atomic.Bool
	collected int // slots Close has taken back

	liveMu sync.Mutex
	live   map[*instance]struct{}
	// byModule finds the instance a host function was called from
	// (api.Module → *instance), for its per-call budgets.
	byModule sync.Map

	stats counters
}

// instance is one instantiation of the module with everything a call
// needs looked up once (an export lookup costs microseconds).
type instance struct {
	mod         api.Module
	mem         api.Memory
	fuel, depth api.MutableGlobal
	buffer      api.Function
	hooks       [numHooks]api.Function
	stack       []uint64
	bufPtr      uint32
	bufCap      int
	calls       int
	out         *output
	rnd         *budgetReader
	logBytes    int // written through log in the call running

	// Read by Stats while the instance runs.
	callsSeen atomic.Uint64
	memBytes  atomic.Uint64
	peakBytes atomic.Uint64
}

// Name is the plugin's name (WithName).
func (p *Plugin) Name() string { return p.name }

// Has reports whether the plugin implements hook h. Calls for a hook it
// does not implement allow without running it.
func (p *Plugin) Has(h Hook) bool { return h < numHooks && p.hooks[h] }

// OnConnect asks the plugin about a connection. The error is non-nil
// exactly when the plugin did not decide (Verdict.Failed): it is a
// *CallError whose Kind says why, and the verdict is the failure
// policy's.
func (p *Plugin) OnConnect(ctx context.Context, ev *ConnectEvent) (Verdict, error) {
	return p.call(ctx, HookConnect, event{kind: kindConnect, c: ev})
}

// OnSubscribe asks the plugin about one subscription filter; see
// OnConnect.
func (p *Plugin) OnSubscribe(ctx context.Context, ev *SubscribeEvent) (Verdict, error) {
	return p.call(ctx, HookSubscribe, event{kind: kindSubscribe, s: ev})
}

// OnPublish asks the plugin about one PUBLISH; see OnConnect.
func (p *Plugin) OnPublish(ctx context.Context, ev *PublishEvent) (Verdict, error) {
	return p.call(ctx, HookPublish, event{kind: kindPublish, p: ev})
}

// Disable takes the plugin out at run time (an emergency stop): until
// Enable its calls allow without running it.
func (p *Plugin) Disable() {
	if !p.disabled.Swap(true) {
		p.log(slog.LevelWarn, "plugin disabled")
	}
}

// Enable puts a disabled plugin back, and lifts a quarantine.
func (p *Plugin) Enable() {
	p.breaker.reset()
	if p.disabled.Swap(false) {
		p.log(slog.LevelInfo, "plugin enabled")
	}
}

// Disabled reports whether Disable is in force.
func (p *Plugin) Disabled() bool { return p.disabled.Load() }

func (p *Plugin) call(ctx context.Context, h Hook, ev event) (Verdict, error) {
	if p.closed.Load() {
		return p.policy.verdict(), p.callError(h, ErrClosed, nil)
	}
	if p.disabled.Load() {
		p.stats.skipped.Add(1)
		return Verdict{Action: Allow}, nil
	}
	if !p.hooks[h] {
		return Verdict{Action: Allow}, nil
	}
	if err := ctx.Err(); err != nil {
		return p.policy.verdict(), p.callError(h, ErrBusy, err)
	}
	now := time.Now()
	if p.breaker.open(now) {
		p.stats.quarantined.Add(1)
		return p.policy.verdict(), p.callError(h, ErrQuarantined, nil)
	}
	size := ev.size()
	if size > p.lim.MaxEventBytes {
		p.stats.tooLarge.Add(1)
		p.stats.failures.Add(1) // the policy decides, but the plugin is not to blame
		return p.policy.verdict(), p.callError(h, ErrTooLarge, fmt.Errorf("the event has %d bytes, the limit is %d", size, p.lim.MaxEventBytes))
	}
	inst, err := p.acquire(ctx)
	if err != nil {
		switch {
		case errors.Is(err, ErrClosed):
			return p.policy.verdict(), p.callError(h, ErrClosed, nil)
		case errors.Is(err, ErrBusy):
			return p.policy.verdict(), p.callError(h, ErrBusy, err)
		}
		return p.fail(h, now, time.Since(now), ErrInstantiate, err)
	}
	p.stats.calls.Add(1)
	started := time.Now() // the breaker counts the plugin's time, not the wait for an instance
	v, kind, err := p.run(ctx, inst, h, &ev, size, now)
	if kind != nil {
		p.replace(inst, false)
		return p.fail(h, now, time.Since(started), kind, err)
	}
	p.breaker.success()
	switch v.Action {
	case Allow:
		p.stats.allowed.Add(1)
	case Deny:
		p.stats.denied.Add(1)
	case Drop:
		p.stats.dropped.Add(1)
	}
	p.release(inst)
	return v, nil
}

// run makes one call on inst. A non-nil kind is a failure, after which
// the instance must not be used again.
func (p *Plugin) run(ctx context.Context, inst *instance, h Hook, ev *event, size int, now time.Time) (v Verdict, kind, err error) {
	if inst.bufCap < size {
		if kind, err := p.grow(ctx, inst, size); kind != nil {
			return v, kind, err
		}
	}
	view, ok := inst.mem.Read(inst.bufPtr, uint32(size))
	if !ok { // memories do not shrink, so this is a broken invariant
		return v, ErrBadBuffer, fmt.Errorf("%d bytes at %d", size, inst.bufPtr)
	}
	ev.encode(view, now)

	cctx := ctx
	if p.lim.Preempt {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, p.lim.Timeout)
		defer cancel()
	}
	inst.fuel.Set(uint64(p.lim.Fuel))
	inst.depth.Set(0)
	inst.out.reset()
	inst.rnd.left, inst.logBytes = randomBudget, 0
	inst.stack[0] = uint64(size)
	err = inst.hooks[h].CallWithStack(cctx, inst.stack)
	elapsed := time.Since(now)
	inst.calls++
	inst.callsSeen.Store(uint64(inst.calls))
	p.observeMemory(inst)
	if err != nil {
		out := inst.out.take()
		kind := p.classify(cctx, inst, err, out)
		if line := telling(out); line != "" {
			err = fmt.Errorf("the plugin wrote %q: %w", line, err)
		}
		return v, kind, err
	}
	if elapsed > p.lim.Timeout {
		return v, ErrTimeout, fmt.Errorf("the call took %v, the limit is %v", elapsed, p.lim.Timeout)
	}
	r := uint32(inst.stack[0])
	v, ok = decodeVerdict(r)
	if !ok {
		return v, ErrBadVerdict, fmt.Errorf("0x%08x", r)
	}
	return v, nil, nil
}

// grow asks the guest for a scratch buffer of at least size bytes (a
// power of two from 4 KiB, so that growing events rarely ask again) and
// checks that it lies inside the guest's memory.
func (p *Plugin) grow(ctx context.Context, inst *instance, size int) (kind, err error) {
	want := 4096
	for want < size {
		want *= 2
	}
	want = min(want, max(size, p.lim.MaxEventBytes))
	inst.fuel.Set(uint64(p.lim.Fuel))
	inst.depth.Set(0)
	inst.rnd.left, inst.logBytes = randomBudget, 0
	inst.stack[0] = uint64(want)
	if err := inst.buffer.CallWithStack(ctx, inst.stack); err != nil {
		return p.classify(ctx, inst, err, inst.out.take()), fmt.Errorf("%s(%d): %w", exportBuffer, want, err)
	}
	ptr := uint32(inst.stack[0])
	if uint64(ptr)+uint64(want) > uint64(inst.mem.Size()) || ptr == 0 {
		return ErrBadBuffer, fmt.Errorf("%s(%d) returned %d; the memory has %d bytes", exportBuffer, want, ptr, inst.mem.Size())
	}
	inst.bufPtr, inst.bufCap = ptr, want
	return nil, nil
}

// classify names what stopped a failed call; out is what the guest
// wrote during it.
func (p *Plugin) classify(ctx context.Context, inst *instance, err error, out string) error {
	var exit *sys.ExitError
	switch {
	case int32(uint32(inst.depth.Get())) > int32(p.lim.MaxCallDepth):
		return ErrCallDepth
	case int64(inst.fuel.Get()) < 0:
		return ErrFuel
	case errors.As(err, &exit) && ctx.Err() != nil:
		return ErrTimeout
	case strings.Contains(err.Error(), "stack overflow"):
		return ErrCallDepth
	case p.atMemoryLimit(inst) || strings.Contains(out, "out of memory"):
		return ErrMemoryLimit
	}
	return ErrTrap
}

func (p *Plugin) atMemoryLimit(inst *instance) bool {
	return uint64(inst.mem.Size())+pageSize > p.lim.MaxMemoryBytes
}

func (p *Plugin) observeMemory(inst *instance) {
	sz := uint64(inst.mem.Size())
	inst.memBytes.Store(sz)
	if sz > inst.peakBytes.Load() {
		inst.peakBytes.Store(sz)
		for {
			peak := p.stats.peakMemory.Load()
			if sz <= peak || p.stats.peakMemory.CompareAndSwap(peak, sz) {
				break
			}
		}
	}
}

// fail counts a failed call that started at now and took took of the
// plugin's time, feeds the breaker, and returns the failure policy's
// verdict.
func (p *Plugin) fail(h Hook, now time.Time, took time.Duration, kind, err error) (Verdict, error) {
	p.stats.failures.Add(1)
	switch kind {
	case ErrTrap:
		p.stats.traps.Add(1)
	case ErrFuel:
		p.stats.fuel.Add(1)
	case ErrCallDepth:
		p.stats.depth.Add(1)
	case ErrTimeout:
		p.stats.timeouts.Add(1)
	case ErrMemoryLimit:
		p.stats.memoryLimit.Add(1)
	case ErrBadVerdict:
		p.stats.badVerdicts.Add(1)
	case ErrBadBuffer:
		p.stats.badBuffers.Add(1)
	case ErrInstantiate:
		p.stats.instantiateErrors.Add(1)
	}
	cerr := p.callError(h, kind, err)
	if tripped, cooldown := p.breaker.failure(now, took); tripped {
		p.log(slog.LevelWarn, "plugin quarantined after repeated failures", slog.Duration("for", cooldown), slog.String("last", cerr.Error()))
	} else {
		p.log(slog.LevelDebug, "plugin call failed", slog.String("error", cerr.Error()))
	}
	return p.policy.verdict(), cerr
}

func (p *Plugin) callError(h Hook, kind, err error) *CallError {
	return &CallError{Plugin: p.name, Hook: h.String(), Kind: kind, Err: err}
}

func (p *Plugin) log(level slog.Level, msg string, attrs ...slog.Attr) {
	if p.logger != nil {
		p.logger.LogAttrs(context.Background(), level, msg, append(attrs, slog.String("plugin", p.name))...)
	}
}

// acquire takes a slot, waiting with ctx, and makes sure it has an
// instance.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	var inst *instance
	var ok bool
	select {
	case inst, ok = <-p.pool:
	default:
		p.stats.waits.Add(1)
		select {
		case inst, ok = <-p.pool:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for a free instance: %w", ErrBusy, ctx.Err())
		}
	}
	if !ok {
		return nil, ErrClosed
	}
	if p.closed.Load() {
		p.pool <- inst
		return nil, ErrClosed
	}
	if inst == nil {
		var err error
		if inst, err = p.newInstance(ctx); err != nil {
			p.pool <- nil
			return nil, err
		}
	}
	return inst, nil
}

// release returns a healthy instance to the pool, or recycles it.
func (p *Plugin) release(inst *instance) {
	if inst.calls >= p.lim.RecycleAfter || inst.memBytes.Load() > p.lim.RecycleMemoryBytes {
		p.replace(inst, true)
		return
	}
	p.pool <- inst
}

// replace closes inst and has the refiller create its successor.
func (p *Plugin) replace(inst *instance, recycled bool) {
	if recycled {
		p.stats.recycled.Add(1)
	} else {
		p.stats.replaced.Add(1)
	}
	p.closeInstance(inst)
	p.refillMu.Lock()
	defer p.refillMu.Unlock()
	if p.closed.Load() {
		p.pool <- nil
		return
	}
	p.refill <- struct{}{}
}

// refiller re-creates instances until Close. A slot whose instance cannot
// be created goes back empty: the next call tries again itself and, if
// that fails too, counts against the breaker.
func (p *Plugin) refiller() {
	defer close(p.stopped)
	ctx := context.Background()
	for {
		select {
		case <-p.stop:
			return
		case <-p.refill:
			inst, err := p.newInstance(ctx)
			if err != nil {
				p.stats.instantiateErrors.Add(1)
				p.log(slog.LevelError, "plugin instance could not be re-created", slog.String("error", err.Error()))
			}
			p.pool <- inst
		}
	}
}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	out := &output{}
	rnd := &budgetReader{src: rand.Reader, left: randomInitBudget}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: nothing can import it
		WithStartFunctions("_initialize").
		WithStdout(out).
		WithStderr(out).
		WithRandSource(rnd)
	mod, err := p.rt.InstantiateModule(withMemory(ctx), p.compiled, cfg)
	if err != nil {
		if s := telling(out.take()); s != "" {
			// The guest's words first (a plugin refusing its
			// configuration says why); the runtime's trace after them.
			err = &guestError{said: s, err: err}
		}
		return nil, err
	}
	inst := &instance{mod: mod, mem: mod.Memory(), out: out, rnd: rnd, stack: make([]uint64, 1)}
	inst.fuel, _ = mod.ExportedGlobal(wasmbin.FuelExport).(api.MutableGlobal)
	inst.depth, _ = mod.ExportedGlobal(wasmbin.DepthExport).(api.MutableGlobal)
	inst.buffer = mod.ExportedFunction(exportBuffer)
	if inst.mem == nil || inst.fuel == nil || inst.depth == nil || inst.buffer == nil {
		mod.Close(ctx)
		return nil, errors.New("the instrumented module lacks its memory, counters or buffer export")
	}
	for h := range numHooks {
		if p.hooks[h] {
			inst.hooks[h] = mod.ExportedFunction(hookExports[h])
		}
	}
	p.stats.created.Add(1)
	p.observeMemory(inst)
	p.liveMu.Lock()
	p.live[inst] = struct{}{}
	p.liveMu.Unlock()
	p.byModule.Store(mod, inst)
	return inst, nil
}

func (p *Plugin) closeInstance(inst *instance) {
	p.liveMu.Lock()
	delete(p.live, inst)
	p.liveMu.Unlock()
	p.byModule.Delete(inst.mod)
	if p.atMemoryLimit(inst) {
		p.stats.memoryLimitHits.Add(1)
	}
	// Dropping the instance frees its functions' native stacks too.
	inst.mod.Close(context.Background())
}

// guestError is a failure the guest explained in its output. Its
// message is one line: what the guest said, then the first line of the
// runtime's error (its Wasm stack trace, which errors.Unwrap reaches,
// tells an operator nothing about a bad configuration).
type guestError struct {
	said string
	err  error
}

func (e *guestError) Error() string {
	msg := e.err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return e.said + " (" + msg + ")"
}
func (e *guestError) Unwrap() error { return e.err }

// telling picks the line of a guest's output that says what went wrong:
// a Go guest's "panic: …" or "fatal error: …", else the last line.
func telling(out string) string {
	if strings.TrimSpace(out) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// Close waits for calls in progress (they are bounded by fuel), closes
// every instance and the runtime. Later calls get ErrClosed and the
// failure policy's verdict. If ctx ends first, Close returns its error
// and the last call to finish closes the runtime.
func (p *Plugin) Close(ctx context.Context) error {
	p.refillMu.Lock()
	already := p.closed.Swap(true)
	p.refillMu.Unlock()
	if already {
		return nil
	}
	close(p.stop)
	<-p.stopped
	slots := p.lim.MaxInstances
	for len(p.refill) > 0 { // slots the refiller did not get to
		<-p.refill
		slots--
	}
	if p.collect(ctx, slots) {
		return nil
	}
	// Closing the runtime under a running call would unmap its code and
	// memory; leave that to the finisher, which ends when the calls do.
	go p.collect(context.Background(), slots-p.collected)
	return fmt.Errorf("wasmguard: plugin %s: %w before the calls in progress returned; they close the plugin when they do", p.name, ctx.Err())
}

// collect takes n slots back from the pool, closing their instances, and
// then the runtime. It reports false if ctx ended first.
func (p *Plugin) collect(ctx context.Context, n int) bool {
	p.collected = 0
	for ; p.collected < n; p.collected++ {
		select {
		case inst := <-p.pool:
			if inst != nil {
				p.closeInstance(inst)
			}
		case <-ctx.Done():
			return false
		}
	}
	p.rt.Close(context.Background())
	return true
}

// drain closes what Load instantiated before it failed.
func (p *Plugin) drain(ctx context.Context) {
	for {
		select {
		case inst := <-p.pool:
			if inst != nil {
				inst.mod.Close(ctx)
			}
		default:
			return
		}
	}
}
