// Command sensorjson is a mqttguard policy plugin that validates sensor
// readings: a publish to a sensor topic must carry a JSON object, and the
// readings it knows must be numbers within physical ranges. Anything else
// is refused with 0x99 (payload format invalid) and logged, so a broken
// or spoofed device cannot feed the fleet's dashboards impossible values.
//
// Configuration (wasmguard.WithConfig), JSON; every key is optional:
//
//	{
//	  "topics": ["sensors/#"],
//	  "ranges": {"temperature": [-40, 85], "humidity": [0, 100]},
//	  "max_bytes": 4096
//	}
//
// "topics" are the topic filters whose payloads are checked (default
// sensors/#); "ranges" replace or add to the defaults — temperature
// −40…85 °C (an industrial sensor's range), humidity 0…100 %, pressure
// 300…1100 hPa, co2 0…40000 ppm, battery 0…100 %; "max_bytes" caps the
// payload (default 4096).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o sensorjson.wasm .
package main

import (
	"log/slog"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard/guest"
)

var v *validator

func init() {
	var err error
	if v, err = parseConfig(guest.Config()); err != nil {
		panic("sensorjson: " + err.Error())
	}
}

//lint:ignore U1000 the host calls it: //go:wasmexport exports it in the wasip1 build only, and staticcheck checks the native one
//go:wasmexport on_publish
func onPublish(n int32) int32 {
	return guest.HandlePublish(n, func(p *guest.Publish) guest.Verdict {
		if why := v.check(p.Topic, p.Payload); why != "" {
			guest.Log(slog.LevelWarn, "refused "+p.Topic+" from "+p.ClientID+": "+why)
			return guest.Deny(reason.PayloadFormatInvalid)
		}
		return guest.Allow()
	})
}

func main() {}
