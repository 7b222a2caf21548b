// Red-team attacks (issue 24 round) on package mochiguard and on the
// authenticator seam used from a user's own mochi broker.
//
// Copy into /work/main/mochiguard/ (package mochiguard_test) to run:
//
//	cp /work/redteam24/mochiguard_rt24_test.go /work/main/mochiguard/zz_rt24_test.go
//	go test ./mochiguard -run 'TestRT24' -count=1 -v
//
// The servers are the README program ("Add it to your mochi-mqtt
// broker"), built in-process with the same calls, plus what each attack
// adds; every client is a raw socket.
package mochiguard_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/mochiguard"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/trust"
)

// ---------- the README broker, in-process ----------

const rt24ACL = "user sensor1\ntopic readwrite sensors/sensor1/#\n\nuser bob\ntopic read sensors/#\n"

func rt24Files(t *testing.T) (pw *passwd.File, pol *acl.Policy) {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	for _, u := range []string{"sensor1", "bob"} {
		h, err := passwd.HashIterations(u+"-pw", 1000)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), b.Bytes(), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acl"), []byte(rt24ACL), 0o600))
	pw, err := passwd.LoadFile(filepath.Join(dir, "passwd"))
	require.NoError(t, err)
	pol, err = acl.LoadFile(filepath.Join(dir, "acl"))
	require.NoError(t, err)
	return pw, pol
}

// rt24READMEGuard is the README's Guard.
func rt24READMEGuard(t *testing.T) *mqttguard.Guard {
	pw, pol := rt24Files(t)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, ACL: acl.NewHolder(pol),
		Authenticators: []mqttguard.Authenticator{passwd.NewHolder(pw)},
		RateLimits:     mqttguard.RateLimits{MessagesPerClient: mqttguard.Rate{PerSecond: 1, Burst: 3}}})
	require.NoError(t, err)
	return g
}

// rt24Serve builds the README's server around g with extra hooks added
// before and after the Guard's, checks, and serves on a free port.
func rt24Serve(t *testing.T, g *mqttguard.Guard, before, after []mqtt.Hook) (string, *mqtt.Server, *mochiguard.Hook) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hook := mochiguard.New(g, srv, mochiguard.Options{})
	for _, h := range before {
		require.NoError(t, srv.AddHook(h, nil))
	}
	require.NoError(t, srv.AddHook(hook, nil))
	for _, h := range after {
		require.NoError(t, srv.AddHook(h, nil))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, srv.AddListener(hook.Listen("tcp", ln, packets.ListenerConfig{})))
	require.NoError(t, hook.Check(), "Check accepts the extra hooks")
	require.NoError(t, srv.Serve())
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv, hook
}

// ---------- a raw client ----------

type rawc struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	v packets.Version
}

func rawDial(t *testing.T, addr, from string, v packets.Version) *rawc {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawc{t: t, c: c, r: bufio.NewReader(c), v: v}
}

func (c *rawc) send(b []byte) {
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.c.Write(b)
}

func (c *rawc) next(d time.Duration) ([]byte, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	b, _, err := mqttwire.ReadPacket(c.r, nil)
	return append([]byte(nil), b...), err
}

func (c *rawc) nextOf(typ byte, d time.Duration) []byte {
	deadline := time.Now().Add(d)
	for {
		b, err := c.next(time.Until(deadline))
		if err != nil {
			return nil
		}
		if b[0]>>4 == typ {
			return b
		}
	}
}

func (c *rawc) connect(id, user, pass string, props []byte) byte {
	c.t.Helper()
	cn := packets.Connect{ProtocolName: []byte("MQTT"), Level: c.v, CleanStart: true, KeepAlive: 30, ClientID: []byte(id),
		UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass)}
	c.send(packets.AppendConnect(nil, &cn, props))
	b := c.nextOf(2, 15*time.Second)
	if len(b) < 4 {
		return 0xff
	}
	return b[3]
}

func frame(first byte, body []byte) []byte {
	return append(packets.AppendVBI([]byte{first}, len(body)), body...)
}

