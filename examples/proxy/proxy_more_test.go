package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProxyTLSAndUpstreamAccount(t *testing.T) {
	// mosquitto knows one account, the proxy's; the clients authenticate
	// at the proxy with their own.
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	mdir := t.TempDir()
	pf := passwd.New()
	require.NoError(t, pf.Add("gateway", "gw-secret"))
	require.NoError(t, pf.WriteFile(filepath.Join(mdir, "passwd")))
	mq := mqtttest.RunMosquitto(t, bin, mdir, "allow_anonymous false", "password_file "+filepath.Join(mdir, "passwd"))

	dir := e2e.PrepareDir(t)
	_, err := guardstack.Setup(dir, defaultConfig)
	require.NoError(t, err)
	cfg, err := guardconf.LoadConfig(filepath.Join(dir, guardstack.ConfigFile), &proxyConfig{})
	require.NoError(t, err)
	cfg.MQTT.Port, cfg.MQTT.TLSPort, cfg.Admin.Listen = 0, 0, "127.0.0.1:0"
	upstreamOf(cfg).Addr, upstreamOf(cfg).Username, upstreamOf(cfg).Password = mq.Addr, "gateway", "gw-secret"
	p, err := Start(cfg, nil)
	require.NoError(t, err)
	defer p.Close(context.Background())
	n := &e2e.Node{Addr: p.Addr, Dir: dir}

	ca := filepath.Join(dir, "tls", "ca.pem")
	withCert, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost",
		CertFile: filepath.Join(dir, "tls", "client.pem"), KeyFile: filepath.Join(dir, "tls", "client-key.pem")})
	require.NoError(t, err)
	c, _, err := n.Dial5(t, dialOpts{ID: "tls1", User: "sensor1", Pass: passwords["sensor1"], TLS: withCert})
	require.NoError(t, err, "TLS at the proxy, the gateway account at mosquitto")
	assert.Less(t, c.Pub(t, "sensors/sensor1/t", "1", 1), byte(0x80), "mosquitto says 0x10: no subscribers")
	var names []string
	for _, ci := range n.Clients(t) {
		names = append(names, ci.ID+"="+ci.CertName)
	}
	assert.Equal(t, []string{"tls1=dev-client"}, names)
	plain, _ := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost"})
	_, _, err = n.Dial5(t, dialOpts{ID: "tls2", User: "dashboard", Pass: passwords["dashboard"], TLS: plain})
	require.NoError(t, err, "without a client certificate (request)")
}

func TestProxyRateLimitAndFlood(t *testing.T) {
	tp := startProxy(t, func(c *guardconf.Config) { c.Security.Trust.UsernameFactor, c.Security.Trust.IPFactor = 0, 0 })
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	flood := tp.Login(t, "flooder", "sensor1")
	var acks []byte
	// Refusals of one kind count once per trust.Config.Spacing (100 ms),
	// so the flood goes on for seconds, not for a count.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 50000 && time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := flood.Client.Publish(ctx, &paho.Publish{Topic: "sensors/sensor1/t", Payload: []byte(fmt.Sprint(i)), QoS: 1})
		cancel()
		if r == nil && err != nil {
			break
		}
		acks = append(acks, r.ReasonCode)
	}
	select {
	case d := <-flood.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode)
	case <-time.After(5 * time.Second):
		t.Fatalf("not disconnected: %x", acks)
	}
	assert.Contains(t, acks, byte(0x97))
	i87 := strings.IndexByte(string(acks), 0x87)
	require.GreaterOrEqual(t, i87, 0)
	shadow := strings.IndexByte(string(acks[i87:]), 0x00)
	require.GreaterOrEqual(t, shadow, 0, "shadow-banned: acknowledged")
	got := map[string]bool{}
	for _, m := range watcher.Received(time.Second) {
		got[strings.TrimPrefix(m, "sensors/sensor1/t ")] = true
	}
	for i := i87 + shadow; i < len(acks); i++ {
		assert.False(t, got[fmt.Sprint(i)], "shadow-banned message %d reached mosquitto", i)
	}
	assert.True(t, got["0"], "what passed reached mosquitto")
	_, ca, err := tp.Dial5(t, dialOpts{ID: "flooder", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode)
}

func TestProxyAnomalyAndPlugin(t *testing.T) {
	wasm := wasmbuild.Build(t, "../plugins/denylist")
	tp := startProxy(t, func(c *guardconf.Config) {
		c.Security.Devices = []guardconf.DeviceProfile{{Topic: "sensors/+/report", Interval: 2 * time.Second, Tolerance: 500 * time.Millisecond}}
		require.NoError(t, os.MkdirAll(filepath.Join(c.Dir, "plugins"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(c.Dir, "plugins", "denylist.wasm"), wasm, 0o600))
		c.Plugins = []guardconf.PluginConfig{{Name: "denylist", Path: "plugins/denylist.wasm", Config: `{"deny": ["sensors/+/secret"]}`}}
	})
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	s1 := tp.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/report", "first", 1))
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/report", "early", 1), "acknowledged by the proxy")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/report", "early2", 2), "QoS 2: PUBREC and PUBCOMP by the proxy")
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor1/secret", "x", 1), "the plugin refuses")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/ok", "after", 2), "packet identifiers stay straight")
	assert.Equal(t, []string{"sensors/sensor1/report first", "sensors/sensor1/ok after"}, watcher.Received(time.Second))
}

