// Command goguest is a plugin built with the standard Go toolchain for
// wasmguard's own tests and benchmarks: it decides by the topic.
package main

import (
	"log/slog"
	"strings"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard/guest"
)

var retained [][]byte

// A configuration of "refuse" is refused while the plugin starts, as a
// plugin refuses one it cannot parse.
func init() {
	if string(guest.Config()) == "refuse" {
		panic("goguest: configuration: refused")
	}
}

//go:wasmexport on_publish
func onPublish(n int32) int32 {
	return guest.HandlePublish(n, func(p *guest.Publish) guest.Verdict {
		switch {
		case p.Topic == "allow":
			return guest.Allow()
		case p.Topic == "drop":
			return guest.Drop()
		case p.Topic == "panic":
			panic("asked to")
		case p.Topic == "leak": // keeps 1 MiB per call: runs out of memory
			retained = append(retained, make([]byte, 1<<20))
			return guest.Allow()
		case p.Topic == "spin":
			for {
			}
		case p.Topic == "log":
			guest.Log(slog.LevelWarn, string(p.Payload))
			return guest.Allow()
		case p.Topic == "config":
			if string(guest.Config()) == string(p.Payload) {
				return guest.Allow()
			}
			return guest.Deny(reason.NotAuthorized)
		case strings.HasPrefix(p.Topic, "deny/"):
			return guest.Deny(reason.QuotaExceeded)
		}
		return guest.Deny(0)
	})
}

//go:wasmexport on_connect
func onConnect(n int32) int32 {
	return guest.HandleConnect(n, func(c *guest.Connect) guest.Verdict {
		if c.Username == "" || !c.HasPassword {
			return guest.Deny(reason.NotAuthorized)
		}
		return guest.Allow()
	})
}

func main() {}
