package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
)

// The plugin as mosquitto loads it, built once for the package's tests
// (TestMain removes it).
var built struct {
	once sync.Once
	dir  string
	path string
	out  []byte
	err  error
}

// buildPlugin builds the plugin as mosquitto loads it.
func buildPlugin(t *testing.T) string {
	t.Helper()
	testenv.Program(t, "gcc", "gcc")
	if _, err := os.Stat("/usr/include/mosquitto_broker.h"); err != nil {
		testenv.Program(t, "mosquitto_broker.h (the plugin headers)", "mosquitto-dev")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "mqttguard-plugin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "mqttguard.so")
		cmd := exec.Command("go", "build", "-tags", "mosquitto", "-buildmode=c-shared", "-o", built.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		built.out, built.err = cmd.CombinedOutput()
	})
	require.NoError(t, built.err, "building the plugin: %s", built.out)
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// The plugin inside a real mosquitto 2.0, attacked over sockets.
func TestInsideMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	admin := freeAddr(t)
	dir, pw := dataDir(t, admin)
	m := mqtttest.RunMosquitto(t, bin, dir, "allow_anonymous true", "plugin "+so,
		"plugin_opt_config "+filepath.Join(dir, guardstack.ConfigFile))

	// mosquitto 2.0.11 answers every authentication a plugin refuses as
	// its own password_file does a wrong password: not authorized (0x87,
	// 3.1.1 return code 5); a plugin cannot choose the code.
	t.Run("wrong password", func(t *testing.T) {
		c := mqtttest.DialRaw(t, m.Addr)
		assert.Equal(t, byte(0x87), mqtttest.Connect5(t, c, "s1", "sensor1", "wrong", nil), "MQTT 5: not authorized")
		c3 := mqtttest.DialRaw(t, m.Addr)
		assert.Equal(t, []byte{0x20, 2, 0, 5}, mqtttest.Connect311(t, c3, "s1", "sensor1", "wrong"), "3.1.1: return code 5")
	})

	dash := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, dash, "dash", "dashboard", pw["dashboard"], nil))
	mqtttest.Subscribe5(t, dash, "#")
	sensor := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, sensor, "sensor-1", "sensor1", pw["sensor1"], &mqtttest.Will{Topic: "sensors/sensor1/status", Payload: "gone"}))
	admin5 := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, admin5, "ops", "admin", pw["admin"], nil))

	t.Run("forbidden publish", func(t *testing.T) {
		assert.Equal(t, byte(0x87), mqtttest.Publish5(t, sensor, "sensors/sensor2/temp", 1, 1), "v5 PUBACK 0x87")
		assert.Equal(t, byte(0), mqtttest.Publish5(t, sensor, "sensors/sensor1/temp", 1, 2))
	})

	t.Run("a # subscriber receives only what it may read", func(t *testing.T) {
		mqtttest.Publish5(t, admin5, "commands/sensor1/reboot", 1, 1)
		mqtttest.Publish5(t, admin5, "sensors/sensor9/temp", 1, 2)
		got := mqtttest.Received(t, dash, 2*time.Second)
		assert.Equal(t, 1, mqtttest.Count(got, "sensors/sensor1/temp"), "%v", got)
		assert.Equal(t, 1, mqtttest.Count(got, "sensors/sensor9/temp"), "%v", got)
		assert.Zero(t, mqtttest.Count(got, "sensors/sensor2/temp"), "refused: never delivered")
		assert.Zero(t, mqtttest.Count(got, "commands/sensor1/reboot"), "the dashboard may not read commands")
	})

	t.Run("an early report is acknowledged and never delivered", func(t *testing.T) {
		first := mqtttest.Publish5(t, sensor, "sensors/sensor1/report", 1, 11)
		second := mqtttest.Publish5(t, sensor, "sensors/sensor1/report", 1, 12)
		assert.Less(t, first, byte(0x80), "accepted")
		assert.Less(t, second, byte(0x80), "acknowledged as accepted (0x10 no subscribers: it went nowhere)")
		got := mqtttest.Received(t, dash, time.Second)
		assert.Equal(t, 1, mqtttest.Count(got, "sensors/sensor1/report"), "the first report only: %v", got)
		assert.Zero(t, mqtttest.Count(got, DroppedTopic), "nobody reads what the Guard dropped")
	})

	t.Run("wills: sent when the client vanishes, decided as a publish when it is sent", func(t *testing.T) {
		w := mqtttest.DialRaw(t, m.Addr)
		require.Equal(t, byte(0), mqtttest.Connect5(t, w, "sensor-w", "sensor1", pw["sensor1"], &mqtttest.Will{Topic: "sensors/sensor1/will", Payload: "bye"}))
		forbidden := mqtttest.DialRaw(t, m.Addr)
		require.Equal(t, byte(0), mqtttest.Connect5(t, forbidden, "sensor-w2", "sensor1", pw["sensor1"], &mqtttest.Will{Topic: "sensors/sensor2/will", Payload: "spoof"}))
		w.Close()
		forbidden.Close()
		got := mqtttest.Received(t, dash, 2*time.Second)
		assert.Equal(t, 1, mqtttest.Count(got, "sensors/sensor1/will"), "%v", got)
		assert.Zero(t, mqtttest.Count(got, "sensors/sensor2/will"), "another sensor's topic: refused when sent")
	})

	t.Run("an offline session receives what it may read when it comes back", func(t *testing.T) {
		sub := mqtttest.DialRaw(t, m.Addr)
		require.Equal(t, byte(0), connectPersistent(t, sub, "dash-p", "dashboard", pw["dashboard"]))
		subscribe1(t, sub, "#")
		sub.Close()
		mqtttest.Publish5(t, admin5, "sensors/sensor7/temp", 1, 21)
		mqtttest.Publish5(t, admin5, "commands/sensor7/reboot", 1, 22)
		back := mqtttest.DialRaw(t, m.Addr)
		require.Equal(t, byte(0), connectPersistent(t, back, "dash-p", "dashboard", pw["dashboard"]))
		got := mqtttest.Received(t, back, 2*time.Second)
		assert.Equal(t, 1, mqtttest.Count(got, "sensors/sensor7/temp"), "queued while offline: %v", got)
		assert.Zero(t, mqtttest.Count(got, "commands/sensor7/reboot"), "not the dashboard's to read, online or not")
	})

	t.Run("SIGHUP reloads the ACL; a broken one keeps the rules in force", func(t *testing.T) {
		aclPath := filepath.Join(dir, "acl")
		orig, err := os.ReadFile(aclPath)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(aclPath, append(orig, "\nuser sensor1\ntopic write sensors/shared/#\n"...), 0o600))
		require.NoError(t, m.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool {
			return mqtttest.Publish5(t, sensor, "sensors/shared/temp", 1, 3) == 0
		}, 5*time.Second, 100*time.Millisecond, "the new rule is in force")

		require.NoError(t, os.WriteFile(aclPath, append(orig, "\ntopic sideways sensors/#\n"...), 0o600))
		require.NoError(t, m.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Contains(m.Log(), "acl kept") }, 5*time.Second, 50*time.Millisecond,
			"the reload says the ACL was kept: %s", m.Log())
		lines := strings.Count(string(orig), "\n") + 2
		assert.Contains(t, m.Log(), fmt.Sprintf("acl:%d", lines), "naming the file and line")
		assert.Equal(t, byte(0), mqtttest.Publish5(t, sensor, "sensors/shared/temp", 1, 4), "the last good rules stay in force")
		assert.Equal(t, byte(0x87), mqtttest.Publish5(t, sensor, "sensors/sensor2/temp", 1, 5))
	})

	t.Run("a ban through the admin API kicks the live client", func(t *testing.T) {
		token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
		require.NoError(t, err)
		req, _ := http.NewRequest("POST", "http://"+admin+"/bans", strings.NewReader(`{"kind": "client", "value": "sensor-1", "for": "1h"}`))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		sensor.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		buf := make([]byte, 64)
		for err == nil {
			var n int
			n, err = sensor.Read(buf)
			got = append(got, buf[:n]...)
		}
		assert.ErrorIs(t, err, io.EOF, "mosquitto closed the connection (after %x)", got)
		assert.Less(t, time.Since(start), 2*time.Second, "within a tick or two")
		assert.Zero(t, mqtttest.Count(mqtttest.Received(t, dash, time.Second), "sensors/sensor1/status"), "a banned client's will is not sent")
		again := mqtttest.DialRaw(t, m.Addr)
		assert.NotEqual(t, byte(0), mqtttest.Connect5(t, again, "sensor-1", "sensor1", pw["sensor1"], nil), "and refused while banned")
	})

	t.Run("the dashboard on the admin address shows the refusals and the ban", func(t *testing.T) {
		dash := mqtttest.Dashboard(t, admin, filepath.Join(dir, "admin.token"))
		assert.Contains(t, mqtttest.LiveRefusals(t, dash, admin, "sensors/sensor2/temp"), "reject 0x87 sensors/sensor2/temp acl")
		res, err := dash.Get("http://" + admin + "/dashboard/bans")
		require.NoError(t, err)
		page, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		assert.Contains(t, string(page), `data-value="sensor-1"`)
	})

	// Last: the flood punishes sensor1 (violations follow the username).
	t.Run("a flooding client escalates and is kicked", func(t *testing.T) {
		flood := mqtttest.DialRaw(t, m.Addr)
		require.Equal(t, byte(0), mqtttest.Connect5(t, flood, "sensor-flood", "sensor1", pw["sensor1"], nil))
		pkt := []byte{0x30, 23, 0, 20} // QoS 0, MQTT 5: topic, no properties, no payload
		pkt = append(append(pkt, "sensors/sensor1/fast"...), 0)
		deadline := time.Now().Add(15 * time.Second)
		var err error
		sent := 0
		for ; err == nil && time.Now().Before(deadline); sent++ {
			flood.SetWriteDeadline(time.Now().Add(time.Second))
			_, err = flood.Write(pkt)
			time.Sleep(time.Millisecond) // ~1,000 a second against a limit of 20
		}
		require.Error(t, err, "the flooder was disconnected (after %d publishes)", sent)
		again := mqtttest.DialRaw(t, m.Addr)
		assert.NotEqual(t, byte(0), mqtttest.Connect5(t, again, "sensor-flood", "sensor1", pw["sensor1"], nil), "and refused while its trust state lasts")
	})

	if t.Failed() {
		fmt.Println(m.Log())
	}
}

