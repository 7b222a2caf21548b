package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisNode is one redis-server (or sentinel) of a topology a test
// started on a loopback TCP port, with persistence off. Kill stops it as
// a crash would.
type RedisNode struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Kill kills the process and waits for it to exit.
func (n *RedisNode) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	n.cmd.Process.Signal(syscall.SIGCONT) // a paused process dies only once it runs
	<-n.done
	n.cmd = nil
}

// Pause stops the process (SIGSTOP) without killing it: it holds its
// connections and answers nothing; Resume lets it go on.
func (n *RedisNode) Pause() {
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume continues a paused process (SIGCONT).
func (n *RedisNode) Resume() {
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Alive reports whether the process still runs.
func (n *RedisNode) Alive() bool { return n.cmd != nil }

// Log is what the process wrote.
func (n *RedisNode) Log() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

// freeRedisPort is a free loopback port whose cluster bus port (+10000)
// is free too.
func freeRedisPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("testenv: no free port pair for redis")
	return 0
}

// startRedisNode starts bin with a configuration file of lines, in its
// own directory under dir, and waits until it answers PING.
func startRedisNode(t testing.TB, bin, dir, name string, port int, lines []string, args ...string) *RedisNode {
	t.Helper()
	nd := filepath.Join(dir, name)
	if err := os.MkdirAll(nd, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(nd, "redis.conf")
	base := []string{"bind 127.0.0.1", fmt.Sprintf("port %d", port), "save \"\"", "appendonly no",
		"dir " + nd, "loglevel warning", "protected-mode no"}
	if err := os.WriteFile(conf, []byte(strings.Join(append(base, lines...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &RedisNode{Addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(nd, "log")}
	out, err := os.Create(n.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, append([]string{conf}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting %s: %v", name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(n.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if line, err := redisCommand(n.Addr, "PING"); err == nil && strings.HasPrefix(line, "+PONG") {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("testenv: %s did not answer within 10 s; its log:\n%s", name, n.Log())
	return nil
}

// redisSend dials addr and sends one command; the caller reads the
// answer (within 2 s) and closes the connection.
func redisSend(addr string, args ...string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// redisCommand sends one command and returns the first line of the
// answer (the second, for a bulk string).
func redisCommand(addr string, args ...string) (string, error) {
	c, err := redisSend(addr, args...)
	if err != nil {
		return "", err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "$") { // a bulk string: the next line
		if rest, err := r.ReadString('\n'); err == nil {
			return strings.TrimSpace(rest), nil
		}
	}
	return strings.TrimSpace(line), nil
}

// RedisDo sends a command to the server at addr and fails on an error
// answer.
func RedisDo(addr string, args ...string) error {
	line, err := redisCommand(addr, args...)
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "-") {
		return fmt.Errorf("redis %s: %s", strings.Join(args, " "), line)
	}
	return nil
}

// redisDir is a short directory for a topology's nodes.
func redisDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "mqg-redis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// RedisCluster is a Redis Cluster of three primaries, each with one
// replica, created with redis-cli --cluster create.
type RedisCluster struct {
	Nodes []*RedisNode // the first three started as primaries
}

// StartRedisCluster starts six redis-server nodes in cluster mode and
// joins them, or skips (fails under .ci/run) when redis-server or
// redis-cli is missing.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := Program(t, "redis-server", "redis-server")
	cli := Program(t, "redis-cli", "redis-tools")
	dir := redisDir(t)
	rc := &RedisCluster{}
	var addrs []string
	for i := range 6 {
		port := freeRedisPort(t)
		n := startRedisNode(t, bin, dir, fmt.Sprintf("node%d", i), port, []string{
			"cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 1000",
			"cluster-replica-validity-factor 0", "cluster-require-full-coverage no"})
		rc.Nodes = append(rc.Nodes, n)
		addrs = append(addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	rc.WaitHealthy(t, 20*time.Second)
	return rc
}

// WaitHealthy waits until every live node says cluster_state:ok and
// every live replica is in sync with its primary (a replica still in
// its first sync confirms no write).
func (rc *RedisCluster) WaitHealthy(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range rc.Nodes {
			if !n.Alive() {
				continue
			}
			info, err := redisInfo(n.Addr, "CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
				break
			}
			rep, err := redisInfo(n.Addr, "INFO", "replication")
			if err != nil || strings.Contains(rep, "role:slave") && !strings.Contains(rep, "master_link_status:up") {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("testenv: the Redis Cluster is not healthy after %v", d)
}

// URL is the cluster's address for redisstore.Options: every node as a
// seed.
func (rc *RedisCluster) URL() string {
	u := "redis-cluster://" + rc.Nodes[0].Addr
	for i, n := range rc.Nodes[1:] {
		u += map[bool]string{true: "?", false: "&"}[i == 0] + "addr=" + n.Addr
	}
	return u
}

// PrimaryFor is the node serving key's slot now.
func (rc *RedisCluster) PrimaryFor(t testing.TB, key string) *RedisNode {
	t.Helper()
	for _, n := range rc.Nodes {
		if !n.Alive() {
			continue
		}
		line, err := redisCommand(n.Addr, "GET", key)
		if err == nil && !strings.HasPrefix(line, "-MOVED") && !strings.HasPrefix(line, "-ASK") {
			role, _ := redisInfo(n.Addr, "ROLE")
			if strings.Contains(role, "master") {
				return n
			}
		}
	}
	t.Fatalf("testenv: no primary serves %q", key)
	return nil
}

// redisInfo sends a command and returns its whole bulk or array answer
// as text.
func redisInfo(addr string, args ...string) (string, error) {
	c, err := redisSend(addr, args...)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var all strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		all.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return all.String(), nil
}

// RedisSentinel is a primary, a replica and three sentinels watching
// them under the master name "mqttguard".
type RedisSentinel struct {
	Primary, Replica *RedisNode
	Sentinels        []*RedisNode
	MasterName       string
}

// StartRedisSentinel starts the five processes, or skips (fails under
// .ci/run) when redis-server is missing (it runs the sentinels too).
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	bin := Program(t, "redis-server", "redis-server")
	dir := redisDir(t)
	rs := &RedisSentinel{MasterName: "mqttguard"}
	rs.Primary = startRedisNode(t, bin, dir, "primary", freeRedisPort(t), nil)
	rs.Replica = startRedisNode(t, bin, dir, "replica", freeRedisPort(t), []string{"replicaof " + strings.Replace(rs.Primary.Addr, ":", " ", 1)})
	for i := range 3 {
		rs.Sentinels = append(rs.Sentinels, startRedisNode(t, bin, dir, fmt.Sprintf("sentinel%d", i), freeRedisPort(t), []string{
			fmt.Sprintf("sentinel monitor %s %s 2", rs.MasterName, strings.Replace(rs.Primary.Addr, ":", " ", 1)),
			fmt.Sprintf("sentinel down-after-milliseconds %s 1000", rs.MasterName),
			fmt.Sprintf("sentinel failover-timeout %s 5000", rs.MasterName),
			fmt.Sprintf("sentinel parallel-syncs %s 1", rs.MasterName)}, "--sentinel"))
	}
	// The replica is in sync, and the sentinels know it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		info, _ := redisInfo(rs.Replica.Addr, "INFO", "replication")
		sen, _ := redisInfo(rs.Sentinels[0].Addr, "SENTINEL", "REPLICAS", rs.MasterName)
		if strings.Contains(info, "master_link_status:up") && strings.Contains(sen, rs.Replica.Addr[strings.LastIndex(rs.Replica.Addr, ":")+1:]) {
			return rs
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testenv: the sentinel topology did not settle in 20 s; replica log:\n%s", rs.Replica.Log())
	return nil
}

// URL is the topology's address for redisstore.Options.
func (rs *RedisSentinel) URL() string {
	u := "redis-sentinel://" + rs.Sentinels[0].Addr + "?master_name=" + rs.MasterName
	for _, s := range rs.Sentinels[1:] {
		u += "&addr=" + s.Addr
	}
	return u
}

// CurrentPrimary is the address the sentinels give for the master now.
func (rs *RedisSentinel) CurrentPrimary() string {
	for _, s := range rs.Sentinels {
		if !s.Alive() {
			continue
		}
		out, err := redisInfo(s.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", rs.MasterName)
		if err != nil {
			continue
		}
		// *2\r\n$9\r\n127.0.0.1\r\n$5\r\n12345\r\n
		parts := strings.Split(out, "\r\n")
		if len(parts) >= 5 {
			return parts[2] + ":" + parts[4]
		}
	}
	return ""
}
