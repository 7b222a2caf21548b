// Red-team attacks (issue 24 round) on the example proxy in front of mosquitto.
//
// Copy into /work/main/examples/proxy/ (package main) to run:
//
//	cp /work/redteam24/proxy_rt24_test.go /work/main/examples/proxy/zz_rt24_test.go
//	go test ./examples/proxy -run 'TestRT24' -count=1 -v
package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rt24ReadOf(t *testing.T, c net.Conn, r *bufio.Reader, typ byte, d time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.SetReadDeadline(deadline)
		b, _, err := mqttwire.ReadPacket(r, nil)
		if err != nil {
			t.Logf("read: %v", err)
			return nil
		}
		if b[0]>>4 == typ {
			return append([]byte(nil), b...)
		}
	}
}

func rt24ProxyConnect(t *testing.T, addr string, v packets.Version, o e2e.RawOpts) (net.Conn, *bufio.Reader, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	_, err = c.Write((&e2e.Raw{V: v}).ConnectPacket(o))
	require.NoError(t, err)
	// A takeover through the proxy ends the old upstream session first:
	// under -race on two loaded cores that took up to several seconds.
	return c, r, rt24ReadOf(t, c, r, 2, 30*time.Second)
}

// An admin ban kicks a connected MQTT 5 client through the proxy.
func TestRT24ProxyBanKickDisconnectCode(t *testing.T) {
	tp := startProxy(t, nil)
	c, r, ack := rt24ProxyConnect(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "pk1", User: "sensor1", Pass: passwords["sensor1"]})
	require.NotNil(t, ack)
	require.Equal(t, byte(0), ack[3])
	code, body := tp.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "reason": "rt24"}`)
	require.Equal(t, 201, code, body)
	d := rt24ReadOf(t, c, r, 14, 5*time.Second)
	t.Logf("proxy DISCONNECT after an admin ban: % x", d)
	require.NotNil(t, d)
	if len(d) >= 3 {
		assert.True(t, reason.Code(d[2]).ValidIn(14), "DISCONNECT reason 0x%02X is not a DISCONNECT code (MQTT 5.0 §3.14.2.1)", d[2])
	}
}

// Flapping through the proxy: the live connection of the client ID is
// kicked when the ban lands.
func TestRT24ProxyFlappingKickDisconnectCode(t *testing.T) {
	tp := startProxy(t, func(c *guardconf.Config) { c.Security.RateLimit.IPConnectionsPerSecond = 0 })
	var lastC net.Conn
	var lastR *bufio.Reader
	for i := 0; i < 20; i++ {
		c, r, ack := rt24ProxyConnect(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "pflap", User: "sensor1", Pass: passwords["sensor1"]})
		require.NotNil(t, ack)
		if ack[3] != 0 {
			t.Logf("CONNECT %d: CONNACK % x", i+1, ack)
			break
		}
		lastC, lastR = c, r
	}
	require.NotNil(t, lastC)
	d := rt24ReadOf(t, lastC, lastR, 14, 5*time.Second)
	t.Logf("the live connection got: % x", d)
	if len(d) >= 3 {
		assert.True(t, reason.Code(d[2]).ValidIn(14), "DISCONNECT reason 0x%02X is not a DISCONNECT code", d[2])
	}
}

// The denylist plugin with reason 0x96 behind the proxy: the proxy writes
// the Guard's code into PUBACK and SUBACK itself.
func TestRT24ProxyPluginCodeInAcks(t *testing.T) {
	wasm := wasmbuild.Build(t, "../plugins/denylist")
	tp := startProxy(t, func(c *guardconf.Config) {
		p := filepath.Join(c.Dir, "denylist.wasm")
		require.NoError(t, os.WriteFile(p, wasm, 0o600))
		c.Plugins = []guardconf.PluginConfig{{Name: "denylist", Path: p,
			Config: `{"deny": ["sensors/sensor1/secret/#"], "reason": 150}`}}
	})
	c, r, ack := rt24ProxyConnect(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "pp1", User: "sensor1", Pass: passwords["sensor1"]})
	require.NotNil(t, ack)
	require.Equal(t, byte(0), ack[3])
	raw := &e2e.Raw{V: packets.V5}
	c.Write(raw.PublishPacket("sensors/sensor1/secret/x", "p", 1, false, 1, nil))
	pa := rt24ReadOf(t, c, r, 4, 5*time.Second)
	t.Logf("proxy PUBACK for a plugin-denied publish: % x", pa)
	if len(pa) >= 5 {
		assert.True(t, reason.Code(pa[4]).ValidIn(4), "PUBACK code 0x%02X is not a PUBACK code (MQTT 5.0 §3.4.2.1)", pa[4])
	}
	c.Write(raw.SubscribePacket(2, e2e.RawSub{Filter: "sensors/sensor1/secret/#", QoS: 1}))
	sa := rt24ReadOf(t, c, r, 9, 5*time.Second)
	t.Logf("proxy SUBACK for a plugin-denied filter: % x", sa)
	if len(sa) > 0 {
		code := sa[len(sa)-1]
		assert.True(t, reason.Code(code).ValidIn(9), "SUBACK code 0x%02X is not a SUBACK code (MQTT 5.0 §3.9.3)", code)
	}
}
