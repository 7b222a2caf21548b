// Red-team attacks (issue 24 round) on the example broker.
//
// Copy into /work/main/examples/broker/ (package main) to run, e.g.
//
//	cp /work/redteam24/broker_rt24_test.go /work/main/examples/broker/zz_rt24_test.go
//	MQTTGUARD_TEST_LOG=error go test ./examples/broker -run 'TestRT24' -count=1 -v
//
// Every test logs what it observed (bytes, codes, counts); the asserts
// state the behaviour the spec / the project's docs promise, so a failing
// assert is a finding.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---------- a raw client that also speaks TLS and shows raw bytes ----------

type rt24Conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	v packets.Version
}

func rt24Dial(t *testing.T, addr, from string, v packets.Version, tc *tls.Config) *rt24Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rt24Conn{t: t, c: c, r: bufio.NewReader(c), v: v}
}

func (c *rt24Conn) send(b []byte) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.c.Write(b)
	require.NoError(c.t, err)
}

// next returns the raw bytes of the next packet the server sends (nil and
// the error when none came within d).
func (c *rt24Conn) next(d time.Duration) ([]byte, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	b, _, err := mqttwire.ReadPacket(c.r, nil)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// nextOf reads packets until one of type typ (first byte >> 4) arrives.
func (c *rt24Conn) nextOf(typ byte, d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		b, err := c.next(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if b[0]>>4 == typ {
			return b, nil
		}
	}
}

func rt24Connect(v packets.Version, o e2e.RawOpts) []byte {
	return (&e2e.Raw{V: v}).ConnectPacket(o)
}

// connackCode is the CONNACK's reason code (v5) / return code (3.1.1).
func connackCode(b []byte) byte {
	if len(b) < 4 {
		return 0xff
	}
	return b[3]
}

func rt24User(id, name string) e2e.RawOpts {
	return e2e.RawOpts{ID: id, User: name, Pass: passwords[name]}
}

// tryConnect is one CONNECT; it returns the CONNACK's code and how long it
// took, or an error.
func tryConnect(t *testing.T, addr, from string, v packets.Version, tc *tls.Config, o e2e.RawOpts) (byte, time.Duration, []byte) {
	t.Helper()
	c := rt24Dial(t, addr, from, v, tc)
	start := time.Now()
	c.send(rt24Connect(v, o))
	b, err := c.nextOf(2, 15*time.Second)
	el := time.Since(start)
	c.c.Close()
	if err != nil {
		return 0xff, el, nil
	}
	return connackCode(b), el, b
}

// ---------------------------------------------------------------------
// 1. The cache: another user's password, a near-miss, and the busy path.
// ---------------------------------------------------------------------

// sensor1 logs in (its password is now cached); then CONNECTs that reuse
// the cached secret under another name, or change it slightly, must all
// be verified and refused.
func TestRT24CacheCrossUser(t *testing.T) {
	tb := startBroker(t, nil)
	addr := tb.Addr("tcp")
	code, _, _ := tryConnect(t, addr, "", packets.V5, nil, rt24User("c-ok", "sensor1"))
	require.Equal(t, byte(0), code, "sensor1 logs in: its password is cached")
	st0 := tb.b.Passwords.VerifyStats()
	cases := []e2e.RawOpts{
		{ID: "x1", User: "sensor2", Pass: passwords["sensor1"]},                                // another user, a cached password
		{ID: "x2", User: "sensor1", Pass: passwords["sensor1"] + "x"},                          // near miss
		{ID: "x3", User: "sensor1" + passwords["sensor1"][:1], Pass: passwords["sensor1"][1:]}, // shifted boundary
		{ID: "x4", User: "Sensor1", Pass: passwords["sensor1"]},                                // case
	}
	for i, o := range cases {
		for _, v := range []packets.Version{packets.V5, packets.V311} {
			code, _, raw := tryConnect(t, addr, fmt.Sprintf("127.0.1.%d", i+1), v, nil, o)
			t.Logf("v%d user=%q pass=%q -> CONNACK % x", v, o.User, o.Pass, raw)
			if v == packets.V5 {
				assert.Equal(t, byte(0x86), code)
			} else {
				assert.Equal(t, byte(4), code)
			}
		}
	}
	st1 := tb.b.Passwords.VerifyStats()
	t.Logf("hashes %d→%d, cache hits %d→%d", st0.Hashes, st1.Hashes, st0.CacheHits, st1.CacheHits)
	assert.Equal(t, st0.CacheHits, st1.CacheHits, "no wrong credential was answered from the cache")
}

// An MQTT 5 CONNECT that names an Authentication Method, with sensor1's
// right password (cached or not), must be refused with 0x8C.
func TestRT24AuthMethodWithValidPassword(t *testing.T) {
	tb := startBroker(t, nil)
	addr := tb.Addr("tcp")
	o := rt24User("am1", "sensor1")
	o.Props = e2e.Prop(packets.PropAuthMethod, "SCRAM-SHA-256")
	code, _, raw := tryConnect(t, addr, "", packets.V5, nil, o)
	t.Logf("not cached: CONNACK % x", raw)
	assert.Equal(t, byte(0x8C), code)
	code, _, _ = tryConnect(t, addr, "", packets.V5, nil, rt24User("am-ok", "sensor1"))
	require.Equal(t, byte(0), code)
	o.ID = "am2"
	code, _, raw = tryConnect(t, addr, "", packets.V5, nil, o)
	t.Logf("cached: CONNACK % x", raw)
	assert.Equal(t, byte(0x8C), code)
	// With Authentication Data too.
	o.ID = "am3"
	o.Props = append(e2e.Prop(packets.PropAuthMethod, "PLAIN"), append([]byte{byte(packets.PropAuthData), 0, 3}, "abc"...)...)
	code, _, raw = tryConnect(t, addr, "", packets.V5, nil, o)
	t.Logf("method+data: CONNACK % x", raw)
	assert.Equal(t, byte(0x8C), code)
}

// ---------------------------------------------------------------------
// 2. Certificates: ban re-check with use_identity_as_username, and an
//    Authentication Method next to a certificate.
// ---------------------------------------------------------------------

func rt24Cert(t *testing.T, dir, cn string) *tls.Config {
	t.Helper()
	ca, key, err := tlsconf.LoadCA(filepath.Join(dir, "tls", "ca.pem"), filepath.Join(dir, "tls", "ca-key.pem"))
	require.NoError(t, err)
	out := t.TempDir()
	cert, k := filepath.Join(out, "c.pem"), filepath.Join(out, "k.pem")
	require.NoError(t, tlsconf.Issue(ca, key, &x509.Certificate{Subject: pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, cert, k))
	tc, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: filepath.Join(dir, "tls", "ca.pem"), ServerName: "localhost",
		CertFile: cert, KeyFile: k})
	require.NoError(t, err)
	return tc
}

