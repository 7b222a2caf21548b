package mochiguard_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/passwd"
)

// The README's mochi broker, built as a module of its own (a go.mod with
// a replace directive to this checkout), run, and attacked over sockets
// as a user's broker would be. What the README shows is what is tested.
func TestTheREADMEBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module: not with -short")
	}
	prog := readmeProgram(t)
	assert.LessOrEqual(t, ownLines(prog), 30, "the smallest complete program stays small")
	bin := buildModule(t, prog)
	dir := accountFiles(t)

	addr, _ := startBroker(t, bin, dir)

	t.Run("wrong password", func(t *testing.T) {
		c := mqtttest.DialRaw(t, addr)
		code := mqtttest.Connect5(t, c, "dev-1", "sensor1", "wrong", nil)
		assert.Equal(t, byte(0x86), code, "MQTT 5: bad user name or password")
		c3 := mqtttest.DialRaw(t, addr)
		assert.Equal(t, []byte{0x20, 2, 0, 4}, mqtttest.Connect311(t, c3, "dev-2", "sensor1", "wrong"), "MQTT 3.1.1: return code 4")
	})

	sub := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, sub, "watcher", "bob", "bob-pw", nil))
	mqtttest.Subscribe5(t, sub, "sensors/#")

	t.Run("forbidden publish, QoS 1", func(t *testing.T) {
		c := mqtttest.DialRaw(t, addr)
		require.Equal(t, byte(0), mqtttest.Connect5(t, c, "s1", "sensor1", "sensor1-pw", nil))
		assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, "sensors/sensor2/temp", 1, 1), "PUBACK 0x87: not sensor1's topic")
	})

	t.Run("over the rate", func(t *testing.T) {
		c := mqtttest.DialRaw(t, addr)
		require.Equal(t, byte(0), mqtttest.Connect5(t, c, "s1-rate", "sensor1", "sensor1-pw", nil))
		for i := range 20 {
			mqtttest.Publish5(t, c, "sensors/sensor1/q0", 0, uint16(i+1)) // the burst is 3
		}
		var codes []byte
		for i := range 6 {
			codes = append(codes, mqtttest.Publish5(t, c, "sensors/sensor1/q1", 1, uint16(100+i)))
		}
		assert.Contains(t, codes, byte(0x97), "QoS 1 over the rate: PUBACK 0x97 (MQTT 5 allows no 0x96 in a PUBACK), never a hang")
		got := mqtttest.Received(t, sub, 2*time.Second)
		assert.LessOrEqual(t, mqtttest.Count(got, "sensors/sensor1/q0"), 4, "QoS 0 over the rate is not delivered: %v", got)
	})

	t.Run("forbidden will", func(t *testing.T) {
		c := mqtttest.DialRaw(t, addr)
		code := mqtttest.Connect5(t, c, "s1-will", "sensor1", "sensor1-pw", &mqtttest.Will{Topic: "sensors/sensor2/alarm", Payload: "fake"})
		assert.Equal(t, byte(0x87), code, "a will the ACL forbids refuses the CONNECT")
		c.Close()
		assert.Zero(t, mqtttest.Count(mqtttest.Received(t, sub, time.Second), "sensors/sensor2/alarm"), "and it is never delivered")
	})
}

