//go:build wasip1

package guest

import (
	"log/slog"
	"unsafe"
)

//go:wasmimport mqttguard log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport mqttguard config
func hostConfig(ptr unsafe.Pointer, capacity int32) int32

// Log writes msg to the host's log at level (cut to 512 bytes; the host
// drops lines beyond its rate limit).
func Log(level slog.Level, msg string) {
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

// Config returns the configuration the host loaded the plugin with
// (wasmguard.WithConfig), or nil.
func Config() []byte {
	n := hostConfig(nil, 0)
	if n <= 0 {
		return nil
	}
	b := make([]byte, n)
	hostConfig(unsafe.Pointer(&b[0]), n)
	return b
}
