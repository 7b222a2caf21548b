package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/jwtauth"
)

// The token the command mints is one the broker's jwtauth admits.
func TestMintedTokenVerifies(t *testing.T) {
	secret := "a test HMAC secret of at least thirty-two bytes"
	path := filepath.Join(t.TempDir(), "jwt.secret")
	require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), 0o600))
	now := time.Now()
	var out bytes.Buffer
	require.NoError(t, run([]string{"-secret", path, "-sub", "sensor-42", "-ttl", "10m", "-acl", `{"pub": ["sensors/${clientid}/#"]}`}, &out, now))

	a, err := jwtauth.New(jwtauth.Config{Algorithms: []string{"HS256"}, Secret: []byte(secret), Audience: "mqtt",
		Claims: map[string]string{"sub": "%c"}}) // as the example broker's default: the acl claim names ${clientid}
	require.NoError(t, err)
	defer a.Close()
	r, err := a.Verify(context.Background(), strings.TrimSpace(out.String()), "", "sensor-42", now)
	require.NoError(t, err)
	assert.Equal(t, "sensor-42", r.Identity)
	assert.Equal(t, now.Add(10*time.Minute).Unix(), r.Expires.Unix())
	assert.True(t, r.ACL.Check(acl.Client{ID: "sensor-42", Username: "sensor-42"}, acl.Publish, "sensors/sensor-42/t").Allowed)

	for _, args := range [][]string{
		{"-sub", "x"}, {"-secret", path}, {"-secret", path, "-sub", "x", "-ttl", "-1s"},
		{"-secret", path, "-sub", "x", "-acl", `{"pub": "a"}`},
	} {
		assert.Error(t, run(args, &out, now), "%v", args)
	}
}