func TestProxySubscribeMerge(t *testing.T) {
	tp := startProxy(t, func(c *guardconf.Config) { c.Security.SubscribeCheck = "covers" })
	dash := tp.Login(t, "dash", "dashboard")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := dash.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "sensors/#", QoS: 1}, {Topic: "billing/#", QoS: 1}, {Topic: "sensors/+/t", QoS: 0}, {Topic: "#", QoS: 2}}})
	require.NotNil(t, sa, "%v", err)
	assert.Equal(t, []byte{0x01, 0x87, 0x00, 0x87}, sa.Reasons, "the upstream's codes where it decided, the proxy's refusals between")
	sa, _ = dash.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "billing/x", QoS: 1}}})
	require.NotNil(t, sa)
	assert.Equal(t, []byte{0x87}, sa.Reasons, "all refused: answered by the proxy")
	feeder := tp.raw(t, "feeder")
	feeder.Pub(t, "sensors/sensor1/t", "1", 1)
	got := dash.Received(500 * time.Millisecond)
	assert.Contains(t, got, "sensors/sensor1/t 1")
}

func TestProxyWills(t *testing.T) {
	tp := startProxy(t, nil)
	_, ca, err := tp.Dial5(t, dialOpts{ID: "w1", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "commands/all", Payload: []byte("gone")}})
	require.Error(t, err)
	assert.Equal(t, byte(0x87), ca.ReasonCode)

	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	w, _, err := tp.Dial5(t, dialOpts{ID: "w2", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "sensors/sensor1/status", Payload: []byte("offline"), QoS: 1}})
	require.NoError(t, err)
	code, body := tp.Admin(t, "POST", "/bans", `{"kind": "client", "value": "w2", "for": "1m"}`)
	require.Equal(t, 201, code, body)
	select {
	case d := <-w.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode, "DISCONNECT 0x98: 0x8A is a CONNACK code")
	case <-time.After(5 * time.Second):
		t.Fatal("not kicked")
	}
	assert.Empty(t, watcher.Received(500*time.Millisecond), "a banned client's will is discarded upstream")

	w3, _, err := tp.Dial5(t, dialOpts{ID: "w3", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "sensors/sensor1/status", Payload: []byte("offline"), QoS: 1}})
	require.NoError(t, err)
	code, body = tp.Admin(t, "POST", "/clients/w3/kick", "")
	require.Equal(t, 200, code, body)
	<-w3.Kicks
	assert.Equal(t, []string{"sensors/sensor1/status offline"}, watcher.Received(time.Second), "a kicked client's will goes out")
}

// Malformed and oversized packets from a raw TCP client never reach
// mosquitto: a subscriber there sees nothing, and mosquitto logs no
// protocol error.
func TestProxyMalformedNeverReachesMosquitto(t *testing.T) {
	tp := startProxy(t, func(c *guardconf.Config) {
		c.Security.Trust.UsernameFactor, c.Security.Trust.IPFactor = 0, 0
		c.Security.RateLimit.IPConnectionsPerSecond = 0
		c.Security.Flapping.MaxConnects = 1000
		c.MQTT.MaxPacketSize = 4096
	})
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "#")
	bystander := tp.Login(t, "bystander", "sensor2")
	cases := e2e.Corpus(t, "../..")
	oversized := e2e.CorpusCase{Name: "oversized PUBLISH", Version: 5, Hex: "30" + "ffff03" + strings.Repeat("00", 8), Code: 0x95}
	for i, c := range append(cases, oversized) {
		pkt, err := hex.DecodeString(c.Hex)
		require.NoError(t, err)
		conn, err := net.Dial("tcp", tp.Addr("tcp"))
		require.NoError(t, err)
		var stream []byte
		if pkt[0]>>4 != 1 {
			v := max(c.Version, 4)
			stream = e2e.RawConnect(v, fmt.Sprintf("bad-%d", i), "sensor1", passwords["sensor1"])
		}
		conn.Write(append(stream, pkt...))
		conn.(*net.TCPConn).CloseWrite()
		_, err = e2e.Closed(conn)
		conn.Close()
		require.NoError(t, err, "%s: not closed", c.Name)
	}
	assert.Equal(t, byte(0), bystander.Pub(t, "sensors/sensor2/t", "still here", 1))
	assert.Equal(t, []string{"sensors/sensor2/t still here"}, watcher.Received(time.Second), "nothing else reached mosquitto")
	log := tp.mq.Log()
	assert.NotContains(t, log, "protocol error")
	assert.NotContains(t, log, "malformed")
	assert.Contains(t, log, "bystander", "mosquitto's log is being read")
}

