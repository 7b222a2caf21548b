package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example broker and mosquitto 2.0, given the same acl_file and
// password file, deliver the same messages to the same subscribers:
// every user subscribed to every filter at QoS 0 and 1 (the QoS 1 ones
// durable, and offline while half the traffic is published), every user
// publishing to every topic at every QoS, retained or not, and late
// subscribers collecting the retained messages. Only access control is
// compared: the example broker runs with its abuse layer in observe mode
// and no rate limits, which mosquitto has no counterpart of.
func TestDeliveriesMatchMosquitto(t *testing.T) {
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	dir := e2e.PrepareDir(t)
	e2e.WriteFile(t, dir, "acl", e2e.BobACL)
	ours := startBrokerIn(t, dir, func(c *guardconf.Config) {
		c.Security.Mode = "observe"
		c.Security.RateLimit = guardconf.RateLimitConfig{}
		c.Security.Devices = nil
	})
	theirs := mqtttest.RunMosquitto(t, bin, t.TempDir(), "allow_anonymous false",
		"password_file "+filepath.Join(dir, "passwd"), "acl_file "+filepath.Join(dir, "acl"), "max_queued_messages 1000")

	got := map[string]map[string][]string{}
	for name, addr := range map[string]string{"mqttguard": ours.Addr("tcp"), "mosquitto": theirs.Addr} {
		got[name] = runGrid(t, addr)
	}
	o, m := got["mqttguard"], got["mosquitto"]
	require.NotEmpty(t, m)
	total := 0
	for sub, want := range m {
		total += len(want)
		assert.Equal(t, want, o[sub], "subscriber %s: mosquitto's deliveries, then ours", sub)
	}
	for sub := range o {
		_, ok := m[sub]
		assert.True(t, ok, "subscriber %s exists only in ours", sub)
	}
	t.Logf("%d subscribers, %d deliveries each side", len(m), total)
	assert.Greater(t, total, 500, "the grid delivers enough to mean something")
}

var (
	gridUsers   = []string{"admin", "dashboard", "sensor1", "sensor2", "bob"}
	gridFilters = []string{"#", "sensors/#", "+/sensor1/#", "secret/#", "public/#", "bob/#"}
	gridTopics  = []string{"sensors/sensor1/temp", "sensors/sensor2/temp", "commands/sensor1/reboot",
		"secret/x", "public/news", "bob/notes", "billing/invoices"}
)

