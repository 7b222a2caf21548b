package guardconf_test

import (
	"fmt"
	"strings"

	"github.com/mqttguard/mqttguard/guardconf"
)

// A mistake in the file names the file, the line and the key, and says
// what to do.
func ExampleParseConfig() {
	text := strings.Replace(string(guardconf.DefaultConfig), `mode = "full"`, `mode = "paranoid"`, 1)
	_, err := guardconf.ParseConfig([]byte(text), "mqttguard.toml", "/etc/mqttguard", nil)
	fmt.Println(strings.Contains(err.Error(), `mqttguard.toml:`), strings.Contains(err.Error(), `security.mode: "paranoid"`))
	// Output: true true
}