func TestRT24CertIdentityBanRecheck(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.MQTT.TLSClientAuth = "request"
		c.Security.UseIdentityAsUsername = true
	})
	code, body := tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "mallory", "reason": "rt24"}`)
	require.Equal(t, 201, code, body)
	mallory := rt24Cert(t, tb.Dir, "mallory")
	tlsAddr := tb.Addr("tls")

	// Cert CN mallory (banned), claimed username sensor1 with its right password.
	o := rt24User("m1", "sensor1")
	c, _, raw := tryConnect(t, tlsAddr, "", packets.V5, mallory, o)
	t.Logf("cert CN=mallory, username sensor1 + right password: CONNACK % x", raw)
	assert.Equal(t, byte(0x8A), c, "the certificate's identity is banned")
	// Cert CN mallory, no username.
	c, _, raw = tryConnect(t, tlsAddr, "", packets.V5, mallory, e2e.RawOpts{ID: "m2"})
	t.Logf("cert CN=mallory, no username: CONNACK % x", raw)
	assert.Equal(t, byte(0x8A), c)
	// 3.1.1
	c, _, raw = tryConnect(t, tlsAddr, "", packets.V311, mallory, rt24User("m3", "sensor1"))
	t.Logf("3.1.1 cert CN=mallory, username sensor1: CONNACK % x", raw)
	assert.Equal(t, byte(5), c)
	// The claimed username banned, the certificate's not: the client is the certificate.
	code, body = tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "reason": "rt24"}`)
	require.Equal(t, 201, code, body)
	devc := rt24Cert(t, tb.Dir, "devx")
	c, _, raw = tryConnect(t, tlsAddr, "", packets.V5, devc, rt24User("m4", "sensor1"))
	t.Logf("cert CN=devx, claimed banned sensor1: CONNACK % x (admitted as devx is correct)", raw)
	assert.Equal(t, byte(0), c, "the client is the certificate's identity, which is not banned")
	// Client-ID ban scoped to the certificate's username (as flapping and
	// anomaly bans are).
	require.NoError(t, tb.b.Bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "m5", Username: "devx", At: time.Now(), By: "rt24"}))
	c, _, raw = tryConnect(t, tlsAddr, "", packets.V5, devc, e2e.RawOpts{ID: "m5", User: "bob", Pass: "whatever"})
	t.Logf("cert CN=devx, client ID m5 (banned within devx), claimed bob: CONNACK % x", raw)
	assert.Equal(t, byte(0x8A), c)
}

