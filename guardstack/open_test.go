package guardstack

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	cfg, first, err := Open(dir, "", guardconf.DefaultConfig, nil)
	require.NoError(t, err)
	assert.True(t, first.Created, "the first run sets the data directory up")
	assert.Equal(t, filepath.Join(dir, ConfigFile), cfg.Source)

	_, again, err := Open(dir, "", guardconf.DefaultConfig, nil)
	require.NoError(t, err)
	assert.False(t, again.Created, "a second run changes nothing")

	own := filepath.Join(t.TempDir(), "own.toml")
	require.NoError(t, os.WriteFile(own, []byte("[mqtt]\nport = \"x\"\n"), 0o600))
	_, first, err = Open(filepath.Join(t.TempDir(), "unused"), own, guardconf.DefaultConfig, nil)
	require.ErrorContains(t, err, "own.toml:2")
	assert.False(t, first.Created, "-config given: no data directory is made")
}

func TestNewLogger(t *testing.T) {
	_, err := NewLogger(io.Discard, "warn")
	require.NoError(t, err)
	_, err = NewLogger(io.Discard, "loud")
	require.ErrorContains(t, err, "-log-level")
}
