package main

import (
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

// A device connects to mosquitto with a token: the plugin verifies it,
// its acl claim decides, and its exp ends the connection.
func TestTokenInsideMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	dir, pw := dataDir(t, "127.0.0.1:0")
	secret := []byte("a test HMAC secret of at least thirty-two bytes")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "jwt.secret"), secret, 0o600))
	conf := filepath.Join(dir, guardstack.ConfigFile)
	text, err := os.ReadFile(conf)
	require.NoError(t, err)
	edited := strings.NewReplacer("[security.jwt]\nenable = false", "[security.jwt]\nenable = true",
		`algorithms = ["RS256", "ES256"]`, `algorithms = ["HS256"]`, `secret_file = ""`, `secret_file = "jwt.secret"`,
		`leeway = "30s"`, `leeway = "0s"`).Replace(string(text))
	require.NoError(t, os.WriteFile(conf, []byte(edited), 0o600))
	m := mqtttest.RunMosquitto(t, bin, dir, "allow_anonymous true", "plugin "+so, "plugin_opt_config "+conf)

	dash := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, dash, "dash", "admin", pw["admin"], nil), "passwords beside tokens")
	mqtttest.Subscribe5(t, dash, "#")
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := mqtttest.HS256Token(t, secret, map[string]any{"sub": "d1", "aud": "mqtt", "exp": exp.Unix(),
		"acl": map[string]any{"pub": []string{"devices/${clientid}/#"}}})
	c := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, c, "d1", "", tok, nil))
	assert.Less(t, mqtttest.Publish5(t, c, "devices/d1/temp", 1, 1), byte(0x80))
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, "sensors/sensor1/temp", 1, 2))
	got := mqtttest.Received(t, dash, 500*time.Millisecond)
	assert.Equal(t, []string{"devices/d1/temp"}, got)
	forged := mqtttest.DialRaw(t, m.Addr)
	assert.Equal(t, byte(0x87), mqtttest.Connect5(t, forged, "d2", "", tok+"x", nil), "mosquitto 2.0 answers every refusal 0x87")

	code, at := mqtttest.Disconnected(t, c, time.Until(exp)+5*time.Second)
	assert.Equal(t, 0x98, code, "mosquitto 2.0's kick says 0x98 (administrative action): a plugin cannot choose 0xA0")
	assert.Less(t, at.Sub(exp), time.Second, "within a second of exp")
	if t.Failed() {
		t.Log(m.Log())
	}
}
