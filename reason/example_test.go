package reason_test

import (
	"fmt"

	"github.com/mqttguard/mqttguard/reason"
)

// A refusal is one Code, whatever the client's protocol version: v5
// clients get it as it is, 3.1.1 clients the return code V3Connack gives.
func ExampleCode_V3Connack() {
	for _, c := range []reason.Code{reason.Banned, reason.BadAuthenticationMethod, reason.ServerBusy} {
		fmt.Printf("0x%02X %v → 3.1.1 return code %d\n", byte(c), c, c.V3Connack())
	}
	// Output:
	// 0x8A banned → 3.1.1 return code 5
	// 0x8C bad authentication method → 3.1.1 return code 4
	// 0x89 server busy → 3.1.1 return code 3
}
