package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartMosquitto runs the mosquitto broker at bin on a free loopback
// port with the given configuration lines added (password_file,
// acl_file, …), waits until it listens and stops it when the test ends.
// It returns the broker's address.
func StartMosquitto(t testing.TB, bin, dir string, extra ...string) string {
	t.Helper()
	return RunMosquitto(t, bin, dir, extra...).Addr
}

// Mosquitto is a running mosquitto.
type Mosquitto struct {
	Addr   string
	cmd    *exec.Cmd
	stderr *SyncBuffer
	once   sync.Once
}

// Stop kills it (the test's cleanup does too).
func (m *Mosquitto) Stop() {
	m.once.Do(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	})
}

// Pid is its process ID.
func (m *Mosquitto) Pid() int { return m.cmd.Process.Pid }

// Signal sends sig to mosquitto (SIGHUP: reload).
func (m *Mosquitto) Signal(sig os.Signal) error { return m.cmd.Process.Signal(sig) }

// Log is what it wrote to stderr (extra lines such as "log_type all"
// make it say more).
func (m *Mosquitto) Log() string { return m.stderr.String() }

// SyncBuffer is a text buffer one goroutine writes (a process's output,
// a logger) while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RunMosquitto is StartMosquitto with a handle on the process.
func RunMosquitto(t testing.TB, bin, dir string, extra ...string) *Mosquitto {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\n", port)
	for _, line := range extra {
		conf += line + "\n"
	}
	if u, err := user.Current(); err == nil {
		// mosquitto drops root privileges to "mosquitto" unless told
		// otherwise, and then cannot read files in the test's directory.
		conf += "user " + u.Username + "\n"
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := &SyncBuffer{}
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{cmd: cmd, stderr: stderr}
	t.Cleanup(m.Stop)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			m.Addr = addr
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
