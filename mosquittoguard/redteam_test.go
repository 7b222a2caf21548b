package main

// The red-team round on the plugin (issue 26), kept as regression tests:
// attacks inside a real mosquitto 2.0, over sockets, with raw packets.
// Each TestRT... starts its own mosquitto; one alone:
//
//	go test -count=1 -run 'TestRTName' ./mosquittoguard/

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/internal/wasmbuild"
)

// ---------------------------------------------------------------------
// The rig: mosquitto with the plugin, the first run's accounts.

type rtEnv struct {
	m     *mqtttest.Mosquitto
	dir   string
	pw    map[string]string
	admin string // admin API address
	token string
}

func rtStart(t *testing.T, edit func(dir, conf string) string, extra ...string) *rtEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a c-shared plugin")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := os.Getenv("RT_PLUGIN_SO") // a prebuilt plugin (e.g. go build -race ...)
	if so == "" {
		so = buildPlugin(t)
	}
	admin := freeAddr(t)
	dir, pw := dataDir(t, admin)
	conf := filepath.Join(dir, guardstack.ConfigFile)
	if edit != nil {
		text, err := os.ReadFile(conf)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(conf, []byte(edit(dir, string(text))), 0o600))
	}
	lines := []string{"allow_anonymous true", "plugin " + so, "plugin_opt_config " + conf}
	for _, l := range extra {
		lines = append(lines, strings.ReplaceAll(l, "DIR/", dir+"/"))
	}
	m := mqtttest.RunMosquitto(t, bin, dir, lines...)
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	require.NoError(t, err)
	e := &rtEnv{m: m, dir: dir, pw: pw, admin: admin, token: strings.TrimSpace(string(tok))}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("mosquitto log:\n%s", m.Log())
		}
	})
	return e
}

func (e *rtEnv) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.token)
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// trustState is the state of a trust record (dimension "client" or
// "username"), "normal" when it is not listed.
func (e *rtEnv) trustState(t *testing.T, dim, key string) string {
	t.Helper()
	_, body := e.api(t, "GET", "/trust?state=normal", "")
	var recs []struct{ Dimension, Key, State string }
	require.NoError(t, json.Unmarshal([]byte(body), &recs), body)
	for _, r := range recs {
		if r.Dimension == dim && r.Key == key {
			return r.State
		}
	}
	return "normal"
}

// alive checks that mosquitto still answers a fresh connection.
func (e *rtEnv) alive(t *testing.T) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.m.Addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	rc := &rtConn{t: t, c: c, r: bufio.NewReader(c), v: 5}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, code, err := rc.connectErr(rtOpts{ID: fmt.Sprintf("alive-%d", time.Now().UnixNano()), User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	return err == nil && code == 0
}

// ---------------------------------------------------------------------
// A raw MQTT client (3.1.1 and 5) that never hides what came back.

type rtMsg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Dup     bool
}

type rtConn struct {
	t      *testing.T
	c      net.Conn
	r      *bufio.Reader
	v      byte // 4 or 5
	nextID uint16
	got    []rtMsg
	err    error
}

type rtWill struct {
	Topic, Payload string
	QoS            byte
	Retain         bool
	Delay          uint32 // MQTT 5 will delay interval
}

type rtOpts struct {
	V         byte // 4 or 5 (default 5)
	ID        string
	User      string
	Pass      string
	NoUser    bool
	Clean     bool
	Expiry    uint32 // MQTT 5 session expiry interval
	Will      *rtWill
	KeepAlive uint16
	Props     []byte // extra raw MQTT 5 CONNECT properties
}

func rtDial(t *testing.T, addr string, v byte) *rtConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if v == 0 {
		v = 5
	}
	return &rtConn{t: t, c: c, r: bufio.NewReaderSize(c, 1<<16), v: v}
}

