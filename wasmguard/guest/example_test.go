package guest_test

import (
	"bytes"
	"fmt"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard/guest"
)

// A plugin's decision is an ordinary Go function, so it can be tested
// outside WebAssembly. The plugin's main package exports it:
//
//	//go:wasmexport on_publish
//	func onPublish(n int32) int32 { return guest.HandlePublish(n, checkPublish) }
func checkPublish(p *guest.Publish) guest.Verdict {
	if p.Retain && bytes.Contains(p.Payload, []byte("firmware")) {
		return guest.Deny(reason.NotAuthorized)
	}
	return guest.Allow()
}

func ExampleHandlePublish() {
	fmt.Println(checkPublish(&guest.Publish{Topic: "ota/latest", Retain: true, Payload: []byte("firmware v9")}))
	fmt.Println(checkPublish(&guest.Publish{Topic: "sensors/1/t", Payload: []byte("21.5")}))
	// Output:
	// deny(0x87)
	// allow
}
