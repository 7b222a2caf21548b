// Package wasmbuild builds Go plugins for tests and benchmarks: the
// standard toolchain, GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared (a
// WASI reactor, as the plugin ABI needs).
package wasmbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Build compiles the Go main package in dir and returns the module. The
// go command's build cache makes a rebuild of unchanged code take about
// 0.4 s; results are also kept for the life of the test process.
func Build(tb testing.TB, dir string) []byte {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[abs]; ok {
		return b
	}
	out := filepath.Join(tb.TempDir(), "plugin.wasm")
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the plugin in %s: %v\n%s", dir, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	built[abs] = b
	return b
}

// CacheDir is a directory for wazero's compilation cache that outlives
// the test process (wasmguard.WithCacheDir), so that a Go plugin compiled
// by one test run — about 1.5 s, and ten times that under the race
// detector — is not compiled again by the next. It is named after the
// wazero version, whose compiled code it holds.
// (Test binaries carry no dependency versions, and wazero's own cache
// calls itself "dev" in them, so the go command is asked.)
func CacheDir() string {
	cacheDirOnce.Do(func() {
		version := "unknown"
		out, err := exec.Command(goTool(), "list", "-m", "-f", "{{.Version}}", "github.com/tetratelabs/wazero").Output()
		if v := strings.TrimSpace(string(out)); err == nil && v != "" {
			version = v
		}
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cacheDir = filepath.Join(base, "mqttguard", "wazero-"+version)
	})
	return cacheDir
}

var (
	cacheDirOnce sync.Once
	cacheDir     string
)

// goTool is the go command on the PATH: go test puts the GOROOT/bin of
// the go command that runs the tests first on their PATH, so the plugin
// is built by the toolchain that built the test.
func goTool() string { return "go" }