// A verified certificate plus an MQTT 5 Authentication Method: the chain
// [tlsconf, passwd] admits on the certificate. MQTT 5 [MQTT-4.12.0-5]: a
// successful CONNACK to a CONNECT with an Authentication Method MUST carry
// the same Authentication Method.
func TestRT24CertWithAuthMethod(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.MQTT.TLSClientAuth = "request"
		c.Security.UseIdentityAsUsername = true
	})
	tc := rt24Cert(t, tb.Dir, "dev-am")
	o := e2e.RawOpts{ID: "cam", Props: e2e.Prop(packets.PropAuthMethod, "SCRAM-SHA-256")}
	c := rt24Dial(t, tb.Addr("tls"), "", packets.V5, tc)
	c.send(rt24Connect(packets.V5, o))
	raw, err := c.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	t.Logf("cert + Authentication Method SCRAM-SHA-256: CONNACK % x", raw)
	p, perr := packets.Parse(raw, packets.V5, packets.Limits{MaxPacketSize: 1 << 20, MaxProperties: 100, MaxUserProperties: 100})
	require.NoError(t, perr)
	if p.ReasonCode == 0 {
		assert.Equal(t, "SCRAM-SHA-256", string(p.Props.AuthMethod),
			"[MQTT-4.12.0-5] a successful CONNACK carries the CONNECT's Authentication Method (or the server refuses 0x8C)")
	}
	// Does the session then work?
	c.send([]byte{0xc0, 0})
	pr, err := c.next(3 * time.Second)
	t.Logf("PINGRESP after: % x %v", pr, err)
}

// ---------------------------------------------------------------------
// 3. Busy: can a failure be made to count as "busy" (no AuthGate
//    failure) while its password was really tried?
// ---------------------------------------------------------------------

// hashes made vs failures the AuthGate counted, from one address, when
// every CONNECT's socket is closed right after it is sent (the client
// never reads its CONNACK).
func TestRT24CloseMidVerification(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.Security.AuthFailures = guardconf.AuthFailuresConfig{Free: 5, Delay: time.Millisecond, MaxDelay: 50 * time.Millisecond, BanAfter: 1000}
		c.Security.RateLimit.IPConnectionsPerSecond = 0
	})
	gate := tb.b.Guard.Config().AuthGate
	from := "127.0.2.1"
	st0 := tb.b.Passwords.VerifyStats()
	const n = 40
	for i := range n {
		c := rt24Dial(t, tb.Addr("tcp"), from, packets.V5, nil)
		c.send(rt24Connect(packets.V5, e2e.RawOpts{ID: fmt.Sprint("g", i), User: "sensor1", Pass: fmt.Sprint("guess-", i)}))
		c.c.Close() // gone before the verification ends
		time.Sleep(15 * time.Millisecond)
	}
	time.Sleep(time.Second)
	st1 := tb.b.Passwords.VerifyStats()
	fails := gate.Failures(netip.MustParseAddr(from), time.Now())
	t.Logf("closed mid-verification: %d CONNECTs, %d hashes, %d failures counted, %d busy", n, st1.Hashes-st0.Hashes, fails, st1.Busy-st0.Busy)
	assert.GreaterOrEqual(t, uint64(fails), st1.Hashes-st0.Hashes, "every password tried is a failure counted")
}

