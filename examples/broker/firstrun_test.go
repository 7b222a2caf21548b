package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeConfig puts the default configuration in dir with the plain
// MQTT port given, the TLS and admin ports free.
func writeConfig(t *testing.T, dir string, port int) {
	t.Helper()
	r := strings.NewReplacer("port = 1883", "port = "+strconv.Itoa(port), "tls_port = 8883", "tls_port = 0",
		`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, guardstack.ConfigFile), []byte(r.Replace(string(guardconf.DefaultConfig))), 0o600))
}

// serveUntil runs the broker until its banner is out, then stops it and
// returns what it printed.
func serveUntil(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runContext(ctx, args, &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "Try it") {
		select {
		case err := <-done:
			t.Fatalf("the broker stopped: %v\n%s", err, stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no banner: %s", stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	return stdout.String()
}

// A first run whose port is taken shows no passwords and loses none: the
// next run that starts shows them, and they work.
func TestAFailedFirstRunLosesNoPassword(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	writeConfig(t, dir, busy.Addr().(*net.TCPAddr).Port)

	var stdout, stderr bytes.Buffer
	err = runContext(context.Background(), []string{"-data", dir}, &stdout, &stderr)
	require.ErrorContains(t, err, "address already in use")
	assert.Contains(t, stderr.String(), "passwords are kept in "+filepath.Join(dir, guardstack.NewAccountsFile))
	assert.FileExists(t, filepath.Join(dir, guardstack.NewAccountsFile))

	writeConfig(t, dir, 0) // the operator frees the port, or picks another
	out := serveUntil(t, "-data", dir)
	pw, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	_, accounts, ok := strings.Cut(out, "The first run created these accounts")
	require.True(t, ok, out)
	accounts, _, _ = strings.Cut(accounts, "\n\n")
	shown := 0
	for _, l := range strings.Split(accounts, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && pw.Has(f[0]) {
			assert.True(t, pw.Verify(f[0], f[1]), "the password shown for %s works", f[0])
			shown++
		}
	}
	assert.Equal(t, 3, shown, "every account, with its password:\n%s", out)
	assert.NoFileExists(t, filepath.Join(dir, guardstack.NewAccountsFile), "shown once: forgotten")

	out = serveUntil(t, "-data", dir)
	assert.NotContains(t, out, "The first run created these accounts")
	assert.Contains(t, out, "-P '<password>'")
}

func TestResetPasswordFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out, errs bytes.Buffer
	require.NoError(t, runContext(context.Background(), []string{"-data", dir, "-reset-password", "sensor1"}, &out, &errs), errs.String())
	f := strings.Fields(strings.SplitN(out.String(), "\n", 2)[0])
	require.Len(t, f, 5, out.String()) // New password for sensor1: X
	pw, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	assert.True(t, pw.Verify("sensor1", f[4]))

	out.Reset()
	require.NoError(t, runContext(context.Background(), []string{"-data", dir, "-print-accounts"}, &out, &errs))
	assert.Contains(t, out.String(), "sensor1    "+f[4], "not shown by a start yet: -print-accounts prints it")

	err = runContext(context.Background(), []string{"-data", dir, "-reset-password", "nobody"}, &out, &errs)
	assert.ErrorContains(t, err, `no user "nobody"`)
}
