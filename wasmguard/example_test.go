package wasmguard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mqttguard/mqttguard/wasmguard"
)

// Load a plugin and ask it about a PUBLISH. The test plugin echo answers
// with the payload's last four bytes: 0x9701 is "deny, quota exceeded".
func ExampleLoad() {
	ctx := context.Background()
	wasm, err := os.ReadFile("testdata/echo.wasm")
	if err != nil {
		panic(err)
	}
	p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 2}, wasmguard.WithName("echo"))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)

	v, err := p.OnPublish(ctx, &wasmguard.PublishEvent{
		ClientID: "sensor-1", Topic: "sensors/1/t", Payload: []byte{0x01, 0x97, 0, 0},
	})
	fmt.Println(v.Action, fmt.Sprintf("0x%02X", v.Reason), err)
	// Output: deny 0x97 <nil>
}

// A plugin that runs forever is stopped by its fuel, and its failure
// policy decides: FailClosed denies with 0x80.
func ExamplePlugin_OnPublish_failure() {
	ctx := context.Background()
	wasm, _ := os.ReadFile("testdata/spin.wasm")
	p, err := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1}, wasmguard.WithName("spin"))
	if err != nil {
		panic(err)
	}
	defer p.Close(ctx)

	v, err := p.OnPublish(ctx, &wasmguard.PublishEvent{Topic: "t"})
	fmt.Println(v.Action, fmt.Sprintf("0x%02X", v.Reason), v.Failed)
	fmt.Println(errors.Is(err, wasmguard.ErrFuel))
	fmt.Println(err)
	// Output:
	// deny 0x80 true
	// true
	// wasmguard: plugin spin on_publish: the plugin ran out of fuel: wasm error: unreachable
}

// Refusals at load name the limit and the values.
func ExampleLoad_refused() {
	wasm, _ := os.ReadFile("testdata/bigtable.wasm")
	_, err := wasmguard.Load(context.Background(), wasm, wasmguard.Limits{})
	fmt.Println(err)
	// Output: wasmguard: MaxTableElements: table 0 declares 10000000 elements, the limit is 10000
}

// A plugin that keeps failing is quarantined; an operator can disable a
// plugin at run time and enable it again (which also lifts a quarantine).
func ExamplePlugin_Disable() {
	ctx := context.Background()
	wasm, _ := os.ReadFile("testdata/trap.wasm")
	p, _ := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1},
		wasmguard.WithBreaker(2, time.Minute), wasmguard.WithName("trap"))
	defer p.Close(ctx)

	for range 3 {
		_, err := p.OnPublish(ctx, &wasmguard.PublishEvent{Topic: "t"})
		fmt.Println(err)
	}
	p.Disable()
	v, err := p.OnPublish(ctx, &wasmguard.PublishEvent{Topic: "t"})
	fmt.Println(v.Action, err)
	st := p.Stats()
	fmt.Println(st.Calls, st.Traps, st.Quarantined, st.Skipped)
	// Output:
	// wasmguard: plugin trap on_publish: the plugin trapped: wasm error: unreachable
	// wasmguard: plugin trap on_publish: the plugin trapped: wasm error: unreachable
	// wasmguard: plugin trap on_publish: the plugin is quarantined after repeated failures
	// allow <nil>
	// 2 2 1 1
}

// A fail-open plugin whose calls each run to their limit (here: it asks
// the host to log 64 KiB in a loop until its fuel runs out) is
// quarantined once its failures have taken the breaker's budget — the
// Timeout by default, 1 ns here to make the example exact — rather than
// after five of them: the clients behind it pay about one Timeout.
func ExampleWithBreakerBudget() {
	ctx := context.Background()
	wasm, _ := os.ReadFile("testdata/logflood.wasm")
	p, _ := wasmguard.Load(ctx, wasm, wasmguard.Limits{MaxInstances: 1},
		wasmguard.WithFailurePolicy(wasmguard.FailOpen), wasmguard.WithBreakerBudget(time.Nanosecond), wasmguard.WithName("logflood"))
	defer p.Close(ctx)

	for range 2 {
		v, err := p.OnPublish(ctx, &wasmguard.PublishEvent{Topic: "t"})
		fmt.Println(v.Action, err)
	}
	st := p.Stats()
	fmt.Println(st.Calls, st.FuelExhausted, st.Quarantined, st.LogBytes <= 4096)
	// Output:
	// allow wasmguard: plugin logflood on_publish: the plugin ran out of fuel: wasm error: unreachable
	// allow wasmguard: plugin logflood on_publish: the plugin is quarantined after repeated failures
	// 1 1 1 true
}
