package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminNeedsTheToken(t *testing.T) {
	tb := startBroker(t, nil)
	resp, err := http.Get("http://" + tb.Addr("admin") + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "health needs no token")
	for _, path := range []string{"/metrics", "/clients", "/bans", "/plugins"} {
		resp, err := http.Get("http://" + tb.Addr("admin") + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 401, resp.StatusCode, path)
	}
	req, _ := http.NewRequest("GET", "http://"+tb.Addr("admin")+"/clients", nil)
	req.Header.Set("Authorization", "Bearer not-the-token-at-all")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
}

func TestAdminClientsAndBans(t *testing.T) {
	tb := startBroker(t, nil)
	s1 := tb.Login(t, "s1", "sensor1")
	tb.Login(t, "d1", "dashboard")
	assert.Equal(t, "2", tb.Metric(t, "mqttguard_connections"))
	var ids []string
	for _, c := range tb.Clients(t) {
		ids = append(ids, c.ID+":"+c.State)
		assert.Equal(t, "127.0.0.1", c.Addr)
		assert.Positive(t, c.Score)
	}
	assert.ElementsMatch(t, []string{"s1:normal", "d1:normal"}, ids)

	code, body := tb.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "reason": "stolen"}`)
	require.Equal(t, 201, code, body)
	select {
	case d := <-s1.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode, "a connected client the ban matches is kicked: DISCONNECT 0x98 (0x8A is a CONNACK code)")
	case <-time.After(5 * time.Second):
		t.Fatal("not kicked")
	}
	_, ca, err := tb.Dial5(t, dialOpts{ID: "s1", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode)
	code, body = tb.Admin(t, "GET", "/bans", "")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `"value": "sensor1"`)
	saved, err := os.ReadFile(filepath.Join(tb.Dir, "bans.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(saved), `"reason":"stolen"`, "bans survive a restart")

	code, body = tb.Admin(t, "DELETE", "/bans/username/sensor1", "")
	require.Equal(t, 200, code, body)
	tb.Login(t, "s1", "sensor1")
	code, _ = tb.Admin(t, "DELETE", "/bans/username/sensor1", "")
	assert.Equal(t, 404, code)
	code, body = tb.Admin(t, "POST", "/bans", `{"kind": "planet", "value": "mars"}`)
	assert.Equal(t, 400, code, body)
	code, body = tb.Admin(t, "POST", "/bans", `{"kind": "ip", "value": "10.0.0.1", "for": "forever"}`)
	assert.Equal(t, 400, code, body)
	assert.Contains(t, body, "not a positive duration")
	code, _ = tb.Admin(t, "POST", "/clients/nobody/kick", "")
	assert.Equal(t, 404, code)
}

// Reload changes the ACL under a live connection; a file with an error
// keeps the old rules and says where the error is.
func TestReloadKeepsConnections(t *testing.T) {
	tb := startBroker(t, nil)
	s1 := tb.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0x87), s1.Pub(t, "extra/x", "1", 1))
	aclPath := filepath.Join(tb.Dir, "acl")
	require.NoError(t, os.WriteFile(aclPath, []byte(guardstack.DefaultACL+"\nuser sensor1\ntopic write extra/#\n"), 0o600))
	code, body := tb.Admin(t, "POST", "/reload", "")
	require.Equal(t, 200, code, body)
	assert.Equal(t, byte(0), s1.Pub(t, "extra/x", "2", 1), "same connection, new rules")

	require.NoError(t, os.WriteFile(aclPath, []byte("user sensor1\ntopic write extra/#\ntopic frobnicate x\n"), 0o600))
	code, body = tb.Admin(t, "POST", "/reload", "")
	assert.Equal(t, 422, code)
	assert.Contains(t, body, "acl kept")
	assert.Contains(t, body, ":3", "the line of the error")
	assert.Equal(t, byte(0), s1.Pub(t, "extra/x", "3", 1), "the old rules are still in force")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/t", "4", 1))
}

func TestModeSwitch(t *testing.T) {
	tb := startBroker(t, nil)
	code, body := tb.Admin(t, "POST", "/mode/observe", "")
	require.Equal(t, 200, code, body)
	s1 := tb.Login(t, "s1", "sensor1")
	for i := 0; i < 30; i++ {
		require.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/t", "x", 1), "observe: nothing is refused for its rate")
	}
	assert.NotEqual(t, "0", tb.Metric(t, `mqttguard_observed_total{component="rate-limit"}`))
	assert.Contains(t, tb.Logs.String(), `msg="mqttguard: would reject"`)
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor2/t", "x", 1), "the ACL is enforced in every mode")
	code, _ = tb.Admin(t, "POST", "/mode/reckless", "")
	assert.Equal(t, 400, code)
	_, body = tb.Admin(t, "GET", "/metrics", "")
	assert.True(t, strings.Contains(body, "mqttguard_decisions_total"))
}
