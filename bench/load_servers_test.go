package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/passwd"
)

// The load benchmarks run every broker as its own process on loopback,
// ours included, so that the load generator in this process competes
// with each of them the same way.

// loadUsers are the accounts of the load benchmarks, the same for every
// broker that checks passwords (hashed with 1,000 iterations: connection
// cost is not what these benchmarks measure): "load", "aggregator", and
// one account per device of the noisy-neighbour benchmark, "good-0"…
// "good-99" and "rogue-0"…"rogue-9", each writing under its own name.
var loadUsers = func() map[string]string {
	m := map[string]string{"load": "load-pw", "aggregator": "aggregator-pw"}
	for i := 0; i < 100; i++ {
		m[fmt.Sprintf("good-%d", i)] = "device-pw"
	}
	for i := 0; i < 10; i++ {
		m[fmt.Sprintf("rogue-%d", i)] = "device-pw"
	}
	return m
}()

// loadACL is the same policy in mosquitto's acl_file format for both.
const loadACL = `user load
topic readwrite load/#

user aggregator
topic read sensors/#

pattern write sensors/%u/#
`

var (
	binMu  sync.Mutex
	binDir string
	built  = map[string]string{}
)

// buildBinary builds a main package once per process.
func buildBinary(b testing.TB, pkg string, args ...string) string {
	b.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if binDir == "" {
		var err error
		if binDir, err = os.MkdirTemp("", "mqttguard-bench-bin"); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(binDir, filepath.Base(pkg))
	cmd := append(append([]string{"build"}, args...), "-o", out, pkg)
	if msg, err := exec.Command("go", cmd...).CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	built[pkg] = out
	return out
}

type process struct {
	addr string
	pid  int
}

// rssKiB is the process's resident memory now.
func (p *process) rssKiB() int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int
			fmt.Sscan(v, &kib)
			return kib
		}
	}
	return 0
}

