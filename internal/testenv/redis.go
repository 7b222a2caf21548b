package testenv

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server a test started, listening on a Unix socket in a
// fresh directory (no TCP port at all), with persistence off. Stop and
// Start kill and restart it on the same socket, for outage tests; the
// test's cleanup stops it.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a redis-server, or skips (fails under .ci/run) when
// the program is missing.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Program(t, "redis-server", "redis-server")
	// A short directory: a Unix socket path must fit in 108 bytes, and
	// t.TempDir's names are long.
	dir, err := os.MkdirTemp("", "mqg-redis-")
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{t: t, bin: bin, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() {
		r.Stop()
		os.RemoveAll(dir)
	})
	r.Start()
	return r
}

// URL is the server's address for go-redis (and redisstore.Options).
func (r *Redis) URL() string { return "unix://" + r.sock }

// Start starts the server (again) and waits until it answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	if r.cmd != nil {
		r.t.Fatal("testenv: redis-server is already running")
	}
	cmd := exec.Command(r.bin, "--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	out, err := os.Create(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("testenv: starting redis-server: %v", err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(r.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.ping() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	r.t.Fatalf("testenv: redis-server did not answer within 10 s; its log:\n%s", log)
}

// Stop kills the server (as a crash would: no shutdown handshake) and
// waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
	os.Remove(r.sock)
}

func (r *Redis) ping() bool {
	c, err := net.DialTimeout("unix", r.sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
