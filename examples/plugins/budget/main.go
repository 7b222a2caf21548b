// Command budget is a mqttguard policy plugin that gives every device a
// publish budget: at most "publishes" messages per "window" per client
// ID; the rest are refused with 0x97 (quota exceeded). A device that
// reports every second instead of every five minutes is cut down to its
// budget without touching its neighbours.
//
// Configuration (wasmguard.WithConfig), JSON; every key is optional:
//
//	{"publishes": 12, "window": "1h", "max_devices": 100000}
//
// Defaults: 60 publishes a minute, 100,000 devices tracked. A window
// starts at a device's first publish after the last window ended; time is
// the host's (the event's Time). When max_devices are tracked, finished
// windows are dropped; if the table is still full, new devices are let
// through untracked (and logged) rather than refused.
//
// The counts live in the plugin instance. Load it with one instance
// (wasmguard.Limits{MaxInstances: 1}) and a large RecycleAfter for exact
// budgets; with N instances each device gets up to N budgets, and a
// replaced instance starts counting afresh.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o budget.wasm .
package main

import (
	"log/slog"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard/guest"
)

var b *budgets

func init() {
	var err error
	if b, err = parseConfig(guest.Config()); err != nil {
		panic("budget: " + err.Error())
	}
}

//lint:ignore U1000 the host calls it: //go:wasmexport exports it in the wasip1 build only, and staticcheck checks the native one
//go:wasmexport on_publish
func onPublish(n int32) int32 {
	return guest.HandlePublish(n, func(p *guest.Publish) guest.Verdict {
		allowed, tracked := b.spend(p.ClientID, p.Time)
		if !tracked {
			guest.Log(slog.LevelWarn, "device table full: "+p.ClientID+" not tracked")
		}
		if !allowed {
			return guest.Deny(reason.QuotaExceeded)
		}
		return guest.Allow()
	})
}

func main() {}
