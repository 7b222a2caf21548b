package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client that ends with DISCONNECT 0x04 (disconnect with will) asks
// for its will: the proxy decides it like any other end of session. On
// aca3f31 the DISCONNECT went upstream as it was, and the upstream
// published a will the ACL no longer allowed.
func TestProxyDisconnectWithWillIsChecked(t *testing.T) {
	tp := startProxy(t, nil)
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	will := func(id string) e2e.RawOpts {
		return e2e.RawOpts{ID: id, User: "sensor1", Pass: passwords["sensor1"],
			Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: id + " gone", QoS: 1}}
	}
	ok, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-ok"))
	require.Equal(t, reason.Success, ack.ReasonCode)
	denied, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-denied"))
	require.Equal(t, reason.Success, ack.ReasonCode)

	ok.Disconnect(reason.DisconnectWithWill)
	assert.Equal(t, []string{"sensors/sensor1/status w-ok gone"}, watcher.Received(time.Second), "allowed: the upstream publishes it")

	// The sensors lose their write rule; the proxy reloads.
	aclPath := filepath.Join(tp.Dir, "acl")
	acl, err := os.ReadFile(aclPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(aclPath, []byte(strings.ReplaceAll(string(acl), "pattern write sensors/%u/#", "")), 0o600))
	code, body := tp.Admin(t, "POST", "/reload", "")
	require.Equal(t, 200, code, body)

	denied.Disconnect(reason.DisconnectWithWill)
	assert.Empty(t, watcher.Received(time.Second), "the will topic is no longer allowed")
}

// A delayed will is decided when it would go out: the client is banned
// during the delay, and its will never reaches the upstream. On aca3f31
// the proxy decided at the disconnect and left the delay to the
// upstream.
func TestProxyDelayedWillIsCheckedWhenItGoesOut(t *testing.T) {
	tp := startProxy(t, nil)
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	will := func(id string) e2e.RawOpts {
		return e2e.RawOpts{ID: id, User: "sensor1", Pass: passwords["sensor1"], Resume: true, SessionExpiry: 60,
			Will: &e2e.RawWill{Topic: "sensors/sensor1/status", Payload: id + " gone", QoS: 1, Delay: 2}}
	}
	banned, _ := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-banned"))
	kept, _ := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-kept"))
	back, _ := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-back"))
	left := time.Now()
	banned.Close()
	kept.Close()
	back.Close()
	time.Sleep(300 * time.Millisecond)
	code, body := tp.Admin(t, "POST", "/bans", `{"kind": "client", "value": "w-banned", "for": "1m", "reason": "test"}`)
	require.Equal(t, 201, code, body)
	_, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), packets.V5, will("w-back")) // back within the delay
	require.Equal(t, reason.Success, ack.ReasonCode)
	assert.True(t, ack.SessionPresent, "the upstream session is resumed")

	assert.Empty(t, watcher.Received(time.Until(left.Add(1500*time.Millisecond))), "no will before its delay")
	assert.Equal(t, []string{"sensors/sensor1/status w-kept gone"}, watcher.Received(3*time.Second))
}

// The proxy's sibling of the broker's takeover hole: the upstream hands
// a client ID's session to whoever connects with it. Through the proxy,
// another user taking admin's client ID over gets a fresh upstream
// session, not admin's subscriptions and queued messages (on aca3f31
// the upstream resumed it, and the proxy, refusing bob each message,
// acknowledged admin's queue away).
func TestProxySessionTakeoverByAnotherUserStartsFresh(t *testing.T) {
	for _, v := range []packets.Version{packets.V311, packets.V5} {
		t.Run(v.String(), func(t *testing.T) {
			tp := startProxy(t, nil)
			owner := e2e.RawOpts{ID: "dashboard-X", User: "admin", Pass: passwords["admin"], Resume: true, SessionExpiry: 3600}
			adm, _ := e2e.ConnectRaw(t, tp.Addr("tcp"), v, owner)
			require.Equal(t, []byte{1}, adm.Subscribe(e2e.RawSub{Filter: "payroll/#", QoS: 1}))
			feed := tp.raw(t, "payroll-feed")
			for range 3 {
				feed.Pub(t, "payroll/p", "salary", 1)
			}
			require.Len(t, adm.Collect(time.Second, false), 3)
			adm.Close()

			bob, ack := e2e.ConnectRaw(t, tp.Addr("tcp"), v, e2e.RawOpts{ID: "dashboard-X", User: "bob", Pass: passwords["bob"], Resume: true, SessionExpiry: 3600})
			require.Equal(t, reason.Success, ack.ReasonCode)
			assert.False(t, ack.SessionPresent, "admin's session is not bob's")
			feed.Pub(t, "payroll/p", "salary", 1)
			assert.Empty(t, bob.Collect(time.Second, true))
			bob.Close()

			adm, ack = e2e.ConnectRaw(t, tp.Addr("tcp"), v, owner)
			assert.False(t, ack.SessionPresent, "bob's session is not admin's either")

			// The owner itself resumes as before.
			require.Equal(t, []byte{1}, adm.Subscribe(e2e.RawSub{Filter: "payroll/#", QoS: 1}))
			adm.Disconnect(0)
			feed.Pub(t, "payroll/p", "queued", 1)
			adm, ack = e2e.ConnectRaw(t, tp.Addr("tcp"), v, owner)
			assert.True(t, ack.SessionPresent)
			got := adm.Collect(time.Second, true)
			require.Len(t, got, 1)
			assert.Equal(t, "payroll/p queued", got[0].String())
		})
	}
}
