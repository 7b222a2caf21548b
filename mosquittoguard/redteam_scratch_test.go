package main

// Red-team scratch: attacks on the plugin inside a real mosquitto 2.0,
// over sockets, with raw packets. Each TestRT... starts its own
// mosquitto; run one at a time:
//
//	go test -count=1 -run 'TestRTName' ./mosquittoguard/

import (
	"bufio"
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

func rtStart(t *testing.T, edit func(conf string) string, extra ...string) *rtEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a c-shared plugin")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	admin := freeAddr(t)
	dir, pw := dataDir(t, admin)
	conf := filepath.Join(dir, guardstack.ConfigFile)
	if edit != nil {
		text, err := os.ReadFile(conf)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(conf, []byte(edit(string(text))), 0o600))
	}
	lines := append([]string{"allow_anonymous true", "plugin " + so, "plugin_opt_config " + conf}, extra...)
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
			a := rtDial(t, e.m.Addr, v)
			sp, code := a.connect(rtOpts{ID: id, User: "sensor1", Pass: e.pw["sensor1"], Expiry: 3600})
			require.Zero(t, code)
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

	a := rtDial(t, e.m.Addr, 5)
	sp, code := a.connect(rtOpts{ID: "dash-inflight", User: "sensor1", Pass: e.pw["sensor1"], Expiry: 3600})
	require.Zero(t, code)
	got := a.collect(1500 * time.Millisecond)
	t.Logf("session present %v; sensor1 got %v", sp, topics(got))
	assert.False(t, has(got, "sensors/sensor2/temp"), "sensor1 received the dashboard's in-flight messages")
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
