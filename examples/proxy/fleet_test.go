package main

import (
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two proxies in front of their own mosquittos, one fleet: a ban made on
// one kicks the client connected through the other.
func TestProxyFleetBan(t *testing.T) {
	redis := testenv.StartRedis(t)
	join := func(name string) func(*guardconf.Config) {
		return func(c *guardconf.Config) { c.Cluster.RedisURL, c.Cluster.Node = redis.URL(), name }
	}
	a, b := startProxy(t, join("proxy-a")), startProxy(t, join("proxy-b"))
	dev := b.Login(t, "dev-9", "sensor1")
	assert.Contains(t, []byte{0x00, 0x10}, dev.Pub(t, "sensors/sensor1/temp", "19", 1), "accepted (0x10: mosquitto has no subscriber)")

	code, body := a.Admin(t, "POST", "/bans", `{"kind": "username", "value": "sensor1", "for": "10m"}`)
	require.Equal(t, 201, code, body)
	select {
	case d := <-dev.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode)
	case <-time.After(100 * time.Millisecond):
		t.Fatal("the ban made on proxy a did not kick the client on proxy b within 100 ms")
	}
	_, ca, err := b.Dial5(t, dialOpts{ID: "dev-9", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode)
}
