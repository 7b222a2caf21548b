package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
)

// A device connects through the proxy with a token: its acl claim
// decides, and its exp ends the connection at the proxy.
func TestProxyTokenSession(t *testing.T) {
	secret := []byte("a test HMAC secret of at least thirty-two bytes")
	tp := startProxy(t, func(c *guardconf.Config) {
		path := filepath.Join(t.TempDir(), "jwt.secret")
		require.NoError(t, os.WriteFile(path, secret, 0o600))
		c.Security.JWT = guardconf.JWTConfig{Enable: true, Algorithms: []string{"HS256"}, SecretFile: path, Audience: "mqtt",
			Claims: map[string]string{"sub": "%c"}}
	})
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "#")
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := mqtttest.HS256Token(t, secret, map[string]any{"sub": "d1", "aud": "mqtt", "exp": exp.Unix(),
		"acl": []any{map[string]any{"permission": "allow", "action": "publish", "topic": "devices/${clientid}/#"}}})

	c := mqtttest.DialRaw(t, tp.Addr("tcp"))
	require.Equal(t, byte(0), mqtttest.Connect5(t, c, "d1", "", tok, nil))
	assert.Less(t, mqtttest.Publish5(t, c, "devices/d1/temp", 1, 1), byte(0x80))
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, "sensors/sensor1/temp", 1, 2), "the token's rules replace the ACL file's")
	assert.Equal(t, []string{"devices/d1/temp 21.5"}, watcher.Received(500*time.Millisecond), "mosquitto saw only what passed")

	code, at := mqtttest.Disconnected(t, c, time.Until(exp)+5*time.Second)
	assert.Equal(t, 0xA0, code, "DISCONNECT 0xA0: maximum connect time")
	assert.Less(t, at.Sub(exp), time.Second, "within a second of exp")
}