// connectPersistent connects over MQTT 5 with a session that outlives
// the connection (clean start off, session expiry 5 minutes).
func connectPersistent(t *testing.T, c net.Conn, id, user, pass string) byte {
	t.Helper()
	cp := paho.NewControlPacket(paho.CONNECT)
	cn := cp.Content.(*paho.Connect)
	expiry := uint32(300)
	cn.ProtocolName, cn.ProtocolVersion, cn.ClientID, cn.CleanStart, cn.KeepAlive = "MQTT", 5, id, false, 30
	cn.UsernameFlag, cn.Username, cn.PasswordFlag, cn.Password = true, user, true, []byte(pass)
	cn.Properties = &paho.Properties{SessionExpiryInterval: &expiry}
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	ack, err := paho.ReadPacket(c)
	require.NoError(t, err)
	ca, ok := ack.Content.(*paho.Connack)
	require.True(t, ok, "got %v", ack)
	return ca.ReasonCode
}

// subscribe1 subscribes at QoS 1 and requires SUBACK 1.
func subscribe1(t *testing.T, c net.Conn, filter string) {
	t.Helper()
	cp := paho.NewControlPacket(paho.SUBSCRIBE)
	s := cp.Content.(*paho.Subscribe)
	s.PacketID, s.Subscriptions = 1, []paho.SubOptions{{Topic: filter, QoS: 1}}
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	ack, err := paho.ReadPacket(c)
	require.NoError(t, err)
	sa, ok := ack.Content.(*paho.Suback)
	require.True(t, ok, "got %v", ack)
	require.Equal(t, []byte{1}, sa.Reasons)
}

