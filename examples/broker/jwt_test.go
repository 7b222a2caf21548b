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

var jwtSecret = []byte("a test HMAC secret of at least thirty-two bytes")

// withTokens turns [security.jwt] on with an HMAC secret in dir.
func withTokens(t *testing.T) func(*guardconf.Config) {
	return func(c *guardconf.Config) {
		path := filepath.Join(t.TempDir(), "jwt.secret")
		require.NoError(t, os.WriteFile(path, jwtSecret, 0o600))
		c.Security.JWT = guardconf.JWTConfig{Enable: true, Algorithms: []string{"HS256"}, SecretFile: path, Audience: "mqtt",
			Claims: map[string]string{"sub": "%c"}}
	}
}

// A device connects with a token: its acl claim decides what it may do,
// and its exp ends the connection.
func TestTokenSession(t *testing.T) {
	tb := startBroker(t, withTokens(t))
	addr := tb.Addr("tcp")
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := mqtttest.HS256Token(t, jwtSecret, map[string]any{"sub": "d1", "aud": "mqtt", "exp": exp.Unix(),
		"acl": map[string]any{"pub": []string{"devices/${clientid}/#"}, "sub": []string{"cmd/${clientid}"}}})

	c := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, c, "d1", "", tok, nil), "the token admits it")
	assert.Less(t, mqtttest.Publish5(t, c, "devices/d1/temp", 1, 1), byte(0x80), "the acl claim allows its own subtree")
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, "sensors/sensor1/temp", 1, 2), "and nothing the ACL file gives others")
	assert.Equal(t, byte(1), mqtttest.SubscribeCode5(t, c, "cmd/d1", 1))
	// subscribe_check = "delivery": a subscription is granted, and each
	// message is checked as it is delivered.
	assert.Equal(t, byte(1), mqtttest.SubscribeCode5(t, c, "sensors/#", 1))

	forged := mqtttest.HS256Token(t, []byte("not the secret, but thirty-two bytes long"), map[string]any{"sub": "d1", "aud": "mqtt", "exp": exp.Unix()})
	f := mqtttest.DialRaw(t, addr)
	assert.Equal(t, byte(0x86), mqtttest.Connect5(t, f, "d2", "", forged, nil), "a forged token is refused, never tried as a password")
	claimed := mqtttest.DialRaw(t, addr)
	assert.Equal(t, byte(0x86), mqtttest.Connect5(t, claimed, "d1", "admin", tok, nil), "a token never claims another username")
	other := mqtttest.DialRaw(t, addr)
	assert.Equal(t, byte(0x86), mqtttest.Connect5(t, other, "victim-7", "", tok, nil),
		"nor another client ID: its holder does not choose whose topics ${clientid} opens")
	pw := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, pw, "s1", "sensor1", passwords["sensor1"], nil), "passwords still work beside tokens")
	admin := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, admin, "ops", "admin", passwords["admin"], nil))
	mqtttest.Publish5(t, pw, "sensors/sensor1/temp", 1, 1)
	mqtttest.Publish5(t, admin, "cmd/d1", 1, 1)
	got := mqtttest.Received(t, c, time.Second)
	assert.Equal(t, []string{"cmd/d1"}, got, "what the acl claim lets it read, nothing the file's rules would")

	code, at := mqtttest.Disconnected(t, c, time.Until(exp)+5*time.Second)
	assert.Equal(t, 0xA0, code, "DISCONNECT 0xA0: maximum connect time")
	assert.Less(t, at.Sub(exp), time.Second, "within a second of exp")
	assert.GreaterOrEqual(t, at.Sub(exp), -50*time.Millisecond, "not before")

	late := mqtttest.DialRaw(t, addr)
	assert.Equal(t, byte(0x86), mqtttest.Connect5(t, late, "d1", "", tok, nil), "an expired token is refused")
}