func str(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func vbi(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func packet(hdr byte, body []byte) []byte {
	return append(vbi([]byte{hdr}, len(body)), body...)
}

func (r *rtConn) write(p []byte) error {
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(p)
	return err
}

// read returns the next packet: its first byte and its body.
func (r *rtConn) read() (byte, []byte, error) {
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return r.readRaw()
}

func (r *rtConn) readRaw() (byte, []byte, error) {
	h, err := r.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		d, err := r.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r.r, body)
	return h, body, err
}

// handle records a PUBLISH and acknowledges it; it reports whether the
// packet was one (PUBREL is answered too).
func (r *rtConn) handle(h byte, body []byte) bool {
	switch h >> 4 {
	case 3:
		qos := (h >> 1) & 3
		tl := int(binary.BigEndian.Uint16(body))
		m := rtMsg{Topic: string(body[2 : 2+tl]), QoS: qos, Retain: h&1 == 1, Dup: h&8 != 0}
		p := 2 + tl
		var id uint16
		if qos > 0 {
			id = binary.BigEndian.Uint16(body[p:])
			p += 2
		}
		if r.v == 5 {
			n, mul, i := 0, 1, p
			for {
				d := body[i]
				i++
				n += int(d&0x7f) * mul
				mul *= 128
				if d&0x80 == 0 {
					break
				}
			}
			p = i + n
		}
		m.Payload = string(body[p:])
		r.got = append(r.got, m)
		switch qos {
		case 1:
			r.write(packet(0x40, binary.BigEndian.AppendUint16(nil, id)))
		case 2:
			r.write(packet(0x50, binary.BigEndian.AppendUint16(nil, id)))
		}
		return true
	case 6: // PUBREL
		r.write(packet(0x70, body[:2]))
		return true
	}
	return false
}

// next reads the next packet that is not a PUBLISH (PUBLISHes are
// recorded and acknowledged).
func (r *rtConn) next() (byte, []byte, error) {
	for {
		h, b, err := r.read()
		if err != nil {
			return 0, nil, err
		}
		if !r.handle(h, b) {
			return h, b, nil
		}
	}
}

func (r *rtConn) connectErr(o rtOpts) (sessionPresent bool, code byte, err error) {
	v := r.v
	if o.V != 0 {
		v, r.v = o.V, o.V
	}
	var flags byte
	if o.Clean {
		flags |= 0x02
	}
	if o.Will != nil {
		flags |= 0x04 | o.Will.QoS<<3
		if o.Will.Retain {
			flags |= 0x20
		}
	}
	if !o.NoUser {
		flags |= 0x80 | 0x40
	}
	ka := o.KeepAlive
	if ka == 0 {
		ka = 60
	}
	b := str(nil, "MQTT")
	b = append(b, v, flags)
	b = binary.BigEndian.AppendUint16(b, ka)
	if v == 5 {
		var p []byte
		if o.Expiry > 0 {
			p = binary.BigEndian.AppendUint32(append(p, 0x11), o.Expiry)
		}
		p = append(p, o.Props...)
		b = append(vbi(b, len(p)), p...)
	}
	b = str(b, o.ID)
	if o.Will != nil {
		if v == 5 {
			var p []byte
			if o.Will.Delay > 0 {
				p = binary.BigEndian.AppendUint32(append(p, 0x18), o.Will.Delay)
			}
			b = append(vbi(b, len(p)), p...)
		}
		b = str(b, o.Will.Topic)
		b = str(b, o.Will.Payload)
	}
	if !o.NoUser {
		b = str(b, o.User)
		b = str(b, o.Pass)
	}
	if err := r.write(packet(0x10, b)); err != nil {
		return false, 0, err
	}
	h, body, err := r.next()
	if err != nil {
		return false, 0, err
	}
	if h != 0x20 || len(body) < 2 {
		return false, 0, fmt.Errorf("not a CONNACK: %x % x", h, body)
	}
	return body[0]&1 == 1, body[1], nil
}

func (r *rtConn) connect(o rtOpts) (bool, byte) {
	r.t.Helper()
	sp, code, err := r.connectErr(o)
	require.NoError(r.t, err)
	return sp, code
}

func (r *rtConn) id() uint16 {
	r.nextID++
	if r.nextID == 0 {
		r.nextID = 1
	}
	return r.nextID
}

// publishPkt encodes a PUBLISH (props: raw MQTT 5 properties).
func (r *rtConn) publishPkt(topic, payload string, qos byte, retain bool, id uint16, props []byte) []byte {
	h := byte(0x30) | qos<<1
	if retain {
		h |= 1
	}
	b := str(nil, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if r.v == 5 {
		b = append(vbi(b, len(props)), props...)
	}
	return packet(h, append(b, payload...))
}

// publish sends a PUBLISH and returns the reason code of its PUBACK or
// PUBREC (0 for QoS 0). A QoS 2 PUBREC is followed by PUBREL/PUBCOMP.
func (r *rtConn) publish(topic, payload string, qos byte, retain bool) byte {
	r.t.Helper()
	code, err := r.publishErr(topic, payload, qos, retain, nil)
	require.NoError(r.t, err)
	return code
}

func (r *rtConn) publishErr(topic, payload string, qos byte, retain bool, props []byte) (byte, error) {
	id := uint16(0)
	if qos > 0 {
		id = r.id()
	}
	if err := r.write(r.publishPkt(topic, payload, qos, retain, id, props)); err != nil {
		return 0, err
	}
	if qos == 0 {
		return 0, nil
	}
	h, body, err := r.next()
	if err != nil {
		return 0, err
	}
	want := byte(0x40)
	if qos == 2 {
		want = 0x50
	}
	if h != want || binary.BigEndian.Uint16(body) != id {
		return 0, fmt.Errorf("want %x for %d, got %x % x", want, id, h, body)
	}
	code := byte(0)
	if len(body) > 2 {
		code = body[2]
	}
	if qos == 2 && code < 0x80 {
		if err := r.write(packet(0x62, binary.BigEndian.AppendUint16(nil, id))); err != nil {
			return code, err
		}
		h, _, err := r.next()
		if err != nil {
			return code, err
		}
		if h != 0x70 {
			return code, fmt.Errorf("want PUBCOMP, got %x", h)
		}
	}
	return code, nil
}

// subscribe sends one SUBSCRIBE and returns the SUBACK's codes.
func (r *rtConn) subscribe(qos byte, filters ...string) []byte {
	r.t.Helper()
	codes, err := r.subscribeErr(qos, filters...)
	require.NoError(r.t, err)
	return codes
}

func (r *rtConn) subscribeErr(qos byte, filters ...string) ([]byte, error) {
	id := r.id()
	b := binary.BigEndian.AppendUint16(nil, id)
	if r.v == 5 {
		b = append(b, 0)
	}
	for _, f := range filters {
		b = append(str(b, f), qos)
	}
	if err := r.write(packet(0x82, b)); err != nil {
		return nil, err
	}
	h, body, err := r.next()
	if err != nil {
		return nil, err
	}
	if h != 0x90 {
		return nil, fmt.Errorf("not a SUBACK: %x", h)
	}
	p := 2
	if r.v == 5 {
		p++ // property length 0 (mosquitto sends none)
	}
	return body[p:], nil
}

// sync sends PINGREQ and reads up to PINGRESP.
func (r *rtConn) sync() error {
	if err := r.write([]byte{0xC0, 0}); err != nil {
		return err
	}
	h, _, err := r.next()
	if err == nil && h != 0xD0 {
		err = fmt.Errorf("want PINGRESP, got %x", h)
	}
	return err
}

// collect reads PUBLISHes for d and returns all recorded so far.
func (r *rtConn) collect(d time.Duration) []rtMsg {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		r.c.SetReadDeadline(end)
		h, b, err := r.readRaw()
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				r.err = err
			}
			break
		}
		r.handle(h, b)
	}
	return r.got
}

func topics(ms []rtMsg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic+"="+m.Payload)
	}
	return out
}

func has(ms []rtMsg, topic string) bool {
	for _, m := range ms {
		if m.Topic == topic {
			return true
		}
	}
	return false
}

func (r *rtConn) disconnect() {
	r.write([]byte{0xE0, 0})
	r.c.Close()
}

// ---------------------------------------------------------------------
// 1. Session takeover: a low-privilege user takes over the dashboard's
// persistent session (its client ID) to read what was queued for it.

