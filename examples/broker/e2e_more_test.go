package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWasmPluginDeny(t *testing.T) {
	wasm := wasmbuild.Build(t, "../plugins/denylist")
	tb := startBroker(t, func(c *guardconf.Config) {
		dir := c.Dir
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "plugins"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "plugins", "denylist.wasm"), wasm, 0o600))
		c.Plugins = []guardconf.PluginConfig{{Name: "denylist", Path: "plugins/denylist.wasm", Config: `{"deny": ["sensors/+/secret"]}`}}
	})
	s1 := tb.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/t", "1", 1))
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor1/secret", "1", 1), "the plugin refuses")
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_wasm_verdicts_total{plugin="denylist",verdict="deny"}`))
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_refusals_total{component="plugin"}`))
	assert.Contains(t, tb.Logs.String(), `component=plugin verdict=reject code=135 rule=denylist`)

	// Disabled at run time, the plugin takes no part; enabled, it is back.
	code, body := tb.Admin(t, "POST", "/plugins/denylist/disable", "")
	require.Equal(t, 200, code, body)
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/secret", "2", 1))
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_wasm_disabled{plugin="denylist"}`))
	code, _ = tb.Admin(t, "POST", "/plugins/denylist/enable", "")
	require.Equal(t, 200, code)
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor1/secret", "3", 1))
	code, body = tb.Admin(t, "GET", "/plugins", "")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `"name": "denylist"`)
	code, _ = tb.Admin(t, "POST", "/plugins/nope/disable", "")
	assert.Equal(t, 404, code)
}

// Every malformed class in packets (one per conformance statement), over
// TCP: the offending client is disconnected — told why if it speaks MQTT
// 5 — and another client keeps working throughout.
func TestEveryMalformedPacketClosesOnlyItsClient(t *testing.T) {
	cases := e2e.Corpus(t, "../..")
	require.Greater(t, len(cases), 50)

	tb := startBroker(t, func(c *guardconf.Config) {
		// Every case comes from this address and account: keep their
		// violations on the client IDs, or the test would ban itself.
		c.Security.Trust.UsernameFactor, c.Security.Trust.IPFactor = 0, 0
		c.Security.RateLimit.IPConnectionsPerSecond = 0
		c.Security.Flapping.MaxConnects = 1000
	})
	dash := tb.Login(t, "dash", "dashboard")
	dash.Sub(t, "sensors/#")
	s2 := tb.Login(t, "s2", "sensor2")
	for i, c := range cases {
		pkt, err := hex.DecodeString(c.Hex)
		require.NoError(t, err)
		conn, err := net.Dial("tcp", tb.Addr("tcp"))
		require.NoError(t, err)
		var stream []byte
		isConnect := pkt[0]>>4 == 1
		if !isConnect {
			v := c.Version
			if v == 3 {
				v = 4
			}
			stream = e2e.RawConnect(v, fmt.Sprintf("bad-%d", i), "sensor1", passwords["sensor1"])
		}
		stream = append(stream, pkt...)
		conn.Write(stream)
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := io.ReadAll(conn)
		conn.Close()
		require.NoError(t, err, "%s: the connection was not closed", c.Name)
		if c.Version == 5 && !isConnect && c.Rule != "§2.1.4" {
			// CONNACK, then DISCONNECT with the case's reason code.
			assert.True(t, strings.HasSuffix(hex.EncodeToString(resp), fmt.Sprintf("e001%02x", c.Code)),
				"%s: got %x, want a DISCONNECT 0x%02x at the end", c.Name, resp, c.Code)
		}
		if i%10 == 0 {
			assert.Equal(t, byte(0), s2.Pub(t, "sensors/sensor2/t", fmt.Sprint(i), 1), "after %s", c.Name)
		}
	}
	assert.Equal(t, byte(0), s2.Pub(t, "sensors/sensor2/t", "end", 1))
	got := dash.Received(time.Second)
	assert.Contains(t, got, "sensors/sensor2/t end", "other clients kept working")
	_, text := tb.Admin(t, "GET", "/metrics", "")
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "mqttguard_packet_rejections_total{") {
			var v int
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			n += v
		}
	}
	assert.Equal(t, len(cases), n, "the validator counted every one")
	assert.NotEqual(t, "", tb.Metric(t, `mqttguard_trust_violations_total{kind="malformed"}`))
}

// TestMain runs a bare mochi-mqtt broker when asked, for the crash
// regression test to kill in a child process; otherwise the tests, and
// then says which programs they missed (see testenv.Main).
func TestMain(m *testing.M) {
	if os.Getenv("MQTTGUARD_BARE_MOCHI") == "1" {
		bareMochi()
		return
	}
	os.Exit(testenv.Main(m, "examples/broker"))
}

func TestBareMochiCrashesAndTheGuardedBrokerDoesNot(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MQTTGUARD_BARE_MOCHI=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	var addr string
	_, err = fmt.Fscanln(stdout, &addr)
	require.NoError(t, err)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	conn.Write(append(e2e.RawConnect(5, "attacker", "", ""), e2e.CrashSubscribe...))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "bare mochi exited")
		assert.Contains(t, stderr.String(), "index out of range", "it panicked:\n%s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("bare mochi survived: has mochi fixed SubscribeDecode? then this regression test has done its job")
	}
	conn.Close()

	tb := startBroker(t, nil)
	bystander := tb.Login(t, "bystander", "sensor2")
	c, err := net.Dial("tcp", tb.Addr("tcp"))
	require.NoError(t, err)
	defer c.Close()
	c.Write(append(e2e.RawConnect(5, "attacker", "sensor1", passwords["sensor1"]), e2e.CrashSubscribe...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(hex.EncodeToString(resp), "e00181"), "DISCONNECT 0x81 malformed: %x", resp)
	assert.Equal(t, byte(0), bystander.Pub(t, "sensors/sensor2/t", "still here", 1))
	tb.Login(t, "newcomer", "sensor2")
}

// mosquitto_pub and mosquitto_sub speak MQTT 3.1.1: bad credentials are
// CONNACK 4, and what is refused is dropped (3.1.1 has no reason codes).
func TestMosquittoClients(t *testing.T) {
	pub := testenv.Program(t, "mosquitto_pub", "mosquitto-clients")
	sub := testenv.Program(t, "mosquitto_sub", "mosquitto-clients")
	tb := startBroker(t, nil)
	host, port, _ := net.SplitHostPort(tb.Addr("tcp"))
	args := func(user string, more ...string) []string {
		return append([]string{"-h", host, "-p", port, "-u", user, "-P", passwords[user], "-V", "mqttv311"}, more...)
	}
	out, err := exec.Command(pub, append(args("sensor1", "-t", "sensors/sensor1/t", "-m", "x"), "-P", "wrong")...).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "bad user name or password", "CONNACK 4")

	// A retained marker the dashboard may read: once mosquitto_sub prints
	// it, its subscription is in place.
	out, err = exec.Command(pub, args("admin", "-t", "sensors/ready", "-r", "-q", "1", "-m", "1")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	subCmd := exec.Command(sub, args("dashboard", "-t", "#", "-v")...)
	got := &e2e.LogBuffer{} // written by exec's copying goroutine
	subCmd.Stdout = got
	require.NoError(t, subCmd.Start())
	t.Cleanup(func() { subCmd.Process.Kill(); subCmd.Wait() })
	printed := func(line string) func() bool {
		return func() bool { return slices.Contains(strings.Split(got.String(), "\n"), line) }
	}
	require.Eventually(t, printed("sensors/ready 1"), 10*time.Second, 10*time.Millisecond, "mosquitto_sub did not subscribe: %q", got)

	// 30 lines at once: the topic's burst (10) goes through, the rest is
	// dropped silently, and the client is not disconnected.
	in := strings.Repeat("reading\n", 30)
	p := exec.Command(pub, args("sensor1", "-t", "sensors/sensor1/t", "-q", "1", "-l")...)
	p.Stdin = strings.NewReader(in)
	out, err = p.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(pub, args("sensor1", "-t", "sensors/sensor2/t", "-q", "1", "-m", "not mine")...).CombinedOutput()
	require.NoError(t, err, "a refused publish is acknowledged to a 3.1.1 client: %s", out)
	out, err = exec.Command(pub, args("admin", "-t", "billing/x", "-q", "1", "-m", "secret")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The broker takes a client's packets in order, so once it lists no
	// publisher any more, what each published has been queued for the
	// subscriber; a marker published after that is printed after it.
	require.Eventually(t, func() bool {
		cs := tb.Clients(t)
		return len(cs) == 1 && cs[0].Username == "dashboard"
	}, 10*time.Second, 10*time.Millisecond, "the publishers are still connected")
	out, err = exec.Command(pub, args("admin", "-t", "sensors/done", "-q", "1", "-m", "1")...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, printed("sensors/done 1"), 10*time.Second, 10*time.Millisecond, "%q", got)

	var lines []string
	for _, l := range strings.Split(got.String(), "\n") {
		if strings.HasPrefix(l, "sensors/sensor1/t ") {
			lines = append(lines, l)
		}
	}
	assert.GreaterOrEqual(t, len(lines), 10)
	assert.LessOrEqual(t, len(lines), 13, "the topic's limit: burst 10 and 3 a second")
	assert.NotContains(t, got.String(), "not mine")
	assert.NotContains(t, got.String(), "billing", "the dashboard reads only sensors/#")
}
