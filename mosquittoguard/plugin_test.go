package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/trust"
)

// dataDir is what the example broker's first run makes (passwords, ACL,
// admin token), with the admin API on adminAddr and TLS off (mosquitto
// owns the listeners).
func dataDir(t testing.TB, adminAddr string) (dir string, passwords map[string]string) {
	t.Helper()
	dir = t.TempDir()
	fr, err := guardstack.Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	passwords = map[string]string{}
	for _, a := range fr.Accounts {
		passwords[a.User] = a.Password
	}
	require.NoError(t, fr.Shown())
	path := filepath.Join(dir, guardstack.ConfigFile)
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	r := strings.NewReplacer(`listen = "127.0.0.1:8080"`, `listen = "`+adminAddr+`"`, "enable_tls = true", "enable_tls = false")
	require.NoError(t, os.WriteFile(path, []byte(r.Replace(string(text))), 0o600))
	return dir, passwords
}

// connects numbers the test CONNECTs' addresses.
var connects atomic.Uint32

// connect is a CONNECT from an address of its own (127.1.x.y): the
// tests' CONNECTs come at one instant, and one address would meet the
// connection rate limit.
func connect(id, user string, pass []byte, hasPass bool, version byte) *mqttguard.ConnectRequest {
	n := connects.Add(1)
	addr := netip.AddrFrom4([4]byte{127, 1, byte(n >> 8), byte(n)})
	return &mqttguard.ConnectRequest{ClientID: id, Username: user, Password: pass, HasPassword: hasPass,
		ProtocolVersion: version, Addr: netip.AddrPortFrom(addr, 0)}
}

// freeAddr is a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// The decisions the callbacks return, without mosquitto: the same
// configuration file as the example broker, its accounts and ACL.
func TestPluginDecisions(t *testing.T) {
	dir, pw := dataDir(t, "127.0.0.1:0")
	p, err := newPlugin(filepath.Join(dir, guardstack.ConfigFile), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { p.close() })
	now := time.Now()
	const sensor, dash, stranger = 1, 2, 3

	require.Equal(t, mosqErrSuccess, p.basicAuth(sensor, connect("old", "dashboard", []byte(pw["dashboard"]), true, 5), true, now))
	assert.Equal(t, mosqErrAuth, p.basicAuth(sensor, connect("s1", "sensor1", []byte("wrong"), true, 5), true, now))
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(sensor, "s1", aclRead, "sensors/sensor1/temp", nil, 0, false, now),
		"a refused client does not inherit the identity last seen at its address in memory")
	assert.Equal(t, mosqErrAuth, p.basicAuth(sensor, connect("anon", "", nil, false, 4), true, now), "no anonymous clients")
	require.Equal(t, mosqErrSuccess, p.basicAuth(sensor, connect("s1", "sensor1", []byte(pw["sensor1"]), true, 4), true, now))
	require.Equal(t, mosqErrSuccess, p.basicAuth(dash, connect("d1", "dashboard", []byte(pw["dashboard"]), true, 4), true, now))

	assert.Equal(t, mosqErrSuccess, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/temp", []byte("21.5"), 1, false, now))
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor2/temp", []byte("21.5"), 1, false, now), "another sensor's topic")
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d1", aclSubscribe, "#", nil, 0, false, now), "subscribe_check = delivery: deliveries are checked")
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d1", aclRead, "sensors/sensor1/temp", nil, 0, false, now))
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(dash, "d1", aclRead, "commands/sensor1/reboot", nil, 1, false, now), "not the dashboard's to read")
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(stranger, "x", aclRead, "sensors/sensor1/temp", nil, 0, false, now), "never authenticated here")
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d1", aclUnsubscribe, "#", nil, 0, false, now))

	assert.Len(t, p.Clients(), 2)
	assert.Equal(t, 1, p.Kick(trust.Ban{Kind: trust.BanUsername, Value: "sensor1"}, 0))
	assert.Equal(t, []string{"s1"}, p.tick(), "kicks wait for mosquitto's thread")
	assert.Empty(t, p.tick())

	p.disconnect(sensor, now)
	assert.Empty(t, p.Kick(trust.Ban{Kind: trust.BanUsername, Value: "sensor1"}, 0), "nobody to kick")
	assert.Len(t, p.Clients(), 1, "the clients connected now")
	assert.Equal(t, mosqErrSuccess, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/status", nil, 0, false, now),
		"after it left, a write is its will: allowed by the ACL (and not banned by the username's kick)")
	assert.Empty(t, p.tick())
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/temp", nil, 0, false, now), "a clean session is forgotten at the next tick")
	assert.NoError(t, p.reload())
	assert.NoError(t, p.st.Close(context.Background()))
}

// What mosquitto asks after a client left: its will, its deliveries
// while offline, and a dropped publish's rename.
func TestPluginSessions(t *testing.T) {
	dir, pw := dataDir(t, "127.0.0.1:0")
	p, err := newPlugin(filepath.Join(dir, guardstack.ConfigFile), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { p.close() })
	now := time.Now()
	const sensor, dash = 1, 2

	require.Equal(t, mosqErrSuccess, p.basicAuth(sensor, connect("s1", "sensor1", []byte(pw["sensor1"]), true, 5), false, now))
	require.Equal(t, mosqErrSuccess, p.basicAuth(dash, connect("d1", "dashboard", []byte(pw["dashboard"]), true, 5), false, now))

	// An early report is dropped: acknowledged, and renamed by the
	// message event that follows (in the shim).
	require.Equal(t, mosqErrSuccess, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/report", nil, 1, false, now), "the first report goes through")
	require.Equal(t, aclDropped, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/report", nil, 1, false, now.Add(time.Second)),
		"an early report is acknowledged and made undeliverable")
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(dash, "d1", aclRead, DroppedTopic, nil, 0, false, now), "nobody reads a dropped message")
	require.Equal(t, mosqErrSuccess, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/temp", nil, 1, false, now))

	// A persistent session is asked about while its client is away.
	p.disconnect(dash, now)
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d1", aclRead, "sensors/sensor1/temp", nil, 1, false, now), "queued for the offline dashboard")
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(dash, "d1", aclRead, "commands/sensor1/reboot", nil, 1, false, now))
	assert.Empty(t, p.tick())
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d1", aclRead, "sensors/sensor1/temp", nil, 1, false, now), "kept over ticks")

	// A will is the client's publish when it is sent: a ban made since
	// stops it.
	p.disconnect(sensor, now)
	require.NoError(t, p.st.Guard.Config().Bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "s1", Reason: "test"}))
	assert.Equal(t, mosqErrACLDenied, p.aclCheck(sensor, "s1", aclWrite, "sensors/sensor1/status", nil, 0, false, now), "a banned client's will")

	// mosquitto reuses a gone client's memory for a new client: the new
	// CONNECT replaces the session, and the tick does not forget it.
	require.Equal(t, mosqErrSuccess, p.basicAuth(dash, connect("d2", "sensor1", []byte(pw["sensor1"]), true, 4), true, now))
	p.tick()
	assert.Equal(t, mosqErrSuccess, p.aclCheck(dash, "d2", aclWrite, "sensors/sensor1/temp", nil, 0, false, now), "the new client's session")
	assert.Len(t, p.Clients(), 1)
}

func TestPluginNeedsItsConfiguration(t *testing.T) {
	_, err := newPlugin(filepath.Join(t.TempDir(), "missing.toml"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.toml")
}
