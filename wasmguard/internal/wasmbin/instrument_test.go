package wasmbin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

var features = api.CoreFeaturesV2.SetEnabled(api.CoreFeatureReferenceTypes, false)

func testModule(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name+".wasm"))
	require.NoError(t, err)
	return b
}

type instrumented struct {
	mod         api.Module
	fuel, depth api.MutableGlobal
}

func instantiate(t *testing.T, wasm []byte, opt Options) instrumented {
	t.Helper()
	m, err := Parse(wasm)
	require.NoError(t, err)
	out, err := Instrument(m, opt)
	require.NoError(t, err)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features))
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Instantiate(ctx, out)
	require.NoError(t, err)
	return instrumented{mod,
		mod.ExportedGlobal(FuelExport).(api.MutableGlobal),
		mod.ExportedGlobal(DepthExport).(api.MutableGlobal)}
}

// used calls fn(arg) with plenty of fuel and returns the fuel spent.
func (in instrumented) used(t *testing.T, fn string, arg uint64) int64 {
	const plenty = 1 << 40
	in.fuel.Set(plenty)
	in.depth.Set(0)
	_, err := in.mod.ExportedFunction(fn).Call(context.Background(), arg)
	require.NoError(t, err)
	return plenty - int64(in.fuel.Get())
}

// Fuel is charged per metered block: a loop costs the same for every
// iteration, and the total is exactly affine in the iteration count.
func TestFuelPerIteration(t *testing.T) {
	in := instantiate(t, testModule(t, "count"), Options{InitFuel: 1000, MaxDepth: 100, BulkShift: 4})
	base := in.used(t, "count", 0)
	per := in.used(t, "count", 1) - base
	assert.Positive(t, base)
	assert.Positive(t, per)
	for _, n := range []uint64{2, 10, 1000, 100000} {
		assert.Equal(t, base+int64(n)*per, in.used(t, "count", n), "n=%d", n)
	}
	t.Logf("count: %d + %d per iteration", base, per)
}

// Calls pay for themselves: a recursion to depth n costs in proportion.
func TestFuelPerCall(t *testing.T) {
	in := instantiate(t, testModule(t, "count"), Options{InitFuel: 1000, MaxDepth: 1000, BulkShift: 4})
	base := in.used(t, "deep", 0)
	per := in.used(t, "deep", 1) - base
	assert.GreaterOrEqual(t, per, int64(10), "a call weighs 10")
	assert.Equal(t, base+500*per, in.used(t, "deep", 500))
}

func TestBulkMemoryIsChargedByLength(t *testing.T) {
	in := instantiate(t, testModule(t, "count"), Options{InitFuel: 1000, MaxDepth: 100, BulkShift: 4})
	base := in.used(t, "fill", 0)
	assert.Equal(t, base+65536>>4, in.used(t, "fill", 65536))
	assert.Equal(t, base+1000>>4, in.used(t, "fill", 1000))
}

func TestOutOfFuelTraps(t *testing.T) {
	in := instantiate(t, testModule(t, "count"), Options{InitFuel: 1000, MaxDepth: 100, BulkShift: 4})
	need := in.used(t, "count", 100)
	in.fuel.Set(uint64(need))
	_, err := in.mod.ExportedFunction("count").Call(context.Background(), 100)
	require.NoError(t, err, "exactly enough")
	in.fuel.Set(uint64(need - 1))
	_, err = in.mod.ExportedFunction("count").Call(context.Background(), 100)
	assert.ErrorContains(t, err, "unreachable")
	assert.Negative(t, int64(in.fuel.Get()))
}

func TestCallDepthIsBounded(t *testing.T) {
	in := instantiate(t, testModule(t, "count"), Options{InitFuel: 1000, MaxDepth: 50, BulkShift: 4})
	in.fuel.Set(1 << 40)
	ctx := context.Background()
	deep := in.mod.ExportedFunction("deep")
	// The export is a wrapper too: depth n nests n+1 calls.
	res, err := deep.Call(ctx, 49)
	require.NoError(t, err)
	assert.Equal(t, uint64(49), res[0])
	assert.Zero(t, int32(in.depth.Get()), "the wrappers unwind the count")
	_, err = deep.Call(ctx, 50)
	assert.ErrorContains(t, err, "unreachable")
	assert.Equal(t, int32(51), int32(in.depth.Get()))
}

func TestStartFunctionRunsOnInitFuel(t *testing.T) {
	m, err := Parse(testModule(t, "startspin"))
	require.NoError(t, err)
	out, err := Instrument(m, Options{InitFuel: 10000, MaxDepth: 100})
	require.NoError(t, err)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features))
	defer rt.Close(ctx)
	_, err = rt.Instantiate(ctx, out)
	assert.ErrorContains(t, err, "unreachable")
}

func TestReservedExportNames(t *testing.T) {
	m, err := Parse(testModule(t, "trivial"))
	require.NoError(t, err)
	m.Exports = append(m.Exports, Export{Name: FuelExport, Kind: kindGlobal})
	_, err = Instrument(m, Options{})
	assert.ErrorContains(t, err, "reserved")
}

// Every module wazero accepts is still accepted after instrumentation, and
// Parse and Instrument never panic.
func FuzzInstrument(f *testing.F) {
	dir := filepath.Join("..", "..", "testdata")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".wasm" {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			f.Add(b)
		}
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(features))
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		out, err := Instrument(m, Options{InitFuel: 1000, MaxDepth: 100, BulkShift: 4})
		if err != nil {
			return
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("the instrumented module does not parse: %v", err)
		}
		orig, err := rt.CompileModule(ctx, b)
		if err != nil {
			return
		}
		orig.Close(ctx)
		inst, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its instrumented form: %v", err)
		}
		inst.Close(ctx)
	})
}