func TestProxyThousandClients(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	tp := startProxy(t, func(c *guardconf.Config) {
		c.Security.RateLimit.IPConnectionsPerSecond = 0
		c.Security.Trust.IPFactor = 0
	})
	runtime.GC()
	before := runtime.NumGoroutine()
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 100)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			conn, err := net.Dial("tcp", tp.Addr("tcp"))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.Write(e2e.RawConnect(4, fmt.Sprintf("c%d", i), "sensor2", passwords["sensor2"]))
			ack := make([]byte, 4)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Read(ack); err != nil || ack[3] != 0 {
				errs <- fmt.Errorf("client %d: connack %x %v", i, ack, err)
				return
			}
			conn.Write([]byte{0xe0, 0}) // DISCONNECT
			conn.Read(ack)              // until the proxy closes
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Eventually(t, func() bool {
		return len(tp.Clients(t)) == 0 && runtime.NumGoroutine() <= before+5
	}, 10*time.Second, 50*time.Millisecond, "sessions and goroutines return to where they were (%d before, %d now)", before, runtime.NumGoroutine())
}

func TestProxyUpstreamGoesAway(t *testing.T) {
	tp := startProxy(t, nil)
	c := tp.Login(t, "s1", "sensor1")
	tp.mq.Stop()
	select {
	case d := <-c.Kicks:
		assert.Equal(t, byte(0x8B), d.ReasonCode, "server shutting down")
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not told")
	}
	_, ca, err := tp.Dial5(t, dialOpts{ID: "s2", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x88), ca.ReasonCode, "server unavailable")
}

// The proxy enforces a client's keep alive itself: a client silent for
// 1.5 × its keep alive is told why (DISCONNECT 0x8D) and closed, and its
// upstream connection is closed with it. The upstream here is a server
// that never times a client out and never closes a connection, so
// nothing but the proxy's keep-alive check can have ended either
// connection.
func TestProxyKeepAlive(t *testing.T) {
	up := startPatientUpstream(t)
	tp := startProxy(t, func(c *guardconf.Config) { upstreamOf(c).Addr = up.addr })
	c := e2e.DialRaw(t, tp.Addr("tcp"), packets.V5)
	c.Send(c.ConnectPacket(e2e.RawOpts{ID: "sleepy", User: "sensor1", Pass: passwords["sensor1"], KeepAlive: 1}))
	require.Equal(t, reason.Success, c.Expect(packets.CONNACK).ReasonCode)
	var s *upstreamConn
	select {
	case s = <-up.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy opened no upstream connection")
	}
	assert.Equal(t, "sleepy", s.clientID)
	assert.Equal(t, uint16(1), s.keepAlive, "the keep alive is passed on")

	// The client says nothing. What comes next is the proxy ending it;
	// the bound is generous (the keep alive ends at 1.5 s) and asserts
	// no duration.
	p, err := c.Next(20 * time.Second)
	require.NoError(t, err, "the proxy neither disconnected nor closed the silent client")
	require.Equal(t, packets.DISCONNECT, p.Type, "% x", p.Raw)
	assert.Equal(t, reason.KeepAliveTimeout, p.ReasonCode)
	_, err = c.Next(5 * time.Second)
	assert.ErrorIs(t, err, io.EOF, "and then closes the connection")

	select {
	case end := <-s.ended:
		assert.ErrorIs(t, end.err, io.EOF, "the proxy closed the upstream connection")
		assert.Empty(t, end.after, "and sent nothing on it after the CONNECT: the client sent nothing")
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection was left open")
	}
}

// patientUpstream is an MQTT 5 server that accepts every CONNECT and
// then only reads, keeping no keep alive: it never closes a connection.
type patientUpstream struct {
	addr  string
	conns chan *upstreamConn
}

// upstreamConn is one connection the proxy opened to a patientUpstream.
type upstreamConn struct {
	clientID  string
	keepAlive uint16
	ended     chan upstreamEnd
}

// upstreamEnd is how an upstream connection ended: the read error, and
// the types of the packets that came after the CONNECT.
type upstreamEnd struct {
	err   error
	after []packets.Type
}

func startPatientUpstream(t *testing.T) *patientUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &patientUpstream{addr: ln.Addr().String(), conns: make(chan *upstreamConn, 16)}
	ctx := t.Context() // done when the test ends, before its cleanups
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				defer stop()
				r := bufio.NewReader(conn)
				raw, _, err := mqttwire.ReadPacket(r, nil)
				if err != nil {
					return
				}
				cn, err := packets.Parse(raw, packets.V5, packets.Limits{})
				if err != nil || cn.Type != packets.CONNECT {
					return
				}
				s := &upstreamConn{clientID: string(cn.Connect.ClientID), keepAlive: cn.Connect.KeepAlive, ended: make(chan upstreamEnd, 1)}
				if _, err := conn.Write(packets.AppendConnack(nil, packets.V5, false, reason.Success)); err != nil {
					return
				}
				select {
				case u.conns <- s:
				case <-ctx.Done():
					return
				}
				var end upstreamEnd
				for {
					pkt, _, err := mqttwire.ReadPacket(r, nil)
					if err != nil {
						end.err = err
						break
					}
					end.after = append(end.after, packets.Type(pkt[0]>>4))
				}
				s.ended <- end
			}()
		}
	}()
	return u
}
