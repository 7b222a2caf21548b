package guardstack

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/mqttguard/mqttguard/guardconf"
)

// Open returns the configuration a command runs with: the file at
// configPath or, when that is "", ConfigFile in dataDir — which Setup
// makes ready (from defaultConfig) on the first run, with everything it
// refers to. ext is the program's own tables (nil for none; see
// guardconf.Extension).
func Open(dataDir, configPath string, defaultConfig []byte, ext guardconf.Extension) (*guardconf.Config, FirstRun, error) {
	var first FirstRun
	if configPath == "" {
		var err error
		if first, err = Setup(dataDir, defaultConfig); err != nil {
			return nil, first, err
		}
		configPath = filepath.Join(dataDir, ConfigFile)
	}
	cfg, err := guardconf.LoadConfig(configPath, ext)
	return cfg, first, err
}

// NewLogger is a text logger to w at level (debug, info, warn or error),
// as a -log-level flag gives it.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}