// Many parallel CONNECTs from one fresh address with a slow hash, so that
// VerifyWait expires for some: those are "busy"; every one that was
// hashed must count as a failure.
func TestRT24ParallelBusyAccounting(t *testing.T) {
	dir := e2e.PrepareDir(t)
	// sensor1 with an expensive hash (the file's other users stay cheap).
	f, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	f.Iterations = 400_000
	require.NoError(t, f.Add("slowuser", "slow-pw-000001"))
	require.NoError(t, f.WriteFile(filepath.Join(dir, "passwd")))
	tb := startBrokerIn(t, dir, func(c *guardconf.Config) {
		c.Security.RateLimit.IPConnectionsPerSecond = 0
	})
	gate := tb.b.Guard.Config().AuthGate
	from := "127.0.2.2"
	st0 := tb.b.Passwords.VerifyStats()
	var mu sync.Mutex
	codes := map[byte]int{}
	var wg sync.WaitGroup
	const n = 40
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := tryConnect(t, tb.Addr("tcp"), from, packets.V5, nil, e2e.RawOpts{ID: fmt.Sprint("p", i), User: "slowuser", Pass: fmt.Sprint("guess-", i)})
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	st1 := tb.b.Passwords.VerifyStats()
	fails := gate.Failures(netip.MustParseAddr(from), time.Now())
	t.Logf("%d parallel guesses in %v: CONNACKs %v; hashes %d, failures counted %d, busy %d",
		n, time.Since(start).Round(time.Millisecond), codes, st1.Hashes-st0.Hashes, fails, st1.Busy-st0.Busy)
	assert.GreaterOrEqual(t, uint64(fails), st1.Hashes-st0.Hashes, "every password hashed is a failure counted")
	assert.Zero(t, codes[0])
}

// ---------------------------------------------------------------------
// 4. Timing: unknown user vs wrong password.
// ---------------------------------------------------------------------

// ---------------------------------------------------------------------
// 5. Reason codes the broker sends.
// ---------------------------------------------------------------------