// A password guesser must not stall mosquitto's one thread: the AuthGate
// refuses an address's guesses as busy once they fail, instead of
// holding each for a doubling delay (which held every client of the
// broker: up to max_delay, 10 s, per guess).
func TestGuessingDoesNotStallMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	dir, pw := dataDir(t, "127.0.0.1:0")
	m := mqtttest.RunMosquitto(t, bin, dir, "allow_anonymous true", "plugin "+so,
		"plugin_opt_config "+filepath.Join(dir, guardstack.ConfigFile))
	dash := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, dash, "dash", "dashboard", pw["dashboard"], nil))

	var slowest time.Duration
	for i := range 15 {
		guess := mqtttest.DialRaw(t, m.Addr)
		assert.Equal(t, byte(0x87), mqtttest.Connect5(t, guess, fmt.Sprint("g", i), "sensor1", fmt.Sprint("guess-", i), nil))
		guess.Close()
		start := time.Now()
		_, err := dash.Write([]byte{0xC0, 0}) // PINGREQ
		require.NoError(t, err)
		resp := make([]byte, 2)
		_, err = io.ReadFull(dash, resp)
		require.NoError(t, err, "the broker answers its other clients")
		require.Equal(t, []byte{0xD0, 0}, resp)
		slowest = max(slowest, time.Since(start))
	}
	// A bound on a stall, not a speed measurement: the stall this guards
	// against grows to seconds per guess.
	assert.Less(t, slowest, 2*time.Second, "the slowest PINGREQ while guessing")
	sensor := mqtttest.DialRaw(t, m.Addr)
	assert.Equal(t, byte(0), mqtttest.Connect5(t, sensor, "sensor-1", "dashboard", pw["dashboard"], nil),
		"another account at the guesser's address still gets in")
	if t.Failed() {
		t.Log(m.Log())
	}
}
