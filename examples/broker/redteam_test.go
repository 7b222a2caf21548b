package main

import (
	"bytes"
	"fmt"
	"net"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What an outside review of the session and delivery fixes still found
// in the broker, kept as regressions.

func noFlap(c *guardconf.Config) { c.Security.Flapping.MaxConnects = 1 << 30 }

func login(t *testing.T, tb *testBroker, v packets.Version, o e2e.RawOpts) *e2e.Raw {
	t.Helper()
	c, ack := e2e.ConnectRaw(t, tb.Addr("tcp"), v, o)
	require.Equal(t, reason.Success, ack.ReasonCode, "CONNACK for %s", o.ID)
	return c
}

func user(id, name string) e2e.RawOpts { return e2e.RawOpts{ID: id, User: name, Pass: passwords[name]} }

func strs(ds []e2e.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// mochi's own flow control toward a client with a Receive Maximum takes
// a read lock twice; a PING flood from the client and QoS 1 traffic to it
// deadlocked the client, its publishers and mochi's event loop for good.
// The hook does the flow control itself: nothing hangs, and a fresh
// publisher is answered.
func TestReceiveMaximumDoesNotDeadlock(t *testing.T) {
	tb := startBob(t, noFlap)
	o := user("victim", "bob")
	o.Props = e2e.Prop(packets.PropReceiveMaximum, uint16(1000))
	sub := login(t, tb, packets.V5, o)
	sub.Subscribe(e2e.RawSub{Filter: "bob/#", QoS: 1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // acknowledge everything but the first
		defer wg.Done()
		first := true
		for {
			p, err := sub.Next(3 * time.Second)
			if err != nil {
				return
			}
			if p.Type == packets.PUBLISH && !first {
				sub.Conn.Write(e2e.AckPacket(packets.PUBACK, p.PacketID))
			}
			first = first && p.Type != packets.PUBLISH
		}
	}()
	go func() { // PING flood
		defer wg.Done()
		ping := bytes.Repeat([]byte{0xc0, 0}, 512)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sub.Conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := sub.Conn.Write(ping); err != nil {
				return
			}
		}
	}()
	for k := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := net.Dial("tcp", tb.Addr("tcp"))
			if err != nil {
				return
			}
			defer p.Close()
			r := &e2e.Raw{V: packets.V5}
			p.Write(r.ConnectPacket(user(fmt.Sprint("p", k), "bob")))
			go func() {
				b := make([]byte, 64<<10)
				for {
					p.SetReadDeadline(time.Now().Add(3 * time.Second))
					if _, err := p.Read(b); err != nil {
						return
					}
				}
			}()
			var id uint16
			for {
				select {
				case <-stop:
					return
				default:
				}
				var batch []byte
				for range 64 {
					if id++; id == 0 {
						id = 1
					}
					batch = append(batch, r.PublishPacket("bob/x", "d", 1, false, id, nil)...)
				}
				p.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := p.Write(batch); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 2)
	assert.NotContains(t, buf.String(), "NextImmediate", "nobody in mochi's flow control")
	chk := login(t, tb, packets.V5, user("chk", "bob"))
	chk.Send(chk.PublishPacket("bob/x", "after", 1, false, 1, nil))
	_, err := chk.Next(5 * time.Second)
	assert.NoError(t, err, "a fresh publisher is answered")
}

// A will with a delay whose session ends when the connection does (no
// Session Expiry, or a DISCONNECT 0x04 setting it to 0) goes out at
// once, decided then; mochi kept it for the delay, stamped with an
// expiry that made the delivery gate drop it.
func TestWillDelayEndsWithTheSession(t *testing.T) {
	for _, how := range []string{"no session expiry", "disconnect 0x04 with expiry 0"} {
		t.Run(how, func(t *testing.T) {
			tb := startBob(t, nil)
			watch := login(t, tb, packets.V5, user("watch", "dashboard"))
			watch.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
			o := e2e.RawOpts{ID: "w3", User: "sensor1", Pass: passwords["sensor1"],
				Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: "gone", QoS: 1, Delay: 3}}
			if how != "no session expiry" {
				o.Resume, o.SessionExpiry = true, 3600
			}
			c := login(t, tb, packets.V5, o)
			if how != "no session expiry" {
				c.Send([]byte{0xe0, 7, 0x04, 5, 0x11, 0, 0, 0, 0})
			}
			c.Close()
			assert.Equal(t, []string{"sensors/sensor1/status gone"}, strs(watch.Collect(time.Second, true)), "at once")
			code, body := tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "for": "1h", "reason": "test"}`)
			require.Equal(t, 201, code, body)
			assert.Empty(t, watch.Collect(3500*time.Millisecond, true), "and never again")
		})
	}
}

// A durable subscriber on a slow link resumes a backlog with a message
// that expires while the resend waits on it: onward delivery started at
// the resume, so it goes out; mochi used to treat the refused resend as
// a broken connection (dropping it, its will unsent).
func TestSlowResumeSurvivesExpiry(t *testing.T) {
	tb := startBob(t, noFlap)
	o := e2e.RawOpts{ID: "slow", User: "admin", Pass: passwords["admin"], Resume: true, SessionExpiry: 600}
	sub := login(t, tb, packets.V5, o)
	sub.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	sub.Disconnect(0)
	s1 := login(t, tb, packets.V5, user("s1", "sensor1"))
	big := string(bytes.Repeat([]byte("b"), 60_000))
	const n = 200
	for range n {
		s1.Send(s1.PublishPacket("sensors/sensor1/bulk", big, 1, false, s1.ID(), nil))
	}
	s1.Send(s1.PublishPacket("sensors/sensor1/short", "expires in 2s", 1, false, s1.ID(), e2e.Prop(packets.PropMessageExpiry, uint32(2))))
	s1.Send(s1.PublishPacket("sensors/sensor1/after", "after it", 1, false, s1.ID(), nil))
	s1.Ping()
	time.Sleep(200 * time.Millisecond)

	c := e2e.DialRaw(t, tb.Addr("tcp"), packets.V5)
	c.Conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	c.Send(c.ConnectPacket(o))
	time.Sleep(2500 * time.Millisecond) // a slow link: nothing read meanwhile
	got, ended := 0, false
	for {
		p, err := c.Next(2 * time.Second)
		if err != nil {
			ended = !strings.Contains(err.Error(), "timeout")
			break
		}
		if p.Type == packets.PUBLISH {
			got++
			c.Send(e2e.AckPacket(packets.PUBACK, p.PacketID))
		}
	}
	assert.False(t, ended, "the broker keeps the connection")
	assert.Equal(t, n+2, got, "everything, the short-lived one included")
}

// Deliveries never come before the CONNACK (mochi makes a client
// reachable before it writes its CONNACK): a publisher's stream to a
// durable subscriber that keeps reconnecting.
func TestConnackComesFirst(t *testing.T) {
	tb := startBob(t, noFlap)
	pub := login(t, tb, packets.V5, user("pub", "bob"))
	o := e2e.RawOpts{ID: "loop", User: "bob", Pass: passwords["bob"], Resume: true, SessionExpiry: 600}
	c := login(t, tb, packets.V5, o)
	c.Subscribe(e2e.RawSub{Filter: "bob/#", QoS: 1})
	for i := range 100 {
		pub.Send(pub.PublishPacket("bob/x", fmt.Sprint(i), 1, false, pub.ID(), nil))
		next := e2e.DialRaw(t, tb.Addr("tcp"), packets.V5)
		next.Send(next.ConnectPacket(o))
		first, err := next.Next(5 * time.Second)
		require.NoError(t, err)
		require.Equal(t, packets.CONNACK, first.Type, "takeover %d: % x came first", i, first.Raw)
		c.Close()
		c = next
	}
}

// Offline durable sessions of one account, and large messages published
// to them: what the broker keeps for the account is bounded (64 MiB by
// default), past which its subscribers miss messages; mochi kept every
// copy (+796 MB in the review).
func TestQueuedMessagesAreBoundedPerAccount(t *testing.T) {
	tb := startBob(t, noFlap)
	const sessions, n, size = 8, 60, 256 << 10
	for i := range sessions {
		c := login(t, tb, packets.V5, e2e.RawOpts{ID: fmt.Sprint("q", i), User: "bob", Pass: passwords["bob"], Resume: true, SessionExpiry: 3600})
		c.Subscribe(e2e.RawSub{Filter: "bob/#", QoS: 1})
		c.Disconnect(0)
	}
	pub := login(t, tb, packets.V5, user("pub", "bob"))
	payload := string(bytes.Repeat([]byte("m"), size))
	for i := range n {
		assert.Equal(t, reason.Success, pub.Publish(fmt.Sprint("bob/", i), payload, 1, false).ReasonCode, "the publisher is not refused")
	}
	pub.Ping()
	total := 0
	for i := range sessions {
		c := login(t, tb, packets.V5, e2e.RawOpts{ID: fmt.Sprint("q", i), User: "bob", Pass: passwords["bob"], Resume: true, SessionExpiry: 3600})
		total += len(c.Collect(time.Second, true))
		c.Disconnect(0)
	}
	assert.Positive(t, total)
	assert.LessOrEqual(t, total*size, 64<<20+size*sessions, "at most the account's 64 MiB was kept (%d of %d messages)", total, n*sessions)
}

// A member that loses its right to read after joining a shared group
// does not swallow the group's messages: each goes to a member that may
// read it.
func TestSharedGroupDeliversToAMemberWhoMayRead(t *testing.T) {
	dir := e2e.PrepareDir(t)
	e2e.WriteFile(t, dir, "acl", e2e.BobACL+"\nuser bob\ntopic read sensors/#\n")
	tb := startBrokerIn(t, dir, func(c *guardconf.Config) { c.Security.RateLimit = guardconf.RateLimitConfig{} })
	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	require.Equal(t, []byte{1}, dash.Subscribe(e2e.RawSub{Filter: "$share/g/sensors/#", QoS: 1}))
	bob := login(t, tb, packets.V5, user("bob", "bob"))
	require.Equal(t, []byte{1}, bob.Subscribe(e2e.RawSub{Filter: "$share/g/sensors/#", QoS: 1}))
	e2e.WriteFile(t, dir, "acl", e2e.BobACL)         // bob loses sensors/#
	code, body := tb.Admin(t, "POST", "/reload", "") // (and the file's rate limits come back)
	require.Equal(t, 200, code, body)

	s1 := login(t, tb, packets.V5, user("s1", "sensor1"))
	for i := range 20 {
		s1.Publish(fmt.Sprint("sensors/sensor1/t", i), "x", 1, false) // a topic each: within the topic limit
	}
	s1.Ping()
	assert.Len(t, dash.Collect(time.Second, true), 20, "every message to the member that may read it")
	assert.Empty(t, bob.Collect(200*time.Millisecond, true))
}