// A ban (admin API) kicks a connected MQTT 5 client. DISCONNECT's valid
// codes (§3.14.2.1) do not include 0x8A.
func TestRT24BanKickDisconnectCode(t *testing.T) {
	tb := startBroker(t, nil)
	c := rt24Dial(t, tb.Addr("tcp"), "", packets.V5, nil)
	c.send(rt24Connect(packets.V5, rt24User("k1", "sensor1")))
	ack, err := c.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, byte(0), connackCode(ack))
	code, body := tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "reason": "rt24"}`)
	require.Equal(t, 201, code, body)
	d, err := c.nextOf(14, 5*time.Second)
	require.NoError(t, err)
	t.Logf("DISCONNECT after an admin ban: % x", d)
	if len(d) >= 3 {
		assert.True(t, reason.Code(d[2]).ValidIn(14), "DISCONNECT reason 0x%02X is not a DISCONNECT code (MQTT 5.0 §3.14.2.1)", d[2])
	}
	_, perr := packets.Parse(d, packets.V5, packets.Limits{MaxPacketSize: 1 << 20, MaxProperties: 100, MaxUserProperties: 100})
	t.Logf("packets.Parse of it: %v", perr)
}

// Flapping: the 16th CONNECT of one client ID in a minute is refused and
// bans the client ID, which kicks its live connection.
func TestRT24FlappingKickDisconnectCode(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) { c.Security.RateLimit.IPConnectionsPerSecond = 0 })
	var last *rt24Conn
	var lastAck []byte
	for i := 0; i < 20; i++ {
		c := rt24Dial(t, tb.Addr("tcp"), "", packets.V5, nil)
		c.send(rt24Connect(packets.V5, rt24User("flap", "sensor1")))
		ack, err := c.nextOf(2, 5*time.Second)
		require.NoError(t, err)
		if connackCode(ack) != 0 {
			lastAck = ack
			t.Logf("CONNECT %d: CONNACK % x", i+1, ack)
			break
		}
		last = c
	}
	require.NotNil(t, lastAck, "flapping refused")
	require.NotNil(t, last)
	d, err := last.nextOf(14, 5*time.Second)
	t.Logf("the live connection of the flapping client ID got: % x (%v)", d, err)
	if err == nil && len(d) >= 3 {
		assert.True(t, reason.Code(d[2]).ValidIn(14), "DISCONNECT reason 0x%02X is not a DISCONNECT code", d[2])
	}
}

// MQTT 3.1.1 CONNECTs the validator passes and mochi refuses itself:
// CONNACK return codes must be 0–5 (3.1.1 §3.2.2.3).
func TestRT24V311ConnackCodes(t *testing.T) {
	tb := startBroker(t, nil)
	addr := tb.Addr("tcp")
	type tc struct {
		name string
		v    packets.Version
		pkt  []byte
	}
	emptyPass := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V311, CleanStart: true,
		KeepAlive: 30, ClientID: []byte("ep"), UsernameFlag: true, Username: []byte("sensor1"), PasswordFlag: true, Password: []byte{}}, nil)
	emptyPass5 := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V5, CleanStart: true,
		KeepAlive: 30, ClientID: []byte("ep5"), UsernameFlag: true, Username: []byte("sensor1"), PasswordFlag: true, Password: []byte{}}, nil)
	emptyWill := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V311, CleanStart: true,
		KeepAlive: 30, ClientID: []byte("ew"), UsernameFlag: true, Username: []byte("sensor1"), PasswordFlag: true,
		Password: []byte(passwords["sensor1"]), WillFlag: true, WillTopic: []byte("sensors/sensor1/status"), WillPayload: []byte{}}, nil)
	emptyWill5 := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V5, CleanStart: true,
		KeepAlive: 30, ClientID: []byte("ew5"), UsernameFlag: true, Username: []byte("sensor1"), PasswordFlag: true,
		Password: []byte(passwords["sensor1"]), WillFlag: true, WillTopic: []byte("sensors/sensor1/status"), WillPayload: []byte{}}, nil)
	for _, k := range []tc{
		{"3.1.1 password flag, empty password", packets.V311, emptyPass},
		{"5.0 password flag, empty password", packets.V5, emptyPass5},
		{"3.1.1 will with empty payload (allowed by MQTT)", packets.V311, emptyWill},
		{"5.0 will with empty payload (allowed by MQTT)", packets.V5, emptyWill5},
	} {
		c := rt24Dial(t, addr, "", k.v, nil)
		c.send(k.pkt)
		b, err := c.next(5 * time.Second)
		t.Logf("%s: server sent % x (%v)", k.name, b, err)
		if err != nil {
			continue
		}
		if k.v == packets.V311 {
			assert.LessOrEqual(t, connackCode(b), byte(5), "%s: a 3.1.1 CONNACK return code is 0-5", k.name)
		} else {
			assert.True(t, reason.Code(connackCode(b)).ValidIn(2), k.name)
		}
	}
}

// A 3.1.1 client taken over by another connection with its client ID:
// MQTT 3.1.1 has no server DISCONNECT.
func TestRT24V311TakeoverDisconnect(t *testing.T) {
	tb := startBroker(t, nil)
	a := rt24Dial(t, tb.Addr("tcp"), "", packets.V311, nil)
	a.send(rt24Connect(packets.V311, rt24User("same", "sensor1")))
	ack, err := a.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, byte(0), connackCode(ack))
	b := rt24Dial(t, tb.Addr("tcp"), "", packets.V311, nil)
	b.send(rt24Connect(packets.V311, rt24User("same", "sensor1")))
	ack, err = b.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, byte(0), connackCode(ack))
	got, err := a.next(3 * time.Second)
	t.Logf("the 3.1.1 client taken over got: % x (%v)", got, err)
	assert.Nil(t, got, "no server DISCONNECT in MQTT 3.1.1: the connection is just closed")

	// And kicked by a ban.
	c := rt24Dial(t, tb.Addr("tcp"), "", packets.V311, nil)
	c.send(rt24Connect(packets.V311, rt24User("kick3", "dashboard")))
	ack, err = c.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, byte(0), connackCode(ack))
	code, body := tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "dashboard", "reason": "rt24"}`)
	require.Equal(t, 201, code, body)
	got, err = c.next(3 * time.Second)
	t.Logf("the 3.1.1 client kicked by a ban got: % x (%v)", got, err)
	assert.Nil(t, got)
}

var _ = os.Getenv

