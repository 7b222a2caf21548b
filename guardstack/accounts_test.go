package guardstack

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A first run that never got to show its accounts (a port in use) leaves
// them for the next run, which shows the same passwords; after Shown they
// are gone from the disk.
func TestNewAccountsAreKeptUntilShown(t *testing.T) {
	dir := t.TempDir()
	first, err := Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	require.Len(t, first.Accounts, 3)
	info, err := os.Stat(filepath.Join(dir, NewAccountsFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "passwords in clear: the owner's eyes only")

	// The program failed before it showed them; the next run:
	again, err := Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	assert.False(t, again.Created)
	assert.Equal(t, first.Accounts, again.Accounts, "the same accounts, the same passwords")
	pw, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	for _, a := range again.Accounts {
		assert.True(t, pw.Verify(a.User, a.Password), a.User)
	}

	require.NoError(t, again.Shown())
	assert.NoFileExists(t, filepath.Join(dir, NewAccountsFile))
	third, err := Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	assert.Empty(t, third.Accounts, "shown once, then forgotten")
	require.NoError(t, third.Shown(), "nothing to forget is not an error")
}

func TestResetPassword(t *testing.T) {
	dir := t.TempDir()
	cfg, first, err := Open(dir, "", guardconf.DefaultConfig, nil)
	require.NoError(t, err)
	old := first.Accounts[1]
	require.Equal(t, "sensor1", old.User)

	var out bytes.Buffer
	require.NoError(t, PrintResetPassword(&out, cfg, "sensor1", "broker"))
	assert.Contains(t, out.String(), "New password for sensor1: ")
	pwd := out.String()[len("New password for sensor1: "):]
	pwd = pwd[:bytes.IndexByte([]byte(pwd), '\n')]

	f, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	assert.True(t, f.Verify("sensor1", pwd), "the printed password is the one in force")
	assert.False(t, f.Verify("sensor1", old.Password))
	assert.True(t, f.Verify("admin", first.Accounts[0].Password), "the other users are untouched")

	// The accounts not shown yet show the new password, not the dead one.
	next, err := Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	require.Len(t, next.Accounts, 3)
	for _, a := range next.Accounts {
		if a.User == "sensor1" {
			assert.Equal(t, pwd, a.Password)
			assert.Equal(t, old.Can, a.Can)
		}
	}

	_, err = ResetPassword(cfg, "mallory")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no user "mallory"; the users are admin, dashboard, sensor1`)
}

func TestPrintAccounts(t *testing.T) {
	dir := t.TempDir()
	cfg, first, err := Open(dir, "", guardconf.DefaultConfig, nil)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, PrintAccounts(&out, cfg, "go run ./examples/broker"))
	for _, a := range first.Accounts {
		assert.Contains(t, out.String(), a.Password, "not shown by a start yet: printed")
	}

	require.NoError(t, first.Shown())
	out.Reset()
	require.NoError(t, PrintAccounts(&out, cfg, "go run ./examples/broker"))
	assert.Contains(t, out.String(), "sensor1    (only its hash is kept)")
	assert.Contains(t, out.String(), "go run ./examples/broker -reset-password USER")
	for _, a := range first.Accounts {
		assert.NotContains(t, out.String(), a.Password)
	}
}