func str(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// subscribe sends one filter and returns the SUBACK codes.
func (c *rawc) subscribe(id uint16, filter string, qos byte) []byte {
	body := binary.BigEndian.AppendUint16(nil, id)
	if c.v == packets.V5 {
		body = append(body, 0)
	}
	body = append(str(body, filter), qos)
	c.send(frame(0x82, body))
	b := c.nextOf(9, 5*time.Second)
	if b == nil {
		return nil
	}
	if c.v == packets.V5 {
		return b[5+int(b[4]):] // properties shorter than 128 bytes
	}
	return b[4:]
}

func (c *rawc) publish(topic string, payload []byte, qos byte, retain bool, id uint16, props []byte) {
	first := byte(0x30) | qos<<1
	if retain {
		first |= 1
	}
	body := str(nil, topic)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, id)
	}
	if c.v == packets.V5 {
		body = append(packets.AppendVBI(body, len(props)), props...)
	}
	c.send(frame(first, append(body, payload...)))
}

// collect returns the topics of PUBLISHes received within d (acking QoS 1).
func (c *rawc) collect(d time.Duration) []string {
	var out []string
	deadline := time.Now().Add(d)
	for {
		b, err := c.next(time.Until(deadline))
		if err != nil {
			return out
		}
		if b[0]>>4 != 3 {
			continue
		}
		i := 1
		for b[i]&0x80 != 0 {
			i++
		}
		i++
		n := int(binary.BigEndian.Uint16(b[i:]))
		topic := string(b[i+2 : i+2+n])
		out = append(out, topic)
		if qos := b[0] >> 1 & 3; qos == 1 {
			id := binary.BigEndian.Uint16(b[i+2+n:])
			c.send([]byte{0x40, 2, byte(id >> 8), byte(id)})
		}
	}
}

// ---------------------------------------------------------------------
// Stacking: a hook without OnConnectAuthenticate/OnACLCheck, added
// before the Guard's, whose OnPublish refuses some messages.
// ---------------------------------------------------------------------

// mochi's AllowHook added after Serve (Check passed at start). Connected
// clients keep going; what do they get for subscriptions the Guard refuses?
func TestRT24AllowHookAddedAfterServe(t *testing.T) {
	addr, srv, hook := rt24Serve(t, rt24READMEGuard(t), nil, nil)
	s1 := rawDial(t, addr, "", packets.V5)
	require.Equal(t, byte(0), s1.connect("s1", "sensor1", "sensor1-pw", nil))
	before := s1.subscribe(1, "sensors/#", 0)
	t.Logf("before: SUBACK sensors/# for sensor1: % x", before)
	require.NoError(t, srv.AddHook(new(auth.AllowHook), nil))
	t.Logf("Check now: %v", hook.Check())
	after := s1.subscribe(2, "sensors/#", 0)
	t.Logf("after AllowHook: SUBACK sensors/# for sensor1: % x", after)
	shared := s1.subscribe(3, "$share/g/sensors/#", 0)
	t.Logf("after AllowHook: SUBACK $share/g/sensors/# for sensor1: % x", shared)
	other := rawDial(t, addr, "", packets.V5)
	t.Logf("a new CONNECT: 0x%02x", other.connect("x", "bob", "bob-pw", nil))
	assert.GreaterOrEqual(t, after[0], byte(0x80), "a subscription the Guard refuses is never granted (SUBACK success on a refusal)")
	// Does anything leak?
	pub := rawDial(t, addr, "", packets.V5)
	pub.connect("feeder", "", "", nil)
	srv.Publish("sensors/sensor2/temp", []byte("x"), false, 0)
	t.Logf("sensor1 received: %v", s1.collect(time.Second))
}

// ---------------------------------------------------------------------
// The README broker over raw sockets: aliases, QoS 2, shared and
// wildcard subscriptions, and a Receive Maximum + PING flood.
// ---------------------------------------------------------------------

