// Package testenv finds the external programs some tests drive (mosquitto,
// mosquitto_passwd, openssl, redis-server) and decides what to do when one
// is missing; StartRedis runs a private redis-server for a test.
//
// Under a plain `go test ./...` a missing program skips the test with a loud
// message that says how to install it. Under `.ci/run`, which installs those
// programs and sets MQTTGUARD_REQUIRE_TOOLS=1, a missing program fails the
// test instead: in CI a skipped check must never pass for a passing one.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireEnv is the environment variable that turns a missing tool from a
// skip into a failure.
const RequireEnv = "MQTTGUARD_REQUIRE_TOOLS"

// extraDirs are searched after $PATH: Debian installs the mosquitto broker
// in /usr/sbin, which is not on every user's PATH.
var extraDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Find returns the absolute path of program, or "" when it is not installed.
func Find(program string) string {
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, dir := range extraDirs {
		p := filepath.Join(dir, program)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Program returns the path of program or stops the test: a loud skip when
// the program is missing under a plain `go test`, a failure under `.ci/run`.
// pkg names the Debian package that provides it.
func Program(t testing.TB, program, pkg string) string {
	t.Helper()
	if p := Find(program); p != "" {
		return p
	}
	msg := "SKIPPED: " + program + " not found; this test needs it. " +
		"Install the Debian package " + pkg + " (apt-get install " + pkg + ") " +
		"or run `bash .ci/run`, which installs it."
	if os.Getenv(RequireEnv) != "" {
		t.Fatal(msg + " (" + RequireEnv + " is set, so a missing tool is a failure)")
	}
	t.Skip(msg)
	return ""
}
