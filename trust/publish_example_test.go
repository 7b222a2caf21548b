package trust_test

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// What a broker does with a PUBLISH from a client in each state, and the
// MQTT v5 reason code it sends.
func ExampleVerdict_Publish() {
	tr, _ := trust.New(trust.Preset(trust.EnforceFull))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rogue := trust.Identity{ClientID: "rogue-7"}
	for i := range 4 {
		action, code := tr.Verdict(rogue, now).Publish()
		fmt.Printf("%s: %s %#02x\n", tr.State(rogue, now), action, code)
		for range []int{6, 4, 5, 0}[i] { // ACL denials a second apart, a point each
			now = now.Add(time.Second)
			tr.Violation(rogue, trust.ACLDenied, now)
		}
	}
	// Output:
	// normal: allow 0x00
	// write-disabled: reject 0x87
	// shadow-banned: ack-and-drop 0x00
	// disconnected: disconnect 0x98
}
