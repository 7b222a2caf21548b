// Command denylist is a mqttguard policy plugin: it refuses publishes to,
// and subscriptions that could receive, the topics its configuration
// lists.
//
// Configuration (wasmguard.WithConfig), JSON:
//
//	{"deny": ["admin/#", "$SYS/#", "+/firmware/+"], "reason": 135}
//
// "deny" are MQTT topic filters; "reason" is the MQTT v5 reason code sent
// with a refusal (default 0x87, not authorized). A subscription is refused
// when its filter can match any denied topic (so "#" is refused while the
// list is not empty). A configuration that does not parse stops the
// plugin from loading, with the reason in the load error.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o denylist.wasm .
package main

import "github.com/mqttguard/mqttguard/wasmguard/guest"

var list *denyList

func init() {
	var err error
	if list, err = parseConfig(guest.Config()); err != nil {
		panic("denylist: " + err.Error())
	}
}

//lint:ignore U1000 the host calls it: //go:wasmexport exports it in the wasip1 build only, and staticcheck checks the native one
//go:wasmexport on_publish
func onPublish(n int32) int32 {
	return guest.HandlePublish(n, func(p *guest.Publish) guest.Verdict { return list.publish(p.Topic) })
}

//lint:ignore U1000 the host calls it: //go:wasmexport exports it in the wasip1 build only, and staticcheck checks the native one
//go:wasmexport on_subscribe
func onSubscribe(n int32) int32 {
	return guest.HandleSubscribe(n, func(s *guest.Subscribe) guest.Verdict { return list.subscribe(s.Filter) })
}

func main() {}