// The same program with mochi's AllowHook beside the Guard's refuses to
// start, saying why; without its Check call, it refuses every client.
func TestTheREADMEBrokerWithAllowHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module: not with -short")
	}
	prog := readmeProgram(t)
	prog = strings.Replace(prog, "\t\"github.com/mqttguard/mqttguard\"\n", "\t\"github.com/mochi-mqtt/server/v2/hooks/auth\"\n\t\"github.com/mqttguard/mqttguard\"\n", 1)
	prog = strings.Replace(prog, "\tmust(srv.AddHook(hook, nil))\n", "\tmust(srv.AddHook(hook, nil))\n\tmust(srv.AddHook(new(auth.AllowHook), nil))\n", 1)
	require.Contains(t, prog, "auth.AllowHook")
	dir := accountFiles(t)

	bin := buildModule(t, prog)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-dir", dir)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the program must not start")
	assert.Contains(t, string(out), "allow-all-auth", "the error names the other hook: %s", out)
	assert.Contains(t, string(out), "OR-combines")

	unchecked := strings.Replace(prog, "\tmust(hook.Check()) // no other hook may answer for authentication or ACLs\n", "", 1)
	require.NotEqual(t, prog, unchecked)
	addr, logs := startBroker(t, buildModule(t, unchecked), dir)
	c := mqtttest.DialRaw(t, addr)
	assert.Equal(t, byte(0x88), mqtttest.Connect5(t, c, "s1", "sensor1", "sensor1-pw", nil), "fail closed: server unavailable")
	c3 := mqtttest.DialRaw(t, addr)
	assert.Equal(t, []byte{0x20, 2, 0, 3}, mqtttest.Connect311(t, c3, "s1", "sensor1", "wrong"), "3.1.1: server unavailable")
	assert.Eventually(t, func() bool { return strings.Contains(logs.String(), "mqttguard refuses every client") },
		5*time.Second, 50*time.Millisecond, "and says why in the log")
}

// readmeProgram is the Go block of the README's "Add it to your
// mochi-mqtt broker" section.
func readmeProgram(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)## Add it to your mochi-mqtt broker.*?```go\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, m, "the README has the section and its program")
	return string(m[1])
}

// ownLines counts the program's lines of code after its imports.
func ownLines(prog string) int {
	_, body, _ := strings.Cut(prog, "\n)\n")
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

// buildModule builds prog as the main package of a module that requires
// this checkout, and returns the binary.
func buildModule(t *testing.T, prog string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	dir := t.TempDir()
	mod := fmt.Sprintf("module example.com/mybroker\n\ngo 1.24\n\nrequire github.com/mqttguard/mqttguard v0.0.0\n\nreplace github.com/mqttguard/mqttguard => %s\n", root)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o600))
	goCmd := func(env []string, args ...string) ([]byte, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	// The modules are in the cache already (this module needs them):
	// offline first, the module proxy if the cache lacks something.
	if out, err := goCmd([]string{"GOPROXY=off", "GOFLAGS=-mod=mod"}, "mod", "tidy"); err != nil {
		out2, err2 := goCmd(nil, "mod", "tidy")
		require.NoError(t, err2, "go mod tidy: %s\n%s", out, out2)
	}
	bin := filepath.Join(dir, "mybroker")
	out, err := goCmd(nil, "build", "-o", bin, ".")
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// accountFiles writes the passwd (cheap hashes) and acl files the
// program reads.
func accountFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var pw bytes.Buffer
	for _, u := range []string{"sensor1", "bob"} {
		h, err := passwd.HashIterations(u+"-pw", 1000)
		require.NoError(t, err)
		fmt.Fprintf(&pw, "%s:%s\n", u, h)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), pw.Bytes(), 0o600))
	aclText := "user sensor1\ntopic readwrite sensors/sensor1/#\n\nuser bob\ntopic read sensors/#\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acl"), []byte(aclText), 0o600))
	return dir
}

// startBroker runs bin on a free loopback port and returns its address
// once it listens.
func startBroker(t *testing.T, bin, dir string) (string, *mqtttest.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-dir", dir)
	stderr, w, err := os.Pipe()
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w // the program's log and mochi's
	require.NoError(t, cmd.Start())
	w.Close()
	t.Cleanup(func() { cancel(); cmd.Wait(); stderr.Close() })
	logs := &mqtttest.SyncBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
				select {
				case addrc <- a:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addrc:
		return a, logs
	case <-time.After(30 * time.Second):
		t.Fatalf("the broker did not say where it listens: %s", logs)
		return "", nil
	}
}
