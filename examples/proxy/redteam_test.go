package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What an outside review of the session and will fixes still found in
// the proxy, kept as regressions.

// withBob puts bob in the ACL file the configuration names (so that a
// reload reads him too) and takes the rate limits away.
func withBob(c *guardconf.Config) {
	os.WriteFile(c.Path(c.Security.ACLFile), []byte(e2e.BobACL), 0o600)
	c.Security.RateLimit = guardconf.RateLimitConfig{}
	c.Security.Flapping.MaxConnects = 1 << 30
}

func login(t *testing.T, tp *testProxy, v packets.Version, o e2e.RawOpts) *e2e.Raw {
	t.Helper()
	c, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), v, o)
	require.Equal(t, reason.Success, ack.ReasonCode, "CONNACK for %s", o.ID)
	return c
}

// A new connection with a live session's client ID: the upstream would
// take the old connection over and publish its will itself, unchecked.
// The proxy ends the old session first, its will decided.
func TestProxyTakeoverDecidesTheOldWill(t *testing.T) {
	for _, who := range []string{"sensor1", "bob"} {
		t.Run("taken over by "+who, func(t *testing.T) {
			tp := startProxy(t, withBob)
			watcher := tp.raw(t, "watcher")
			watcher.Sub(t, "sensors/#")
			login(t, tp, packets.V5, e2e.RawOpts{ID: "w-denied", User: "sensor1", Pass: passwords["sensor1"],
				Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: "forbidden will", QoS: 1}})
			acl := filepath.Join(tp.Dir, "acl")
			b, err := os.ReadFile(acl)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(acl, []byte(strings.ReplaceAll(string(b), "pattern write sensors/%u/#", "")), 0o600))
			code, body := tp.Admin(t, "POST", "/reload", "")
			require.Equal(t, 200, code, body)
			login(t, tp, packets.V5, e2e.RawOpts{ID: "w-denied", User: who, Pass: passwords[who]})
			assert.Empty(t, watcher.Received(time.Second), "the will topic is no longer allowed")
		})
	}
}

// DISCONNECT 0x04 with a new Session Expiry Interval of 0 ends the
// session: its properties reach the upstream, whichever way the will is
// decided.
func TestProxyDisconnectWithWillKeepsItsProperties(t *testing.T) {
	tp := startProxy(t, withBob)
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	o := e2e.RawOpts{ID: "dx", User: "sensor1", Pass: passwords["sensor1"], Resume: true, SessionExpiry: 3600,
		Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: "bye", QoS: 1}}
	c := login(t, tp, packets.V5, o)
	c.Subscribe(e2e.RawSub{Filter: "commands/sensor1/#", QoS: 1})
	c.Send([]byte{0xe0, 7, 0x04, 5, 0x11, 0, 0, 0, 0}) // 0x04, Session Expiry Interval 0
	c.Close()
	assert.Equal(t, []string{"sensors/sensor1/status bye"}, watcher.Received(time.Second))
	_, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, o)
	assert.False(t, ack.SessionPresent, "the DISCONNECT ended the session")
}

// A will with a delay but no session to outlive the connection goes out
// when the client leaves — decided by the proxy, not passed upstream
// with its delay, where a ban in between would not stop it.
func TestProxyWillDelayWithoutSessionExpiry(t *testing.T) {
	tp := startProxy(t, withBob)
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	c := login(t, tp, packets.V5, e2e.RawOpts{ID: "w7", User: "sensor1", Pass: passwords["sensor1"],
		Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: "gone now", QoS: 1, Delay: 3}})
	c.Close()
	assert.Equal(t, []string{"sensors/sensor1/status gone now"}, watcher.Received(time.Second), "the session ended: no wait")
	code, body := tp.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "for": "1h", "reason": "test"}`)
	require.Equal(t, 201, code, body)
	assert.Empty(t, watcher.Received(3500*time.Millisecond), "and nothing later")
}

// Clients leaving with the longest will delay there is cannot make the
// proxy hold an upstream connection each: held wills are bounded per
// username (and in total); past the bound a will is decided at once.
func TestProxyHeldWillsAreBounded(t *testing.T) {
	tp := startProxy(t, withBob)
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "bob/#")
	g0 := runtime.NumGoroutine()
	const n = 100
	for i := range n {
		c := login(t, tp, packets.V5, e2e.RawOpts{ID: fmt.Sprintf("hw-%d", i), User: "bob", Pass: passwords["bob"], Resume: true,
			SessionExpiry: 0xffffffff, Will: &e2e.RawWill{Topic: "bob/w", Payload: "x", Delay: 0xffffffff}})
		c.Close()
	}
	got := watcher.Received(2 * time.Second)
	assert.Len(t, got, n-maxHeldPerUser, "past %d held, each will went out at once", maxHeldPerUser)
	assert.Less(t, runtime.NumGoroutine()-g0, 4*maxHeldPerUser+20, "goroutines stay bounded")
	_, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, e2e.RawOpts{ID: "dash", User: "dashboard", Pass: passwords["dashboard"]})
	assert.Equal(t, reason.Success, ack.ReasonCode)
}

// Joining a shared subscription takes messages from the group's other
// members: it needs a read rule that covers the filter, even where a
// plain SUBSCRIBE is checked only on delivery. bob may not black-hole
// the dashboard's share.
func TestProxySharedSubscriptionNeedsReadRights(t *testing.T) {
	tp := startProxy(t, withBob)
	dash := login(t, tp, packets.V5, e2e.RawOpts{ID: "dash", User: "dashboard", Pass: passwords["dashboard"]})
	require.Equal(t, []byte{1}, dash.Subscribe(e2e.RawSub{Filter: "$share/g/sensors/#", QoS: 1}))
	bob := login(t, tp, packets.V5, e2e.RawOpts{ID: "bob", User: "bob", Pass: passwords["bob"]})
	assert.Equal(t, []byte{0x87}, bob.Subscribe(e2e.RawSub{Filter: "$share/g/sensors/#", QoS: 1}))
	s1 := login(t, tp, packets.V5, e2e.RawOpts{ID: "s1", User: "sensor1", Pass: passwords["sensor1"]})
	for i := range 40 {
		s1.Publish("sensors/sensor1/t", fmt.Sprint(i), 1, false)
	}
	assert.Len(t, dash.Collect(time.Second, true), 40)
}

// A client holds at most 1,000 filters through the proxy too: the next
// gets 0x97; an UNSUBSCRIBE frees room.
func TestProxySubscriptionQuota(t *testing.T) {
	tp := startProxy(t, withBob)
	c := login(t, tp, packets.V5, e2e.RawOpts{ID: "many", User: "bob", Pass: passwords["bob"]})
	for i := 0; i < 1000; i += 50 {
		var subs []e2e.RawSub
		for j := i; j < i+50; j++ {
			subs = append(subs, e2e.RawSub{Filter: fmt.Sprint("bob/f/", j)})
		}
		for _, code := range c.Subscribe(subs...) {
			require.Less(t, code, byte(0x80))
		}
	}
	assert.Equal(t, []byte{0x97, 0}, c.Subscribe(e2e.RawSub{Filter: "bob/one-too-many"}, e2e.RawSub{Filter: "bob/f/0"}))
	c.Unsubscribe("bob/f/1")
	assert.Equal(t, []byte{0}, c.Subscribe(e2e.RawSub{Filter: "bob/one-too-many"}))
}
