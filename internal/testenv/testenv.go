// Package testenv finds the external programs some tests drive (mosquitto,
// mosquitto_passwd, openssl, redis-server) and decides what to do when one
// is missing; StartRedis runs a private redis-server for a test.
//
// Under a plain `go test ./...` a missing program skips the test with a loud
// message that says how to install it. Under `.ci/run`, which installs those
// programs and sets MQTTGUARD_REQUIRE_TOOLS=1, a missing program fails the
// test instead: in CI a skipped check must never pass for a passing one.
//
// go test shows nothing of a passing package but its "ok" line, skip
// messages included, unless -v is given. So a package whose tests need
// a program runs them through Main, which ends with one line per missing
// program, on the terminal:
//
//	redisstore: redis-server not found: 9 tests skipped; install the Debian package redis-server …
package testenv

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
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
	skipped.add(program, pkg)
	t.Skip(msg)
	return ""
}

// skipped counts the tests skipped for each missing program.
var skipped skips

type skips struct {
	mu sync.Mutex
	by map[string]*skip
}

type skip struct {
	pkg   string // the Debian package
	tests int
}

func (s *skips) add(program, pkg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]*skip{}
	}
	if s.by[program] == nil {
		s.by[program] = &skip{pkg: pkg}
	}
	s.by[program].tests++
}

func (s *skips) count(program string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sk := s.by[program]; sk != nil {
		return sk.tests
	}
	return 0
}

// report writes one line per missing program: which tests of name (the
// package) it cost and how to install it.
func (s *skips) report(w io.Writer, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	programs := make([]string, 0, len(s.by))
	for p := range s.by {
		programs = append(programs, p)
	}
	sort.Strings(programs)
	for _, p := range programs {
		sk := s.by[p]
		tests := "tests"
		if sk.tests == 1 {
			tests = "test"
		}
		fmt.Fprintf(w, "%s: %s not found: %d %s skipped; install the Debian package %s (apt-get install %s) or run `bash .ci/run`\n",
			name, p, sk.tests, tests, sk.pkg, sk.pkg)
	}
}

// Main runs a package's tests, as a TestMain does, and says which
// programs were missing and what that cost — one line each, written
// where a plain `go test ./...` shows it: the terminal (/dev/tty), as go
// test keeps a passing package's own output to itself; with -v, or
// without a terminal, the package's output. name is the package, as the
// line begins. A cached result prints nothing again (go test -count=1
// runs the tests anew).
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "redisstore")) }
func Main(m *testing.M, name string) int {
	code := m.Run()
	var w io.Writer = os.Stdout
	if !testing.Verbose() {
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			w = tty
		}
	}
	skipped.report(w, name)
	return code
}