func TestRTTakeoverOfflineQueue(t *testing.T) {
	e := rtStart(t, nil)
	adm := rtDial(t, e.m.Addr, 5)
	_, code := adm.connect(rtOpts{ID: "ops", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)

	t.Run("control: the owner gets its queue", func(t *testing.T) {
		d := rtDial(t, e.m.Addr, 5)
		_, code := d.connect(rtOpts{ID: "dash-own", User: "dashboard", Pass: e.pw["dashboard"], Expiry: 3600})
		require.Zero(t, code)
		require.Equal(t, []byte{1}, d.subscribe(1, "sensors/#"))
		d.disconnect()
		time.Sleep(200 * time.Millisecond)
		require.Equal(t, byte(0), adm.publish("sensors/sensor2/temp", "queued-for-owner", 1, false))
		o := rtDial(t, e.m.Addr, 5)
		sp, code := o.connect(rtOpts{ID: "dash-own", User: "dashboard", Pass: e.pw["dashboard"], Expiry: 3600})
		require.Zero(t, code)
		got := o.collect(time.Second)
		require.True(t, sp && has(got, "sensors/sensor2/temp"), "session present %v, got %v", sp, topics(got))
		o.disconnect()
	})
	for _, v := range []byte{5, 4} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			id := fmt.Sprintf("dash-p%d", v)
			d := rtDial(t, e.m.Addr, v)
			_, code := d.connect(rtOpts{ID: id, User: "dashboard", Pass: e.pw["dashboard"], Expiry: 3600})
			require.Zero(t, code)
			require.Equal(t, []byte{1}, d.subscribe(1, "sensors/#"))
			d.disconnect()
			time.Sleep(200 * time.Millisecond)
			require.Equal(t, byte(0), adm.publish("sensors/sensor2/temp", "secret-queued", 1, false))

			// The attacker: sensor1 (reads only commands/sensor1/#), the
			// dashboard's client ID, resuming its session.
			r := rtDial(t, e.m.Addr, v)
			_, code = r.connect(rtOpts{ID: id, User: "sensor1", Pass: e.pw["sensor1"], Expiry: 3600})
			require.NotZero(t, code, "another identity may not resume the dashboard's session")
			a := rtDial(t, e.m.Addr, v)
			sp, code := a.connect(rtOpts{ID: id, User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
			require.Zero(t, code, "with clean start it may use the client ID, afresh")
			assert.False(t, sp)
			got := a.collect(1500 * time.Millisecond)
			t.Logf("session present %v; sensor1 got %v", sp, topics(got))
			assert.False(t, has(got, "sensors/sensor2/temp"), "sensor1 received a message queued for the dashboard")

			// And after the takeover, live messages on the inherited
			// subscription.
			require.Equal(t, byte(0), adm.publish("sensors/sensor2/temp", "secret-live", 1, false))
			got = a.collect(time.Second)
			assert.False(t, has(got, "sensors/sensor2/temp"), "sensor1 received a live message through the dashboard's subscription: %v", topics(got))
			a.disconnect()
		})
	}
}