func freePort(b testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(b testing.TB, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func start(b testing.TB, addr string, bin string, args ...string) *process {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if addr == "" { // the program prints its address
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		addr = strings.TrimSpace(line)
	} else if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(b, addr)
	return &process{addr: addr, pid: cmd.Process.Pid}
}

// bareMochi is mochi-mqtt with no hook but allow-all authentication;
// validate puts the packet validator in front of it.
func bareMochi(b testing.TB, validate bool) *process {
	args := []string{}
	if validate {
		args = append(args, "-validate")
	}
	return start(b, "", buildBinary(b, "./internal/baremochi"), args...)
}

func writeAuthFiles(b testing.TB, dir string) {
	var lines strings.Builder
	for u, p := range loadUsers {
		h, err := passwd.HashIterations(p, 1000)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&lines, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(lines.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(loadACL), 0o600); err != nil {
		b.Fatal(err)
	}
}

// mosquittoServer is Debian's mosquitto 2.0 with the same passwords and
// ACL as ours (anonymous: none, for the proxy's upstream).
func mosquittoServer(b testing.TB, anonymous bool) *process {
	dir := b.TempDir()
	if anonymous {
		return mosquittoIn(b, dir, false)
	}
	writeAuthFiles(b, dir)
	return mosquittoIn(b, dir, true)
}

// mosquittoPlugin is mosquitto 2.0 with the Guard inside it
// (mosquittoguard), deciding with the example broker's configuration:
// the same passwords, ACL and far-away limits as "mqttguard".
func mosquittoPlugin(b testing.TB) *process {
	if _, err := os.Stat("/usr/include/mosquitto_broker.h"); err != nil {
		testenv.Program(b, "mosquitto_broker.h (the plugin headers)", "mosquitto-dev")
	}
	bin := testenv.Program(b, "mosquitto", "mosquitto")
	so := buildBinary(b, "../mosquittoguard", "-tags", "mosquitto", "-buildmode=c-shared")
	dir := b.TempDir()
	writeAuthFiles(b, dir)
	cfg := filepath.Join(dir, "mqttguard.toml")
	if err := os.WriteFile(cfg, []byte(guardConfig(0, false, "")), 0o600); err != nil {
		b.Fatal(err)
	}
	m := mqtttest.RunMosquitto(b, bin, dir, "allow_anonymous true", "max_queued_messages 100000",
		"plugin "+so, "plugin_opt_config "+cfg)
	return &process{addr: m.Addr, pid: m.Pid()}
}

// mosquittoIn runs mosquitto with the passwd and acl files in dir (auth)
// or anonymous.
func mosquittoIn(b testing.TB, dir string, auth bool) *process {
	bin := testenv.Program(b, "mosquitto", "mosquitto")
	extra := []string{"allow_anonymous true"}
	if auth {
		extra = []string{"allow_anonymous false", "password_file " + filepath.Join(dir, "passwd"), "acl_file " + filepath.Join(dir, "acl")}
	}
	m := mqtttest.RunMosquitto(b, bin, dir, append(extra, "max_queued_messages 100000")...)
	return &process{addr: m.Addr, pid: m.Pid()}
}

// guardConfig is the example broker's configuration for the load
// benchmarks: every component on — passwords, ACL, trust, bans,
// flapping, push intervals (for sensors/+/report, which the load does
// not use), rate limits — with limits either far above the load
// (limits=false: what the Guard costs) or the seed's production values
// (limits=true: the noisy-neighbour benchmark).
func guardConfig(port int, limits bool, upstream string, extra ...string) string {
	rl := `user_tokens_per_second = 1e9
user_burst_capacity = 1e9
channel_messages_per_second = 1e9
channel_burst_capacity = 1e9
ip_connections_per_second = 1e6
client_messages_per_second = 1e9
client_burst_capacity = 1e9
client_bytes_per_second = 1e12`
	if limits {
		rl = `user_tokens_per_second = 50.0
user_burst_capacity = 100.0
channel_messages_per_second = 3.0
channel_burst_capacity = 10.0
ip_connections_per_second = 1000.0
client_messages_per_second = 20.0
client_burst_capacity = 40.0
client_bytes_per_second = 1048576.0`
	}
	cfg := fmt.Sprintf(`[mqtt]
bind = "127.0.0.1"
port = %d
enable_tls = false
connect_timeout = "10s"
max_clients = 100000
# as mosquitto's max_queued_messages here (100,000), as far as mochi goes
max_queued_messages = 65535

[security]
mode = "full"
enable_shadow_ban = true
password_file = "passwd"
acl_file = "acl"
ban_file = "bans.jsonl"
subscribe_check = "delivery"
# the load generator's 101 clients share one account (default bound: 100)
max_sessions_per_user = -1
# ... and what they hold: as mosquitto's max_queued_bytes here (none)
max_queued_bytes_per_user = 1073741824

[security.rate_limit]
%s

[security.trust]
username_factor = 0.0
ip_factor = 0.0

[security.flapping]
max_connects = 100000
window = "1m"
ban_for = "5m"

[[security.devices]]
topic = "sensors/+/report"
interval = "5m"
tolerance = "30s"

[admin]
listen = ""
token_file = ""
`, port, rl)
	if upstream != "" {
		cfg += fmt.Sprintf("\n[upstream]\naddr = %q\n", upstream)
	}
	for _, e := range extra {
		cfg += "\n" + e + "\n"
	}
	return cfg
}

// guardServer runs the example broker (or, with upstream, the example
// proxy) from a data directory of its own.
func guardServer(b testing.TB, limits bool, upstream string, extra ...string) *process {
	dir := b.TempDir()
	writeAuthFiles(b, dir)
	return guardServerIn(b, dir, limits, upstream, extra...)
}

// guardServerIn is guardServer with the passwd and acl files in dir.
func guardServerIn(b testing.TB, dir string, limits bool, upstream string, extra ...string) *process {
	port := freePort(b)
	if err := os.WriteFile(filepath.Join(dir, "mqttguard.toml"), []byte(guardConfig(port, limits, upstream, extra...)), 0o600); err != nil {
		b.Fatal(err)
	}
	pkg := "../examples/broker"
	if upstream != "" {
		pkg = "../examples/proxy"
	}
	return start(b, fmt.Sprintf("127.0.0.1:%d", port), buildBinary(b, pkg), "-config", filepath.Join(dir, "mqttguard.toml"), "-log-level", "error")
}
