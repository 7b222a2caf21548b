package main

import (
	"encoding/json"
	"net/http"
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

// hostilePlugins are Wasm policy plugins that spin until their fuel runs
// out, grow their memory past the limit and trap (wasmguard/testdata),
// with the failure policy each is run under.
const hostilePlugins = `
[[plugins]]
name = "spin"
path = "plugins/spin.wasm"
failure = "open"

[[plugins]]
name = "growbomb"
path = "plugins/growbomb.wasm"
failure = "open"
max_memory_mb = 1

[[plugins]]
name = "trap"
path = "plugins/trap.wasm"
failure = "closed"
`

// mosquitto's one broker thread runs the plugins' calls: hostile ones
// cost it bounded time each, their failure policies decide, and the
// broker goes on serving.
func TestHostileWasmInsideMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	admin := freeAddr(t)
	dir, pw := dataDir(t, admin)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "plugins"), 0o700))
	for _, name := range []string{"spin", "growbomb", "trap"} {
		wasm, err := os.ReadFile(filepath.Join("..", "wasmguard", "testdata", name+".wasm"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "plugins", name+".wasm"), wasm, 0o600))
	}
	conf := filepath.Join(dir, guardstack.ConfigFile)
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(hostilePlugins)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	m := mqtttest.RunMosquitto(t, bin, dir, "allow_anonymous true", "plugin "+so, "plugin_opt_config "+conf)

	dash := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, dash, "dash", "dashboard", pw["dashboard"], nil))
	mqtttest.Subscribe5(t, dash, "#")
	sensor := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, sensor, "sensor-1", "sensor1", pw["sensor1"], nil))

	const n = 5
	for i := range n {
		assert.Equal(t, byte(0x87), mqtttest.Publish5(t, sensor, "sensors/sensor1/temp", 1, uint16(i+1)),
			"spin and growbomb fail open, trap fails closed: refused, and answered (never a hang)")
	}
	assert.Zero(t, mqtttest.Count(mqtttest.Received(t, dash, time.Second), "sensors/sensor1/temp"), "refused: not delivered")

	// The broker still serves: a new client connects and a subscription
	// still works.
	late := mqtttest.DialRaw(t, m.Addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, late, "late", "dashboard", pw["dashboard"], nil))
	mqtttest.Subscribe5(t, late, "sensors/#")

	// The admin API tells the operator which plugin failed and how.
	token, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	require.NoError(t, err)
	req, _ := http.NewRequest("GET", "http://"+admin+"/plugins", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var plugins []struct {
		Name  string
		Stats struct{ Failures, FuelExhausted, MemoryLimit, Traps, Quarantined uint64 }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&plugins))
	require.Len(t, plugins, 3)
	failed := map[string]uint64{}
	for _, p := range plugins {
		failed[p.Name] = p.Stats.Failures
		switch p.Name {
		case "spin":
			assert.Positive(t, p.Stats.FuelExhausted+p.Stats.Quarantined, "spin: out of fuel (or quarantined after)")
		case "growbomb":
			assert.Positive(t, p.Stats.MemoryLimit+p.Stats.Quarantined, "growbomb: at its memory limit (or quarantined after)")
		case "trap":
			assert.Positive(t, p.Stats.Traps+p.Stats.Quarantined, "trap: trapped (or quarantined after)")
		}
	}
	for _, name := range []string{"spin", "growbomb", "trap"} {
		assert.EqualValues(t, n, failed[name], "%s: every call decided by the failure policy", name)
	}
	if t.Failed() {
		t.Log(m.Log())
	}
}