// 1b. The dashboard is online with QoS 1 messages it has not
// acknowledged (in flight): sensor1 takes its client ID over.
func TestRTTakeoverInflight(t *testing.T) {
	e := rtStart(t, nil)
	adm := rtDial(t, e.m.Addr, 5)
	_, code := adm.connect(rtOpts{ID: "ops", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)

	// A dashboard that never acknowledges: a raw socket reading nothing.
	d := rtDial(t, e.m.Addr, 5)
	_, code = d.connect(rtOpts{ID: "dash-inflight", User: "dashboard", Pass: e.pw["dashboard"], Expiry: 3600})
	require.Zero(t, code)
	require.Equal(t, []byte{1}, d.subscribe(1, "sensors/#"))
	for i := range 3 {
		require.Equal(t, byte(0), adm.publish("sensors/sensor2/temp", fmt.Sprint("inflight-", i), 1, false))
	}
	// d reads nothing more: the three are in flight, unacknowledged.

	r := rtDial(t, e.m.Addr, 5)
	_, code = r.connect(rtOpts{ID: "dash-inflight", User: "sensor1", Pass: e.pw["sensor1"], Expiry: 3600})
	require.NotZero(t, code, "another identity may not resume the dashboard's session")
	a := rtDial(t, e.m.Addr, 5)
	sp, code := a.connect(rtOpts{ID: "dash-inflight", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code, "with clean start it takes the client ID over, afresh")
	got := a.collect(1500 * time.Millisecond)
	t.Logf("session present %v; sensor1 got %v", sp, topics(got))
	assert.False(t, has(got, "sensors/sensor2/temp"), "sensor1 received the dashboard's in-flight messages")

	// The plugin's view after the takeover: one live client with the ID,
	// and it is sensor1 (not the dashboard's old record).
	_, body := e.api(t, "GET", "/clients", "")
	var cls []struct{ ID, Username string }
	require.NoError(t, json.Unmarshal([]byte(body), &cls))
	var mine []string
	for _, c := range cls {
		if c.ID == "dash-inflight" {
			mine = append(mine, c.Username)
		}
	}
	t.Logf("GET /clients for dash-inflight: %v", mine)
	assert.Equal(t, []string{"sensor1"}, mine)
}

// escalate drives username sensor1 to the trust state want
// ("shadow-banned" by default) through a flooding connection.
func (e *rtEnv) escalate(t *testing.T, want string) {
	t.Helper()
	f := rtDial(t, e.m.Addr, 5)
	_, code := f.connect(rtOpts{ID: "flooder", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st := e.trustState(t, "username", "sensor1")
		if st == want {
			return
		}
		if st == "disconnected" {
			t.Fatalf("overshot to %s", st)
		}
		if st == "normal" || st == "throttled" {
			// ACL refusals: one point per 100 ms.
			f.publish("sensors/sensor2/x", "x", 1, false)
		} else {
			// Refused by its state: only the rate limits count now.
			for range 60 {
				f.write(f.publishPkt("sensors/sensor1/flood", "x", 0, false, 0, nil))
			}
			f.sync()
		}
		time.Sleep(120 * time.Millisecond)
	}
	t.Fatalf("sensor1 did not reach %s: %s", want, e.trustState(t, "username", "sensor1"))
}

// 6. A shadow-banned client's will: dropped when it vanishes (Disconnect
// decides it), but a takeover makes mosquitto send the old connection's
// will before its MOSQ_EVT_DISCONNECT, so the plugin decides it as a
// live publish: Drop -> aclDropped -> MOSQ_ERR_SUCCESS, and a will has no
// MOSQ_EVT_MESSAGE to rename it.
func TestRTTakeoverWillEscapesShadowBan(t *testing.T) {
	e := rtStart(t, nil)
	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, dash.subscribe(0, "sensors/#"))

	a0 := rtDial(t, e.m.Addr, 5)
	_, code = a0.connect(rtOpts{ID: "sb-0", User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
		Will: &rtWill{Topic: "sensors/sensor1/alarm0", Payload: "FIRE-0"}})
	require.Zero(t, code)
	a1 := rtDial(t, e.m.Addr, 5)
	_, code = a1.connect(rtOpts{ID: "sb-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
		Will: &rtWill{Topic: "sensors/sensor1/alarm1", Payload: "FIRE-1"}})
	require.Zero(t, code)

	e.escalate(t, "shadow-banned")
	t.Logf("sensor1 is %s", e.trustState(t, "username", "sensor1"))

	// The shadow ban holds for a1's publishes: acknowledged, not delivered.
	assert.Less(t, a1.publish("sensors/sensor1/temp", "shadow", 1, false), byte(0x80))
	got := dash.collect(time.Second)
	require.False(t, has(got, "sensors/sensor1/temp"), "the shadow ban holds for publishes: %v", topics(got))

	// Control: a0 vanishes; its will is decided by Disconnect: dropped.
	a0.c.Close()
	got = dash.collect(1500 * time.Millisecond)
	assert.False(t, has(got, "sensors/sensor1/alarm0"), "control: a shadow-banned client's will is dropped when it vanishes")

	// Attack: take a1's client ID over (same account).
	b := rtDial(t, e.m.Addr, 5)
	_, code = b.connect(rtOpts{ID: "sb-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	t.Logf("takeover CONNACK 0x%02x", code)
	got = dash.collect(1500 * time.Millisecond)
	t.Logf("dashboard got %v", topics(got))
	assert.False(t, has(got, "sensors/sensor1/alarm1"), "BROKE: a shadow-banned client's will escaped through a takeover")
}

// 6b. The same hole as a channel: a shadow-banned client keeps
// publishing, retained, through wills and takeovers of its own
// connections (one message per pair of CONNECTs).
func TestRTShadowBannedPublishesRetainedThroughWills(t *testing.T) {
	e := rtStart(t, nil)
	e.escalate(t, "shadow-banned")
	n := 0
	for i := range 3 {
		id := fmt.Sprintf("chan-%d", i)
		a := rtDial(t, e.m.Addr, 5)
		_, code := a.connect(rtOpts{ID: id, User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
			Will: &rtWill{Topic: "sensors/sensor1/state", Payload: fmt.Sprint("forged-", i), Retain: true, QoS: 1}})
		require.Zero(t, code, "a shadow-banned client still connects")
		b := rtDial(t, e.m.Addr, 5)
		_, code = b.connect(rtOpts{ID: id, User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
		require.Zero(t, code)
		b.disconnect() // a normal DISCONNECT: no will of its own
		n++
		time.Sleep(150 * time.Millisecond)
	}
	// A dashboard arriving later gets the retained state.
	d := rtDial(t, e.m.Addr, 5)
	_, code := d.connect(rtOpts{ID: "late-dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, d.subscribe(0, "sensors/sensor1/state"))
	got := d.collect(time.Second)
	t.Logf("after %d takeovers by a shadow-banned client the retained state is %v", n, topics(got))
	assert.False(t, has(got, "sensors/sensor1/state"), "BROKE: a shadow-banned client's message is retained and delivered")
}

// 2. The Guard's per-client and per-user bounds in the shared
// configuration (max_subscriptions, max_subscription_bytes,
// max_sessions_per_user) inside mosquitto.
func TestRTQuotasInsideMosquitto(t *testing.T) {
	e := rtStart(t, nil)
	t.Run("max_subscriptions (default 1000)", func(t *testing.T) {
		a := rtDial(t, e.m.Addr, 5)
		_, code := a.connect(rtOpts{ID: "subs-n", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
		require.Zero(t, code)
		granted := 0
		for batch := range 12 {
			var fs []string
			for i := range 100 {
				fs = append(fs, fmt.Sprintf("commands/sensor1/%d/%d", batch, i))
			}
			for _, c := range a.subscribe(0, fs...) {
				if c < 0x80 {
					granted++
				}
			}
		}
		t.Logf("granted %d of 1200 filters", granted)
		assert.LessOrEqual(t, granted, 1000, "BROKE: max_subscriptions not enforced")
	})
	t.Run("max_subscription_bytes (default 1 MiB)", func(t *testing.T) {
		pid := e.m.Pid()
		before := rss(pid)
		a := rtDial(t, e.m.Addr, 5)
		_, code := a.connect(rtOpts{ID: "subs-b", User: "sensor1", Pass: e.pw["sensor1"], Clean: true, Expiry: 86400})
		require.Zero(t, code)
		granted, bytes := 0, 0
		for batch := range 8 {
			var fs []string
			for i := range 25 {
				fs = append(fs, fmt.Sprintf("commands/sensor1/%d/%d/", batch, i)+strings.Repeat("x", 60000))
			}
			for i, c := range a.subscribe(0, fs...) {
				if c < 0x80 {
					granted++
					bytes += len(fs[i])
				}
			}
		}
		a.disconnect() // the session (and its filters) outlives the connection
		time.Sleep(300 * time.Millisecond)
		t.Logf("granted %d filters, %d bytes; mosquitto RSS %d kB -> %d kB", granted, bytes, before, rss(pid))
		assert.LessOrEqual(t, bytes, 1<<20, "BROKE: max_subscription_bytes not enforced")
	})
	// mosquitto 2.0 tells a plugin when a client leaves, not when its
	// session ends: the bound is on connected clients (mosquitto's own
	// persistent_client_expiration bounds the offline ones).
	t.Run("max_sessions_per_user (100 connected)", func(t *testing.T) {
		ok := 0
		for i := range 110 {
			a := rtDial(t, e.m.Addr, 5)
			_, code, err := a.connectErr(rtOpts{ID: fmt.Sprintf("sess-%d", i), User: "sensor1", Pass: e.pw["sensor1"], Expiry: 86400})
			if err == nil && code == 0 {
				ok++
			}
			time.Sleep(110 * time.Millisecond) // under ip_connections_per_second = 10
		}
		t.Logf("%d of 110 connections of sensor1 accepted", ok)
		assert.Equal(t, 100, ok, "max_sessions_per_user")
	})
}

func rss(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var n int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%d", &n)
			return n
		}
	}
	return -1
}

// Extended authentication: a CONNECT with an Authentication Method never
// reaches MOSQ_EVT_BASIC_AUTH; with no plugin for it mosquitto must
// refuse it (0x8C), not admit it unauthenticated.
func TestRTAuthMethod(t *testing.T) {
	e := rtStart(t, nil)
	a := rtDial(t, e.m.Addr, 5)
	props := str([]byte{0x15}, "SCRAM-SHA-1")
	_, code, err := a.connectErr(rtOpts{ID: "am", NoUser: true, Clean: true, Props: props})
	t.Logf("CONNACK 0x%02x err %v", code, err)
	assert.True(t, err != nil || code >= 0x80, "admitted without authentication")
	b := rtDial(t, e.m.Addr, 5)
	_, code, err = b.connectErr(rtOpts{ID: "am2", User: "admin", Pass: "wrong", Clean: true, Props: props})
	t.Logf("with a wrong password: CONNACK 0x%02x err %v", code, err)
	assert.True(t, err != nil || code >= 0x80, "admitted without authentication")
}

// 5. A dropped publish (an early report) at QoS 2, retained, MQTT 3.1.1
// and 5: never delivered, never retained under either name.
func TestRTDroppedQoS2Retained(t *testing.T) {
	e := rtStart(t, nil)
	adm := rtDial(t, e.m.Addr, 5)
	_, code := adm.connect(rtOpts{ID: "ops", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{2, 2}, adm.subscribe(2, "#", "$mqttguard/#"))
	for _, v := range []byte{5, 4} {
		s := rtDial(t, e.m.Addr, v)
		_, code := s.connect(rtOpts{ID: fmt.Sprint("rep-", v), User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
		require.Zero(t, code)
		first := s.publish("sensors/sensor1/report", "first", 2, true)
		second := s.publish("sensors/sensor1/report", fmt.Sprint("early-v", v), 2, true)
		t.Logf("v%d: first 0x%02x, early 0x%02x", v, first, second)
		s.disconnect()
	}
	got := adm.collect(time.Second)
	t.Logf("admin (#, $mqttguard/#) got %v", topics(got))
	for _, m := range got {
		assert.NotContains(t, m.Payload, "early", "a dropped report was delivered: %v", m)
	}
	late := rtDial(t, e.m.Addr, 5)
	_, code = late.connect(rtOpts{ID: "late", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)
	late.subscribe(0, "sensors/sensor1/report", "$mqttguard/#")
	got = late.collect(time.Second)
	t.Logf("retained: %v", topics(got))
	for _, m := range got {
		assert.NotContains(t, m.Payload, "early", "a dropped report was retained: %v", m)
	}
}

// A QoS 2 publish the ACL refuses from a 3.1.1 persistent client: mosquitto
// keeps a PUBREC'd placeholder for the PUBREL. The client reconnects
// before sending PUBREL: mosquitto re-checks its incoming messages
// (connection_check_acl) with MOSQ_ACL_WRITE.
func TestRTV311DeniedQoS2Reconnect(t *testing.T) {
	e := rtStart(t, nil)
	for round := range 2 {
		s := rtDial(t, e.m.Addr, 4)
		_, code := s.connect(rtOpts{V: 4, ID: "q2-311", User: "sensor1", Pass: e.pw["sensor1"]})
		require.Zero(t, code)
		// QoS 2, forbidden; read the PUBREC and never send PUBREL.
		require.NoError(t, s.write(s.publishPkt("sensors/sensor2/x", "x", 2, false, uint16(10+round), nil)))
		h, body, err := s.next()
		require.NoError(t, err)
		t.Logf("round %d: answer %x % x", round, h, body)
		// and a dropped one (early report)
		require.NoError(t, s.write(s.publishPkt("sensors/sensor1/report", "r", 2, false, uint16(20+round), nil)))
		h, body, err = s.next()
		require.NoError(t, err)
		t.Logf("round %d: report answer %x % x", round, h, body)
		s.c.Close()
		time.Sleep(200 * time.Millisecond)
	}
	assert.True(t, e.alive(t), "mosquitto died")
}

// 6c. A will is decided by Guard.Disconnect (subscribe.go: ban, trust
// state, ACL). The Wasm plugins' on_publish (here sensorjson, payload
// validation, failure = closed) and the push-interval profiles never see
// it: a device publishes through its will what they refuse as a publish.
func TestRTWillSkipsPluginsAndProfiles(t *testing.T) {
	wasm := wasmbuild.Build(t, filepath.Join("..", "examples", "plugins", "sensorjson"))
	e := rtStart(t, func(dir, conf string) string {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "plugins"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "plugins", "sensorjson.wasm"), wasm, 0o600))
		return conf + "\n[[plugins]]\nname = \"sensorjson\"\npath = \"plugins/sensorjson.wasm\"\nfailure = \"closed\"\n"
	})
	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, dash.subscribe(0, "sensors/#"))

	t.Run("payload validation", func(t *testing.T) {
		s := rtDial(t, e.m.Addr, 5)
		_, code := s.connect(rtOpts{ID: "json-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
		require.Zero(t, code)
		assert.GreaterOrEqual(t, s.publish("sensors/sensor1/temp", `{"temperature": 9999}`, 1, false), byte(0x80), "control: refused as a publish (the Guard says 0x99, mosquitto sends 0x87)")
		s.disconnect()
		w := rtDial(t, e.m.Addr, 5)
		_, code = w.connect(rtOpts{ID: "json-2", User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
			Will: &rtWill{Topic: "sensors/sensor1/temp", Payload: `{"temperature": 9999}`, Retain: true}})
		require.Zero(t, code)
		w.c.Close()
		got := dash.collect(1500 * time.Millisecond)
		t.Logf("dashboard got %v", got)
		assert.False(t, has(got, "sensors/sensor1/temp"), "BROKE: the will carried a payload the plugin refuses")
	})
	t.Run("push interval", func(t *testing.T) {
		s := rtDial(t, e.m.Addr, 5)
		_, code := s.connect(rtOpts{ID: "dev-r", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
		require.Zero(t, code)
		assert.Less(t, s.publish("sensors/sensor1/report", `{"temperature": 20}`, 1, false), byte(0x80))
		assert.Less(t, s.publish("sensors/sensor1/report", `{"temperature": 21}`, 1, false), byte(0x80))
		s.disconnect()
		got := dash.collect(time.Second)
		dash.got = nil
		n := 0
		for _, m := range got {
			if m.Topic == "sensors/sensor1/report" {
				n++
			}
		}
		require.Equal(t, 1, n, "control: the early report is dropped: %v", got)
		w := rtDial(t, e.m.Addr, 5)
		_, code = w.connect(rtOpts{ID: "dev-r", User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
			Will: &rtWill{Topic: "sensors/sensor1/report", Payload: `{"temperature": 22}`}})
		require.Zero(t, code)
		w.c.Close()
		got = dash.collect(1500 * time.Millisecond)
		t.Logf("dashboard got %v", got)
		assert.False(t, has(got, "sensors/sensor1/report"), "BROKE: an early report went out as a will")
	})
}

// 2. A username ban, then at once a takeover of a banned client's ID by
// another account: the ban's kick waits for the next tick; the takeover
// makes mosquitto send the banned client's will first, decided as a
// publish (Guard.Publish asks no ban list).
func TestRTBanThenTakeoverWill(t *testing.T) {
	e := rtStart(t, nil)
	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, dash.subscribe(0, "sensors/#"))
	const n = 4
	for i := range n {
		a := rtDial(t, e.m.Addr, 5)
		_, code := a.connect(rtOpts{ID: fmt.Sprint("bt-", i), User: "sensor1", Pass: e.pw["sensor1"], Clean: true,
			Will: &rtWill{Topic: "sensors/sensor1/last", Payload: fmt.Sprint("will-of-banned-", i)}})
		require.Zero(t, code) // stays connected: its client ID is taken over below
	}
	time.Sleep(1200 * time.Millisecond) // the connection rate limit's bucket refills
	// Pre-open the takeover sockets, so that only the CONNECTs remain.
	var bs []*rtConn
	for range n {
		bs = append(bs, rtDial(t, e.m.Addr, 5))
	}
	st, body := e.api(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "for": "1h"}`)
	require.Equal(t, http.StatusCreated, st, body)
	for i, b := range bs {
		_, code, err := b.connectErr(rtOpts{ID: fmt.Sprint("bt-", i), User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
		t.Logf("takeover %d: 0x%02x %v", i, code, err)
	}
	got := dash.collect(1500 * time.Millisecond)
	t.Logf("dashboard got %v", topics(got))
	assert.False(t, has(got, "sensors/sensor1/last"), "BROKE: a banned client's will was sent")
}

// A will delayed (MQTT 5 Will Delay Interval) past a ban: decided when it
// is sent, with the client's identity.
func TestRTWillDelayBan(t *testing.T) {
	e := rtStart(t, nil)
	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, dash.subscribe(0, "sensors/#"))
	// Control: a delayed will with no ban is sent after its delay.
	w0 := rtDial(t, e.m.Addr, 5)
	_, code = w0.connect(rtOpts{ID: "wd-0", User: "sensor1", Pass: e.pw["sensor1"], Clean: true, Expiry: 60,
		Will: &rtWill{Topic: "sensors/sensor1/wd0", Payload: "delayed-control", Delay: 1}})
	require.Zero(t, code)
	w0.c.Close()
	got0 := dash.collect(2500 * time.Millisecond)
	require.True(t, has(got0, "sensors/sensor1/wd0"), "control: the delayed will is sent: %v", topics(got0))
	a := rtDial(t, e.m.Addr, 5)
	_, code = a.connect(rtOpts{ID: "wd-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true, Expiry: 60,
		Will: &rtWill{Topic: "sensors/sensor1/wd", Payload: "delayed", Delay: 2}})
	require.Zero(t, code)
	b := rtDial(t, e.m.Addr, 5)
	_, code = b.connect(rtOpts{ID: "wd-2", User: "sensor1", Pass: e.pw["sensor1"], Clean: true, Expiry: 60,
		Will: &rtWill{Topic: "sensors/sensor1/wd2", Payload: "delayed-taken-over", Delay: 30}})
	require.Zero(t, code)
	a.c.Close()
	b.c.Close()
	time.Sleep(200 * time.Millisecond)
	st, body := e.api(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "for": "1h"}`)
	require.Equal(t, http.StatusCreated, st, body)
	// wd-2's offline session taken over by another account (clean start):
	// mosquitto sends its will now.
	c := rtDial(t, e.m.Addr, 5)
	_, code = c.connect(rtOpts{ID: "wd-2", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	t.Logf("takeover of the offline will-delayed session: 0x%02x", code)
	got := dash.collect(3 * time.Second)
	t.Logf("dashboard got %v", topics(got))
	assert.False(t, has(got, "sensors/sensor1/wd"), "a delayed will of a client banned meanwhile")
	assert.False(t, has(got, "sensors/sensor1/wd2"), "a delayed will sent by a takeover")
}

// 4. Hostile inputs on the plugin's paths: long topics and client IDs,
// big payloads, odd bytes, a kick of an odd client ID.
func TestRTHostileInputs(t *testing.T) {
	e := rtStart(t, nil)
	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	s := rtDial(t, e.m.Addr, 5)
	_, code = s.connect(rtOpts{ID: "h-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	long := "sensors/sensor1/" + strings.Repeat("x", 65000)
	c, err := s.publishErr(long, "x", 1, false, nil)
	t.Logf("65016-byte topic, 3 levels: 0x%02x %v", c, err)
	deep := "sensors/sensor1/" + strings.Repeat("x/", 300) + "y"
	c, err = s.publishErr(deep, "x", 1, false, nil)
	t.Logf("302-level topic: 0x%02x %v", c, err)
	s2 := rtDial(t, e.m.Addr, 5)
	_, code = s2.connect(rtOpts{ID: "h-2", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	c, err = s2.publishErr("sensors/sensor1/big", strings.Repeat("y", 3<<20), 1, false, nil)
	t.Logf("3 MiB payload: 0x%02x %v", c, err)
	c, err = s2.publishErr("sensors/sensor1/big2", strings.Repeat("y", 3<<20), 2, true, nil)
	t.Logf("3 MiB payload QoS 2 retained: 0x%02x %v", c, err)
	assert.True(t, e.alive(t))

	for _, tc := range []struct{ name, id, user, pass string }{
		{"65535-byte client ID", strings.Repeat("i", 65535), "sensor1", e.pw["sensor1"]},
		{"control bytes in the client ID", "ctl\x01\x1f\x7f", "sensor1", e.pw["sensor1"]},
		{"U+FEFF/U+FFFF client ID", "bom\ufeff\uffff", "sensor1", e.pw["sensor1"]},
		{"password + NUL + junk", "nul-pw", "sensor1", e.pw["sensor1"] + "\x00junk"},
		{"password prefix + NUL", "nul-pw2", "sensor1", e.pw["sensor1"][:4] + "\x00" + e.pw["sensor1"][4:]},
		{"NUL in username", "nul-user", "sensor1\x00admin", e.pw["sensor1"]},
		{"'/' '+' '#' client ID", "sensor1/#", "sensor1", e.pw["sensor1"]},
	} {
		a := rtDial(t, e.m.Addr, 5)
		_, code, err := a.connectErr(rtOpts{ID: tc.id, User: tc.user, Pass: tc.pass, Clean: true})
		t.Logf("%s: CONNACK 0x%02x %v", tc.name, code, err)
		if err == nil && code == 0 {
			st, _ := e.api(t, "POST", "/clients/"+urlPathEscape(tc.id)+"/kick", "")
			t.Logf("   kick: %d", st)
		}
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(time.Second)
	assert.True(t, e.alive(t), "mosquitto serves")
}

func urlPathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Held-or-not checks of mosquitto-specific paths, one line each.
func TestRTMosquittoPaths(t *testing.T) {
	e := rtStart(t, nil)
	adm := rtDial(t, e.m.Addr, 5)
	_, code := adm.connect(rtOpts{ID: "ops", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)
	dash := rtDial(t, e.m.Addr, 5)
	_, code = dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0, 0}, dash.subscribe(0, "#", "$mqttguard/#"))

	// Retained messages the attacker may not read, delivered at SUBSCRIBE.
	adm.publish("commands/sensor2/reboot", "retained-cmd", 1, true)
	adm.publish("sensors/sensor2/temp", "retained-temp", 1, true)
	s := rtDial(t, e.m.Addr, 5)
	_, code = s.connect(rtOpts{ID: "p-1", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	codes := s.subscribe(0, "#", "+/+/+", "commands/+/reboot", "$SYS/#", "$share/g/#", "$share/g/commands/sensor1/#", "$mqttguard/#")
	t.Logf("SUBACK %x", codes)
	got := s.collect(time.Second)
	t.Logf("retained at SUBSCRIBE: %v", topics(got))
	assert.Empty(t, got, "sensor1 got retained messages it may not read")

	// $CONTROL and $SYS writes.
	for _, tp := range []string{"$CONTROL/dynamic-security/v1", "$SYS/broker/uptime", "$mqttguard/dropped", DroppedTopic + "/x"} {
		c, err := s.publishErr(tp, `{"commands":[]}`, 1, false, nil)
		t.Logf("sensor1 publish %q: 0x%02x %v", tp, c, err)
	}
	// Topic aliases: set alias 1 on an allowed topic, move it to a
	// forbidden one (refused), then publish by alias alone.
	alias := func(n uint16) []byte { return binary.BigEndian.AppendUint16([]byte{0x23}, n) }
	c1, _ := s.publishErr("sensors/sensor1/a", "alias-set", 1, false, alias(1))
	c2, _ := s.publishErr("sensors/sensor2/a", "alias-forbidden", 1, false, alias(1))
	c3, err := s.publishErr("", "alias-only", 1, false, alias(1))
	t.Logf("alias: set 0x%02x, forbidden 0x%02x, alias-only 0x%02x %v", c1, c2, c3, err)
	got = dash.collect(time.Second)
	t.Logf("dashboard got %v", topics(got))
	for _, m := range got {
		assert.NotEqual(t, "sensors/sensor2/a", m.Topic)
		assert.False(t, strings.HasPrefix(m.Topic, "$"), "%v", m)
	}

	// A 3.1.1 "bridge" (protocol level 0x84) from sensor1.
	br := rtDial(t, e.m.Addr, 4)
	b := str(nil, "MQTT")
	b = append(b, 0x84, 0xC2, 0, 60)
	b = str(b, "br-1")
	b = str(b, "sensor1")
	b = str(b, e.pw["sensor1"])
	require.NoError(t, br.write(packet(0x10, b)))
	h, body, err := br.next()
	t.Logf("bridge-bit CONNECT: %x % x %v", h, body, err)
	if err == nil && len(body) == 2 && body[1] == 0 {
		br.subscribe(1, "#")
		br.publish("sensors/sensor2/bridged", "x", 1, false)
		adm.publish("commands/sensor2/bridged", "x", 1, false)
		got := br.collect(time.Second)
		t.Logf("bridge-bit client got %v", topics(got))
		assert.False(t, has(got, "commands/sensor2/bridged"))
		got = dash.collect(time.Second)
		assert.False(t, has(got, "sensors/sensor2/bridged"), "a bridge-bit client's forbidden publish delivered")
	}
}

// 3. mosquitto's own use_identity_as_username on a TLS listener skips
// MOSQ_EVT_BASIC_AUTH (doc.go warns: "would skip the plugin's
// authentication altogether"). What the plugin then answers for that
// client is whatever session it keeps under the reused struct mosquitto
// pointer: the last MQTT 5 client that lived at that address.
func TestRTSkippedAuthInheritsStaleSession(t *testing.T) {
	tlsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(tlsAddr)
	e := rtStart(t, nil, "listener "+port+" 127.0.0.1", "cafile DIR/tls/ca.pem", "certfile DIR/tls/server.pem",
		"keyfile DIR/tls/server-key.pem", "require_certificate true", "use_identity_as_username true")
	pki := filepath.Join(e.dir, "tls")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "client.pem"), filepath.Join(pki, "client-key.pem"))
	require.NoError(t, err)
	dialTLS := func() *rtConn {
		var c net.Conn
		require.Eventually(t, func() bool {
			c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", tlsAddr,
				&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
			return err == nil
		}, 10*time.Second, 100*time.Millisecond)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return &rtConn{t: t, c: c, r: bufio.NewReader(c), v: 5}
	}

	dash := rtDial(t, e.m.Addr, 5)
	_, code := dash.connect(rtOpts{ID: "dash", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	mon := rtDial(t, e.m.Addr, 5)
	_, code = mon.connect(rtOpts{ID: "mon", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{0}, mon.subscribe(0, "#"))

	// Control: a certificate client with no stale session can do nothing.
	c0 := dialTLS()
	_, code = c0.connect(rtOpts{ID: "cert-0", NoUser: true, Clean: true})
	t.Logf("cert client CONNACK 0x%02x (basic auth skipped)", code)
	c0code := c0.publish("commands/sensor1/reboot", "from-cert-0", 1, false)
	t.Logf("control: cert client publish to commands/sensor1/reboot: 0x%02x", c0code)
	c0.disconnect()

	hits := 0
	for i := range 5 {
		// admin, MQTT 5, leaves: its session stays under its pointer.
		a := rtDial(t, e.m.Addr, 5)
		_, code := a.connect(rtOpts{ID: fmt.Sprint("adm-", i), User: "admin", Pass: e.pw["admin"], Clean: true})
		require.Zero(t, code)
		a.disconnect()
		time.Sleep(100 * time.Millisecond)
		c := dialTLS()
		_, code = c.connect(rtOpts{ID: fmt.Sprint("cert-", i+1), NoUser: true, Clean: true})
		if code != 0 {
			continue
		}
		pc := c.publish("commands/sensor1/reboot", fmt.Sprint("forged-by-cert-", i), 1, false)
		t.Logf("round %d: cert client publish to admin-only topic: 0x%02x", i, pc)
		if pc < 0x80 {
			hits++
		}
		c.disconnect()
		time.Sleep(100 * time.Millisecond)
	}
	got := mon.collect(time.Second)
	t.Logf("admin monitor got %v", topics(got))
	assert.Zero(t, hits, "BROKE: a client mosquitto admitted without the plugin acted as the admin who left before it")
}

// 1/4. The shared-subscription join check (a member must be able to read
// the whole filter, or it swallows the group's messages) is made at
// SUBSCRIBE. A takeover hands a session's memberships to the new
// connection without a SUBSCRIBE: sensor1 inherits the dashboard's
// membership and the group loses the messages routed to it.
func TestRTTakeoverInheritsSharedMembership(t *testing.T) {
	e := rtStart(t, nil)
	adm := rtDial(t, e.m.Addr, 5)
	_, code := adm.connect(rtOpts{ID: "ops", User: "admin", Pass: e.pw["admin"], Clean: true})
	require.Zero(t, code)
	a := rtDial(t, e.m.Addr, 5)
	_, code = a.connect(rtOpts{ID: "worker-a", User: "dashboard", Pass: e.pw["dashboard"], Expiry: 3600})
	require.Zero(t, code)
	require.Equal(t, []byte{1}, a.subscribe(1, "$share/g/sensors/#"))
	b := rtDial(t, e.m.Addr, 5)
	_, code = b.connect(rtOpts{ID: "worker-b", User: "dashboard", Pass: e.pw["dashboard"], Clean: true})
	require.Zero(t, code)
	require.Equal(t, []byte{1}, b.subscribe(1, "$share/g/sensors/#"))

	// Direct join by sensor1: refused (control).
	s0 := rtDial(t, e.m.Addr, 5)
	_, code = s0.connect(rtOpts{ID: "s0", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	assert.Equal(t, []byte{0x87}, s0.subscribe(1, "$share/g/sensors/#"), "control: sensor1 may not join")

	a.disconnect()
	time.Sleep(200 * time.Millisecond)
	r := rtDial(t, e.m.Addr, 5)
	_, code = r.connect(rtOpts{ID: "worker-a", User: "sensor1", Pass: e.pw["sensor1"], Expiry: 3600})
	require.NotZero(t, code, "another identity may not resume worker-a's session (and its group membership)")
	s := rtDial(t, e.m.Addr, 5)
	sp, code := s.connect(rtOpts{ID: "worker-a", User: "sensor1", Pass: e.pw["sensor1"], Clean: true})
	require.Zero(t, code)
	require.False(t, sp, "afresh")
	const n = 20
	for i := range n {
		require.Less(t, adm.publish(fmt.Sprint("sensors/sensor2/t", i), fmt.Sprint("m", i), 1, false), byte(0x80))
	}
	gotB := b.collect(1500 * time.Millisecond)
	gotS := s.collect(100 * time.Millisecond)
	t.Logf("worker-b got %d of %d; sensor1 got %d", len(gotB), n, len(gotS))
	assert.Equal(t, n, len(gotB), "BROKE: the group lost messages to a member that joined through a takeover")
}