// runGrid runs the grid against one broker and returns, for each
// subscriber, what it received ("topic payload qN rB", sorted).
func runGrid(t *testing.T, addr string) map[string][]string {
	t.Helper()
	type sub struct {
		key  string
		opts e2e.RawOpts
		v    packets.Version
		rec  *recorder
	}
	var subs []*sub
	n := 0
	for _, user := range gridUsers {
		for _, f := range gridFilters {
			for qos := byte(0); qos <= 1; qos++ {
				n++
				v := packets.V311
				if n%2 == 0 {
					v = packets.V5
				}
				s := &sub{key: fmt.Sprintf("%s %s q%d %v", user, f, qos, v), v: v,
					opts: e2e.RawOpts{ID: fmt.Sprintf("sub%d", n), User: user, Pass: passwords[user], Resume: qos == 1, SessionExpiry: 3600}}
				c, ack := e2e.ConnectRaw(t, addr, v, s.opts)
				require.Equal(t, reason.Success, ack.ReasonCode, s.key)
				c.Subscribe(e2e.RawSub{Filter: f, QoS: qos})
				s.rec = record(c)
				subs = append(subs, s)
			}
		}
	}
	pubs := map[string]*e2e.Raw{}
	for _, user := range gridUsers {
		c, ack := e2e.ConnectRaw(t, addr, packets.V5, e2e.RawOpts{ID: "pub-" + user, User: user, Pass: passwords[user]})
		require.Equal(t, reason.Success, ack.ReasonCode)
		pubs[user] = c
	}
	publishAll := func(phase string) {
		for _, user := range gridUsers {
			c := pubs[user]
			for _, topic := range gridTopics {
				for qos := byte(0); qos <= 2; qos++ {
					for _, retain := range []bool{false, true} {
						c.Publish(topic, fmt.Sprintf("%s-%s-q%d-r%v", phase, user, qos, retain), qos, retain)
					}
				}
			}
			c.Ping() // everything this publisher sent has been handed to the subscribers
		}
	}

	publishAll("online")
	quiet(subs[0].rec, func() int {
		total := 0
		for _, s := range subs {
			total += s.rec.count()
		}
		return total
	})
	// The durable subscribers leave; traffic goes on; they come back.
	for _, s := range subs {
		if s.opts.Resume {
			s.rec.stop()
			s.rec.c.Disconnect(0)
		}
	}
	time.Sleep(200 * time.Millisecond)
	publishAll("offline")
	for _, s := range subs {
		if s.opts.Resume {
			c, ack := e2e.ConnectRaw(t, addr, s.v, s.opts)
			require.True(t, ack.SessionPresent, s.key)
			s.rec = s.rec.resume(c)
		}
	}
	// Late subscribers: the retained messages each user may read.
	for i, user := range gridUsers {
		v := []packets.Version{packets.V311, packets.V5}[i%2]
		s := &sub{key: fmt.Sprintf("%s retained %v", user, v), v: v}
		c, _ := e2e.ConnectRaw(t, addr, v, e2e.RawOpts{ID: "late-" + user, User: user, Pass: passwords[user]})
		c.Subscribe(e2e.RawSub{Filter: "#", QoS: 2})
		s.rec = record(c)
		subs = append(subs, s)
	}
	quiet(subs[0].rec, func() int {
		total := 0
		for _, s := range subs {
			total += s.rec.count()
		}
		return total
	})
	out := map[string][]string{}
	for _, s := range subs {
		s.rec.stop()
		got := s.rec.all()
		slices.Sort(got)
		out[s.key] = got
	}
	return out
}

// quiet waits until count has not changed for half a second (at most
// 20 s).
func quiet(_ *recorder, count func() int) {
	last, since := -1, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n := count(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 500*time.Millisecond {
			return
		}
	}
}

// recorder reads a raw client's deliveries in the background,
// acknowledging each, and keeps them (and those of the connections it
// resumed before).
type recorder struct {
	c        *e2e.Raw
	mu       sync.Mutex
	got      []string
	stopping atomic.Bool
	done     chan struct{}
}

func record(c *e2e.Raw, before ...string) *recorder {
	r := &recorder{c: c, got: before, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		p, err := r.c.Next(time.Minute)
		if err != nil {
			var ne net.Error
			if r.stopping.Load() || !errors.As(err, &ne) || !ne.Timeout() {
				return
			}
			continue
		}
		switch p.Type {
		case packets.PUBLISH:
			r.mu.Lock()
			r.got = append(r.got, fmt.Sprintf("%s %s q%d r%v", p.Publish.Topic, p.Publish.Payload, p.Publish.QoS, p.Publish.Retain))
			r.mu.Unlock()
			switch p.Publish.QoS {
			case 1:
				r.c.Conn.Write(e2e.AckPacket(packets.PUBACK, p.PacketID))
			case 2:
				r.c.Conn.Write(e2e.AckPacket(packets.PUBREC, p.PacketID))
			}
		case packets.PUBREL:
			r.c.Conn.Write(e2e.AckPacket(packets.PUBCOMP, p.PacketID))
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// stop ends the reader (the connection stays open).
func (r *recorder) stop() {
	r.stopping.Store(true)
	r.c.Conn.SetReadDeadline(time.Now())
	<-r.done
}

// resume records a new connection of the same subscriber.
func (r *recorder) resume(c *e2e.Raw) *recorder { return record(c, r.all()...) }
