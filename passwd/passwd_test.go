package passwd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Lines written by mosquitto_passwd 2.0.11: alice/secret ($7$, 101
// iterations) and bob/hunter2 (-H sha512, the legacy $6$).
const mosquittoFile = `alice:$7$101$0GphZkr2qALPjJea$l4hdqI02k6hLqBjH8cq0Hjua/g+j5mwxTc2l/YjVbuSvdc4OCAM6MXCJ+TyKd0LA/PoL6A5TrSev/479dP/lfA==
bob:$6$nRrUqxGfYdABZ+16$yijWKTyORi1DNM/WCewgj6+sVFISG8usIP1LFiCim9zwbpPSIbnUSrmPwO/KtYd/Eo/LLaHAHQ7BIK/KgKniTQ==
`

func TestVerifyMosquittoLines(t *testing.T) {
	f, err := ParseMosquitto(strings.NewReader(mosquittoFile))
	require.NoError(t, err)
	assert.True(t, f.Verify("alice", "secret"))
	assert.False(t, f.Verify("alice", "Secret"))
	assert.False(t, f.Verify("alice", ""))
	assert.True(t, f.Verify("bob", "hunter2"))
	assert.False(t, f.Verify("bob", "hunter"))
	assert.False(t, f.Verify("carol", "secret"))
	assert.Equal(t, []string{"alice", "bob"}, f.Users())
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ file, want string }{
		{"", "no users"},
		{"# only a comment\n\n", "no users"},
		{"alice\n", "password file:1: want \"username:hash\""},
		{"alice:\n", "password file:1: user \"alice\": no password hash: mosquitto would accept any password"},
		{"alice:secret\n", "not a mosquitto password hash"},
		{"alice:$7$abc$AAAA$AAAA\n", "iterations \"abc\""},
		{"alice:$7$0$AAAA$AAAA\n", "iterations \"0\""},
		{"alice:$7$101$!!!$AAAA\n", "salt \"!!!\" is not base64"},
		{"alice:$7$101$AAAA$AAAA\n", "hash is not 64 bytes"},
		{"alice:$7$101$AAAA\n", "$7$<iterations>$<salt>$<hash>"},
		{"alice:$6$AAAA\n", "$6$<salt>$<hash>"},
		{"alice:$argon2id$v=19$m=47104,t=1,p=1$x$y\n", "argon2id hashes"},
		{":$7$101$AAAA$AAAA\n", "empty username"},
		{mosquittoFile + "alice:" + strings.SplitN(mosquittoFile, ":", 2)[1], "password file:3: user \"alice\" appears twice"},
	}
	for _, c := range cases {
		_, err := ParseMosquitto(strings.NewReader(c.file))
		require.Error(t, err, "%q", c.file)
		assert.Contains(t, err.Error(), c.want, "%q", c.file)
		var pe *ParseError
		assert.True(t, errors.As(err, &pe))
	}
}

func TestAddWriteParseRoundTrip(t *testing.T) {
	f := New()
	f.Iterations = 1000 // keep the test fast; the default is 210,000
	require.NoError(t, f.Add("sensor-1", "pa:ss word"))
	require.NoError(t, f.Add("dashboard", "ünïcödé"))
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	assert.Regexp(t, `^dashboard:\$7\$1000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\nsensor-1:`, buf.String())
	g, err := ParseMosquitto(&buf)
	require.NoError(t, err)
	assert.True(t, g.Verify("sensor-1", "pa:ss word"))
	assert.True(t, g.Verify("dashboard", "ünïcödé"))
	assert.True(t, g.Delete("sensor-1"))
	assert.False(t, g.Delete("sensor-1"))
	assert.False(t, g.Verify("sensor-1", "pa:ss word"))
	for _, bad := range []string{"", "a:b", "tab\tname"} {
		assert.Error(t, f.Add(bad, "x"), "%q", bad)
	}
}

func TestHashDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes at 210,000 iterations")
	}
	h, err := Hash("correct horse")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$7$210000$"))
	f, err := ParseMosquitto(strings.NewReader("u:" + h + "\n"))
	require.NoError(t, err)
	assert.True(t, f.Verify("u", "correct horse"))
	h2, _ := Hash("correct horse")
	assert.NotEqual(t, h, h2, "every hash has its own salt")
	_, err = HashIterations("x", 0)
	assert.Error(t, err)
}

// An unknown user costs one hash computation of the file's usual cost,
// like a wrong password for a known user.
func TestUnknownUserCostsAHash(t *testing.T) {
	f := New()
	f.Iterations = 5000
	require.NoError(t, f.Add("alice", "secret"))
	before := digests.Load()
	f.Verify("alice", "wrong")
	known := digests.Load() - before
	before = digests.Load()
	f.Verify("mallory", "wrong")
	unknown := digests.Load() - before
	assert.Equal(t, uint64(1), known)
	assert.Equal(t, known, unknown)
	assert.Equal(t, 5000, f.dummy.Load().iterations, "the dummy has the cost of the file's entries")
}

