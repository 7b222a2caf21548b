package bench

import (
	"context"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/mqttguard/mqttguard/wasmguard"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The per-call overhead of a trivial on_publish on a pooled instance:
// mqttguard with every limit enforced (fuel, call depth, memory, pool,
// breaker, stats), against wazero's own bound (WithCloseOnContextDone and
// a deadline per call, on the module as it is) and against an unbounded
// call (the floor: nothing stops a spinning guest).

var wasmPublish = &wasmguard.PublishEvent{ClientID: "sensor-0042", Username: "sensor",
	Topic: "allow", Payload: []byte(`{"t":21.5}`)}

func wasmGuests(b *testing.B) map[string][]byte {
	hand, err := os.ReadFile("../wasmguard/testdata/trivial.wasm")
	if err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{"hand": hand, "go": wasmbuild.Build(b, "../wasmguard/testdata/goguest")}
}

func BenchmarkWasmCall(b *testing.B) {
	ctx := context.Background()
	for _, guest := range []string{"hand", "go"} {
		wasm := wasmGuests(b)[guest]
		b.Run("guest="+guest+"/impl=mqttguard", func(b *testing.B) {
			p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if v, err := p.OnPublish(ctx, wasmPublish); err != nil || v.Action != wasmguard.Allow {
					b.Fatal(v, err)
				}
			}
		})
		b.Run("guest="+guest+"/impl=mqttguard-preempt", func(b *testing.B) {
			p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1, Preempt: true})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				if v, err := p.OnPublish(ctx, wasmPublish); err != nil || v.Action != wasmguard.Allow {
					b.Fatal(v, err)
				}
			}
		})
		b.Run("guest="+guest+"/impl=wazero-closeoncontextdone", func(b *testing.B) {
			benchRawWazero(b, wasm, true)
		})
		b.Run("guest="+guest+"/impl=wazero-unbounded", func(b *testing.B) {
			benchRawWazero(b, wasm, false)
		})
	}
}

// benchRawWazero does what a host without wasmguard does per call: write
// the same event into the guest's buffer, then CallWithStack on cached
// function handles — with a deadline and WithCloseOnContextDone when
// bounded, so that a spinning guest is stopped.
func benchRawWazero(b *testing.B, wasm []byte, bounded bool) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(bounded).WithMemoryLimitPages(256).
		WithCoreFeatures(api.CoreFeaturesV2.SetEnabled(api.CoreFeatureReferenceTypes, false)))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	rt.NewHostModuleBuilder("mqttguard").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}),
		[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).Export("log").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) { s[0] = 0 }),
		[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("config").
		Instantiate(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	onPublish, buffer := mod.ExportedFunction("on_publish"), mod.ExportedFunction("mqttguard_buffer")
	rec := encodePublish(wasmPublish)
	stack := []uint64{4096}
	if err := buffer.CallWithStack(ctx, stack); err != nil {
		b.Fatal(err)
	}
	ptr := uint32(stack[0])
	b.ReportAllocs()
	for b.Loop() {
		view, _ := mod.Memory().Read(ptr, uint32(len(rec)))
		copy(view, rec)
		stack[0] = uint64(len(rec))
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			cctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
		}
		err := onPublish.CallWithStack(cctx, stack)
		cancel()
		if err != nil || stack[0] != 0 {
			b.Fatal(stack[0], err)
		}
	}
}

// encodePublish is the ABI v1 record, as wasmguard writes it.
func encodePublish(p *wasmguard.PublishEvent) []byte {
	r := binary.LittleEndian.AppendUint16(nil, 1)
	r = append(r, 3, 0, p.QoS, 0, 0, 0)
	r = binary.LittleEndian.AppendUint64(r, uint64(time.Now().UnixNano()))
	for _, s := range []string{p.ClientID, p.Username, p.Topic, string(p.Payload)} {
		r = binary.LittleEndian.AppendUint32(r, uint32(len(s)))
		r = append(r, s...)
	}
	return r
}

// 10 instances shared by every core.
func BenchmarkWasmCallParallel(b *testing.B) {
	ctx := context.Background()
	for _, guest := range []string{"hand", "go"} {
		b.Run("guest="+guest+"/impl=mqttguard", func(b *testing.B) {
			p, err := wasmguard.Load(ctx, wasmGuests(b)[guest], wasmguard.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if v, err := p.OnPublish(ctx, wasmPublish); err != nil || v.Action != wasmguard.Allow {
						b.Error(v, err)
						return
					}
				}
			})
		})
	}
}

// Load of a Go plugin (1.9 MB, one instance): cold (instrumented and
// compiled from scratch: a unique custom section defeats both caches)
// against cached (the same module loaded again in the same process).
func BenchmarkWasmLoad(b *testing.B) {
	ctx := context.Background()
	wasm := wasmGuests(b)["go"]
	b.Run("guest=go/cache=cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			unique := append(append([]byte(nil), wasm...), 0x00, 0x07, 0x05, 'n', 'o', 'n', 'c', 'e', byte(i))
			p, err := wasmguard.Load(ctx, unique, wasmguard.Limits{MaxInstances: 1}, wasmguard.WithCacheDir(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			p.Close(ctx)
		}
	})
	b.Run("guest=go/cache=warm", func(b *testing.B) {
		for b.Loop() {
			p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1})
			if err != nil {
				b.Fatal(err)
			}
			p.Close(ctx)
		}
	})
}

// Memory per pooled instance: Go heap (wazero's bookkeeping, stacks) and
// linear memory (mapped outside the heap).
func BenchmarkWasmInstanceMemory(b *testing.B) {
	ctx := context.Background()
	for _, guest := range []string{"hand", "go"} {
		b.Run("guest="+guest, func(b *testing.B) {
			wasm := wasmGuests(b)[guest]
			const n = 10
			var heap, linear float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: n})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc-before.HeapAlloc) / n
				linear = 0
				for _, in := range p.Stats().Instances {
					linear += float64(in.MemoryBytes) / n
				}
				p.Close(ctx)
			}
			b.ReportMetric(heap, "heap-B/instance")
			b.ReportMetric(linear, "linear-B/instance")
		})
	}
}
