package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// By default the broker's log goes to a file the demo names, and nothing
// to the terminal between its frames.
func TestTheBrokersLogGoesToAFile(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"-for", "2s", "-every", "1s", "-rogue=false"}, &stdout, &stderr))
	assert.Empty(t, stderr.String(), "the frames have the terminal to themselves")

	_, after, ok := strings.Cut(stdout.String(), "the broker's log, the Guard's refusals among it: ")
	require.True(t, ok, stdout.String())
	path := strings.TrimSpace(strings.SplitN(after, "\n", 2)[0])
	assert.True(t, strings.HasPrefix(path, os.Getenv("TMPDIR")), path)
	assert.Contains(t, stdout.String(), "  the broker's log: "+path, "named again at the end")
	log, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(log), `msg="mochi mqtt server started"`)
}

func TestLogToStderr(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stderr bytes.Buffer
	log, where, closeLog, err := openLog("-", "warn", &stderr)
	require.NoError(t, err)
	defer closeLog()
	assert.Empty(t, where)
	log.Warn("mqttguard: reject")
	log.Info("quiet")
	assert.Contains(t, stderr.String(), "mqttguard: reject")
	assert.NotContains(t, stderr.String(), "quiet")

	_, _, _, err = openLog("", "loud", &stderr)
	assert.ErrorContains(t, err, "-log-level")
	left, _ := os.ReadDir(os.Getenv("TMPDIR"))
	assert.Empty(t, left, "no log file is made for a run that does not start")
}
