//go:build !wasip1

package guest

import (
	"context"
	"log/slog"
	"sync"
)

// Outside WebAssembly (a plugin's own unit tests), Log goes to
// slog.Default and Config returns what SetConfig stored.

var (
	configMu sync.Mutex
	config   []byte
)

// Log writes msg to the host's log at level.
func Log(level slog.Level, msg string) {
	slog.Default().Log(context.Background(), level, msg, slog.String("source", "plugin"))
}

// Config returns the configuration the host loaded the plugin with.
func Config() []byte {
	configMu.Lock()
	defer configMu.Unlock()
	return config
}

// SetConfig sets what Config returns, for a plugin's tests outside
// WebAssembly; it exists only there.
func SetConfig(b []byte) {
	configMu.Lock()
	defer configMu.Unlock()
	config = b
}