func TestRT24READMERawLeaks(t *testing.T) {
	addr, _, _ := rt24Serve(t, rt24READMEGuard(t), nil, nil)
	bob := rawDial(t, addr, "", packets.V5)
	require.Equal(t, byte(0), bob.connect("bob", "bob", "bob-pw", nil))
	require.Equal(t, []byte{2}, bob.subscribe(1, "sensors/#", 2))
	t.Logf("bob SUBSCRIBE '#': % x", bob.subscribe(2, "#", 0))

	s1 := rawDial(t, addr, "", packets.V5)
	require.Equal(t, byte(0), s1.connect("s1", "sensor1", "sensor1-pw", nil))
	t.Logf("sensor1 SUBSCRIBE $share/g/sensors/#: % x", s1.subscribe(1, "$share/g/sensors/#", 0))
	t.Logf("sensor1 SUBSCRIBE sensors/+/temp: % x", s1.subscribe(2, "sensors/+/temp", 0))
	alias := func(a uint16) []byte { return []byte{0x23, byte(a >> 8), byte(a)} }
	// Topic aliases (3 a second at most: the README's rate).
	s1.publish("sensors/sensor1/a", []byte("1"), 1, false, 1, alias(1))
	t.Logf("alias 1 := sensors/sensor1/a: PUBACK % x", s1.nextOf(4, 3*time.Second))
	s1.publish("sensors/sensor2/x", []byte("2"), 1, false, 2, alias(1))
	t.Logf("alias 1 := sensors/sensor2/x: PUBACK % x", s1.nextOf(4, 3*time.Second))
	time.Sleep(1100 * time.Millisecond)
	s1.publish("", []byte("3"), 1, false, 3, alias(1))
	t.Logf("alias 1 alone: PUBACK % x", s1.nextOf(4, 3*time.Second))
	// QoS 2, 3.1.1, a forbidden topic: PUBREC, PUBREL, PUBCOMP.
	s3 := rawDial(t, addr, "", packets.V311)
	require.Equal(t, byte(0), s3.connect("s3", "sensor1", "sensor1-pw", nil))
	s3.publish("sensors/sensor2/q2", []byte("4"), 2, true, 5, nil)
	rec := s3.nextOf(5, 3*time.Second)
	t.Logf("3.1.1 QoS 2 forbidden + retain: PUBREC % x", rec)
	s3.send([]byte{0x62, 2, 0, 5})
	t.Logf("PUBCOMP % x", s3.nextOf(7, 3*time.Second))
	got := bob.collect(2 * time.Second)
	t.Logf("bob received: %v", got)
	for _, topic := range got {
		assert.True(t, strings.HasPrefix(topic, "sensors/sensor1/"), "only sensor1's own topics: %s", topic)
	}
	bob2 := rawDial(t, addr, "", packets.V5)
	require.Equal(t, byte(0), bob2.connect("bob2", "bob", "bob-pw", nil))
	bob2.subscribe(1, "sensors/+/q2", 0)
	assert.Empty(t, bob2.collect(time.Second), "nothing retained from the refused QoS 2")
}

// The mochi inflight deadlock recipe (a subscriber with Receive Maximum
// 1 that never acknowledges and floods PINGREQ; QoS 1 traffic from many
// publishers), bounded: 60 publishers x 3 messages, 2,000 PINGs.
func TestRT24READMEReceiveMaximumPingFlood(t *testing.T) {
	addr, _, _ := rt24Serve(t, rt24READMEGuard(t), nil, nil)
	bob := rawDial(t, addr, "", packets.V5)
	require.Equal(t, byte(0), bob.connect("bob", "bob", "bob-pw", []byte{0x21, 0, 1})) // Receive Maximum 1
	require.Equal(t, []byte{1}, bob.subscribe(1, "sensors/#", 1))
	stop := make(chan struct{})
	go func() {
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			bob.send([]byte{0xc0, 0})
		}
	}()
	go func() { io.Copy(io.Discard, bob.c) }() // reads, never acknowledges
	start := time.Now()
	late := 0
	for p := range 60 {
		c := rawDial(t, addr, "", packets.V5)
		if c.connect(fmt.Sprint("pub", p), "sensor1", "sensor1-pw", nil) != 0 {
			late++
			continue
		}
		for i := range 3 {
			c.publish("sensors/sensor1/f", []byte("x"), 1, false, uint16(i+1), nil)
			if c.nextOf(4, 5*time.Second) == nil {
				late++
			}
		}
		c.c.Close()
	}
	close(stop)
	fresh := rawDial(t, addr, "", packets.V5)
	code := fresh.connect("fresh", "bob", "bob-pw", nil)
	fresh.send([]byte{0xc0, 0})
	pr := fresh.nextOf(13, 5*time.Second)
	t.Logf("180 QoS 1 publishes in %v, %d without PUBACK in 5 s; a fresh client: CONNACK 0x%02x, PINGRESP % x",
		time.Since(start).Round(time.Millisecond), late, code, pr)
	assert.Zero(t, late)
	assert.NotNil(t, pr)
}