func TestConvertPlaintext(t *testing.T) {
	f, err := ConvertPlaintext(strings.NewReader("# devices\nt1:alpha\nt2:beta\n"), 1000)
	require.NoError(t, err)
	assert.True(t, f.Verify("t1", "alpha"))
	assert.True(t, f.Verify("t2", "beta"))
	for in, want := range map[string]string{
		"t1:a:b\n":    "contains ':'",
		"t1\n":        "want \"username:password\"",
		"t1:a\nt1:b":  "appears twice",
		"t1:$7$1$a$b": "already has a hash",
	} {
		_, err := ConvertPlaintext(strings.NewReader(in), 1000)
		assert.ErrorContains(t, err, want, in)
	}
}

func TestHolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(path, []byte(mosquittoFile), 0o600))
	f, err := LoadFile(path)
	require.NoError(t, err)
	h := NewHolder(f)
	assert.True(t, h.Verify("alice", "secret"))
	require.NoError(t, os.WriteFile(path, []byte("alice:broken\n"), 0o600))
	err = h.Reload(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+":1:")
	assert.True(t, h.Verify("alice", "secret"), "a failed reload keeps the old file")
	var zero Holder
	assert.False(t, zero.Verify("alice", "secret"))

	g := New()
	g.Iterations = 1000
	require.NoError(t, g.Add("carol", "pw"))
	out := filepath.Join(dir, "written")
	require.NoError(t, g.WriteFile(out))
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.NoError(t, h.Reload(out))
	assert.True(t, h.Verify("carol", "pw"))
	assert.False(t, h.Verify("alice", "secret"))
}

// Files made by the real mosquitto_passwd verify here, and files written
// here are accepted by mosquitto_passwd and by the mosquitto broker.
func TestRoundTripWithRealMosquitto(t *testing.T) {
	tool := testenv.Program(t, "mosquitto_passwd", "mosquitto")
	broker := testenv.Program(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(tool, args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd %v: %s", args, out)
	}

	// mosquitto_passwd → us, every hash it can make.
	theirs := filepath.Join(dir, "theirs")
	run("-c", "-b", theirs, "pbkdf2-user", "pw-one")
	run("-H", "sha512", "-b", theirs, "sha512-user", "pw-two")
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("converted:pw-three\n"), 0o600))
	run("-U", plain)
	for path, users := range map[string]map[string]string{
		theirs: {"pbkdf2-user": "pw-one", "sha512-user": "pw-two"},
		plain:  {"converted": "pw-three"},
	} {
		f, err := LoadFile(path)
		require.NoError(t, err)
		for u, pw := range users {
			assert.True(t, f.Verify(u, pw), "%s in %s", u, path)
			assert.False(t, f.Verify(u, pw+"x"), "%s in %s", u, path)
		}
	}

	// us → mosquitto_passwd: it edits our file and we read its edit.
	ours := New()
	ours.Iterations = 1000
	require.NoError(t, ours.Add("ours", "pw-four"))
	oursPath := filepath.Join(dir, "ours")
	require.NoError(t, ours.WriteFile(oursPath))
	run("-b", oursPath, "added-by-them", "pw-five")
	back, err := LoadFile(oursPath)
	require.NoError(t, err)
	assert.True(t, back.Verify("ours", "pw-four"))
	assert.True(t, back.Verify("added-by-them", "pw-five"))

	// us → the broker: mosquitto authenticates against our file.
	addr := mqtttest.StartMosquitto(t, broker, dir, "allow_anonymous false", "password_file "+oursPath)
	c, code := mqtttest.Connect(t, addr, "c1", "ours", "pw-four")
	assert.Equal(t, byte(0), code, "mosquitto must accept our hash")
	c.Close()
	c, code = mqtttest.Connect(t, addr, "c2", "ours", "wrong")
	assert.Equal(t, byte(5), code, "mosquitto must refuse a wrong password (not authorized)")
	c.Close()
}

func FuzzParseMosquitto(f *testing.F) {
	f.Add(mosquittoFile)
	f.Add("a:$7$1$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n")
	f.Add("# c\n\nx:$6$$\n")
	f.Fuzz(func(t *testing.T, in string) {
		file, err := ParseMosquitto(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("not a *ParseError: %v", err)
			}
			return
		}
		// Whatever parses writes back to an equivalent file.
		var buf bytes.Buffer
		if err := file.Write(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ParseMosquitto(&buf)
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%s", err, buf.String())
		}
		if strings.Join(again.Users(), "\n") != strings.Join(file.Users(), "\n") {
			t.Fatal("users changed in the round trip")
		}
		for _, u := range file.Users() {
			if file.users[u].encode() != again.users[u].encode() {
				t.Fatalf("hash of %q changed in the round trip", u)
			}
		}
	})
}
