package wasmguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero/api"
)

// maxLogBytes is the longest log line a plugin can write; the rest is
// cut off.
const maxLogBytes = 512

// instantiateHost provides the host module "mqttguard" to this plugin's
// runtime (and only to it: every plugin has its own runtime, so no plugin
// can import another's exports).
func (p *Plugin) instantiateHost(ctx context.Context) error {
	i32 := api.ValueTypeI32
	_, err := p.rt.NewHostModuleBuilder("mqttguard").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(p.hostLog), []api.ValueType{i32, i32, i32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export("log").
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(p.hostConfig), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("ptr", "cap").
		Export("config").
		Instantiate(ctx)
	return err
}

// errGuestPointer traps the guest: a panic in a host function becomes a
// trap of the call, which then fails like any other.
type errGuestPointer struct{ ptr, n uint32 }

func (e errGuestPointer) Error() string {
	return fmt.Sprintf("%d bytes at %d lie outside the plugin's memory", e.n, e.ptr)
}

// hostLog is log(level i32, ptr i32, len i32): the text at [ptr, ptr+len)
// goes to the host's logger at the given slog level (clamped to
// debug…error), cut to 512 bytes, within MaxLogBytesPerCall a call and
// the WithLogRate rate. A range outside the guest's memory traps the
// guest: the host never trusts a guest pointer. (The call itself weighs
// 200 units of fuel, so a guest that loops on log runs out of fuel as
// soon as one that loops on anything else.)
func (p *Plugin) hostLog(ctx context.Context, m api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	buf, ok := m.Memory().Read(ptr, n)
	if !ok {
		p.stats.logRejected.Add(1)
		panic(errGuestPointer{ptr, n})
	}
	text := buf
	cut := false
	if len(text) > maxLogBytes {
		text, cut = text[:maxLogBytes], true
	}
	if inst, _ := p.byModule.Load(m); inst != nil { // nil while it starts: _initialize
		in := inst.(*instance)
		if in.logBytes+len(text) > p.lim.MaxLogBytesPerCall {
			p.stats.logDropped.Add(1)
			return
		}
		in.logBytes += len(text)
	}
	if !p.logLimit.allow(time.Now()) {
		p.stats.logDropped.Add(1)
		return
	}
	p.stats.logLines.Add(1)
	p.stats.logBytes.Add(uint64(len(text)))
	if p.logger == nil {
		return
	}
	lv := slog.Level(min(max(level, int32(slog.LevelDebug)), int32(slog.LevelError)))
	if !p.logger.Enabled(ctx, lv) {
		return
	}
	s := strings.ToValidUTF8(string(text), string(utf8.RuneError))
	if cut {
		s += "…"
	}
	p.logger.LogAttrs(ctx, lv, "plugin log", slog.String("plugin", p.name), slog.String("text", s))
}

// hostConfig is config(ptr i32, cap i32) -> i32: it copies up to cap
// bytes of the plugin's configuration (WithConfig) to ptr and returns the
// configuration's length, so a guest asks once with cap 0 and again with
// a buffer that size.
func (p *Plugin) hostConfig(_ context.Context, m api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	n = min(n, uint32(len(p.opts.config)))
	if !m.Memory().Write(ptr, p.opts.config[:n]) {
		panic(errGuestPointer{ptr, n})
	}
	stack[0] = uint64(len(p.opts.config))
}

// logLimiter is a token bucket: perSecond lines a second, bursts of as
// many.
type logLimiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newLogLimiter(perSecond int) *logLimiter {
	if perSecond <= 0 {
		perSecond = 20
	}
	return &logLimiter{rate: float64(perSecond), tokens: float64(perSecond)}
}

func (l *logLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// randomBudget is the randomness a guest may draw through WASI's
// random_get per call (and initBudget while it starts): reading the
// system's source costs the host ~3 ns a byte, so a loop of 64 KiB
// random_get calls, each one instruction of the guest's, ran for 19 s on
// 20,000,000 units of fuel before this bound. Beyond it random_get
// fails (EIO); a Go guest reads a few dozen bytes a call, if any.
const (
	randomBudget     = 64 << 10
	randomInitBudget = 1 << 20
)

// budgetReader is an instance's random source: rand.Reader within a
// budget the host resets before each call.
type budgetReader struct {
	src  io.Reader
	left int
}

var errRandomBudget = errors.New("wasmguard: the plugin drew more randomness than a call may")

func (b *budgetReader) Read(p []byte) (int, error) {
	if len(p) > b.left {
		b.left = 0
		return 0, errRandomBudget
	}
	b.left -= len(p)
	return b.src.Read(p)
}

// output keeps what a guest wrote to stdout and stderr during its last
// call — the first 512 bytes and the last 2 KiB — which is how a Go guest
// reports "fatal error: out of memory" before it traps (in many small
// writes, then a goroutine dump). Bounded; never blocks the guest.
type output struct {
	dirty atomic.Bool // anything written since reset
	mu    sync.Mutex
	head  []byte
	tail  []byte
}

const headBytes, tailBytes = 512, 2048

func (o *output) Write(b []byte) (int, error) {
	o.dirty.Store(true)
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(b)
	if room := headBytes - len(o.head); room > 0 {
		k := min(room, len(b))
		o.head = append(o.head, b[:k]...)
		b = b[k:]
	}
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	if over := len(o.tail) + len(b) - tailBytes; over > 0 {
		o.tail = append(o.tail[:0], o.tail[over:]...)
	}
	o.tail = append(o.tail, b...)
	return n, nil
}

// reset forgets earlier calls' output; one atomic load when there was
// none.
func (o *output) reset() {
	if o.dirty.Load() {
		o.take()
	}
}

// take returns the output since the last reset and forgets it.
func (o *output) take() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dirty.Store(false)
	s := string(o.head)
	if len(o.tail) > 0 {
		s += "\n…\n" + string(o.tail)
	}
	o.head, o.tail = o.head[:0], o.tail[:0]
	return s
}