// A policy plugin (examples/plugins/denylist) configured with reason 0x96
// ("message rate too high", accepted by its configuration check: any
// 0x80–0xFF): which codes reach the client's PUBACK and SUBACK?
func TestRT24PluginCodeInAcks(t *testing.T) {
	dir := e2e.PrepareDir(t)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "plugins"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plugins", "denylist.wasm"), wasmbuild.Build(t, "../plugins/denylist"), 0o600))
	tb := startBrokerIn(t, dir, func(c *guardconf.Config) {
		c.Plugins = []guardconf.PluginConfig{{Name: "denylist", Path: "plugins/denylist.wasm",
			Config: `{"deny": ["sensors/sensor1/secret/#"], "reason": 150}`}}
	})
	c := rt24Dial(t, tb.Addr("tcp"), "", packets.V5, nil)
	c.send(rt24Connect(packets.V5, rt24User("pl1", "sensor1")))
	ack, err := c.nextOf(2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, byte(0), connackCode(ack))
	c.send((&e2e.Raw{V: packets.V5}).PublishPacket("sensors/sensor1/secret/x", "p", 1, false, 1, nil))
	pa, err := c.nextOf(4, 5*time.Second)
	require.NoError(t, err)
	t.Logf("PUBACK for a plugin-denied publish: % x", pa)
	if len(pa) >= 5 {
		assert.True(t, reason.Code(pa[4]).ValidIn(4), "PUBACK code 0x%02X", pa[4])
	}
	c.send((&e2e.Raw{V: packets.V5}).SubscribePacket(2, e2e.RawSub{Filter: "sensors/sensor1/secret/#", QoS: 1}))
	sa, err := c.nextOf(9, 5*time.Second)
	require.NoError(t, err)
	t.Logf("SUBACK for a plugin-denied filter: % x", sa)
	code := sa[len(sa)-1]
	assert.True(t, reason.Code(code).ValidIn(9), "SUBACK code 0x%02X is not a SUBACK code (MQTT 5.0 §3.9.3)", code)
}

// The log lines of a refused CONNECT: the same for an unknown user as
// for a wrong password (no list of which usernames exist).
func TestRT24RefusalLogLines(t *testing.T) {
	tb := startBroker(t, nil)
	addr := tb.Addr("tcp")
	tryConnect(t, addr, "127.0.4.1", packets.V5, nil, e2e.RawOpts{ID: "lg1", User: "sensor1", Pass: "wrong"})
	time.Sleep(100 * time.Millisecond)
	a := tb.Logs.String()
	tryConnect(t, addr, "127.0.4.2", packets.V5, nil, e2e.RawOpts{ID: "lg2", User: "nosuchuser", Pass: "wrong"})
	time.Sleep(100 * time.Millisecond)
	b := tb.Logs.String()[len(a):]
	norm := func(s string) string {
		s = strings.NewReplacer("sensor1", "USER", "nosuchuser", "USER", "lg1", "ID", "lg2", "ID", "127.0.4.1", "ADDR", "127.0.4.2", "ADDR").Replace(s)
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if i := strings.Index(l, " level="); i >= 0 {
				l = l[i:]
			}
			if l != "" {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	// only the lines of the first attempt
	first := a
	if i := strings.LastIndex(a, "127.0.4.1"); i >= 0 {
		first = a[strings.LastIndex(a[:strings.Index(a, "127.0.4.1")], "\n")+1:]
	}
	t.Logf("wrong password:\n%s", norm(first))
	t.Logf("unknown user:\n%s", norm(b))
	assert.Equal(t, norm(first), norm(b))
}

// use_identity_as_username with a verified certificate that names no one
// (empty CN): the chain's first authenticator (tlsconf) refuses it. The
// cached-login shortcut asks passwd first: the same CONNECT is admitted
// once sensor1's password is cached.
func TestRT24CacheSkipsChainOrder(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.MQTT.TLSClientAuth = "request"
		c.Security.UseIdentityAsUsername = true
	})
	noName := rt24Cert(t, tb.Dir, "")
	tlsAddr := tb.Addr("tls")
	code1, _, raw1 := tryConnect(t, tlsAddr, "127.0.5.1", packets.V5, noName, rt24User("nn1", "sensor1"))
	t.Logf("cert without a name + sensor1's password, not cached: CONNACK % x", raw1)
	code, _, _ := tryConnect(t, tb.Addr("tcp"), "127.0.5.2", packets.V5, nil, rt24User("nn-ok", "sensor1"))
	require.Equal(t, byte(0), code, "sensor1 logs in without a certificate: its password is cached")
	code2, _, raw2 := tryConnect(t, tlsAddr, "127.0.5.3", packets.V5, noName, rt24User("nn2", "sensor1"))
	t.Logf("the same CONNECT, cached: CONNACK % x", raw2)
	assert.Equal(t, code1, code2, "the decision does not depend on the cache")
}
