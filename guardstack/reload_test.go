package guardstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testStack is a Stack built from a data directory like the one Setup
// makes (cheap password hashes, no TLS), its admin API on a free port.
type testStack struct {
	*Stack
	dir  string
	logs *mqtttest.SyncBuffer
}

// testConfig is the default configuration on free loopback ports and
// without TLS.
func testConfig() string {
	r := strings.NewReplacer("port = 1883", "port = 0", "enable_tls = true", "enable_tls = false",
		`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`)
	return r.Replace(string(guardconf.DefaultConfig))
}

func startStack(t *testing.T, config string) *testStack {
	t.Helper()
	dir := t.TempDir()
	h, err := passwd.HashIterations("sensor1-pw", 1000)
	require.NoError(t, err)
	for name, text := range map[string]string{
		"passwd": "sensor1:" + h + "\n", "acl": DefaultACL, "admin.token": "0123456789abcdef0123\n", ConfigFile: config,
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	cfg, err := guardconf.LoadConfig(filepath.Join(dir, ConfigFile), nil)
	require.NoError(t, err)
	logs := &mqtttest.SyncBuffer{}
	st, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close(context.Background()) })
	return &testStack{Stack: st, dir: dir, logs: logs}
}

// rewrite edits the configuration file on disk, as an operator would
// before a SIGHUP.
func (ts *testStack) rewrite(t *testing.T, old, new string) {
	t.Helper()
	path := filepath.Join(ts.dir, ConfigFile)
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(text), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(text), old, new, 1)), 0o600))
}

// publish sends n publishes of sensor1, each to a topic of its own (so
// the per-topic limit stays out of it), and returns how many were
// allowed and the first refusal.
func (ts *testStack) publish(n int) (allowed int, refused mqttguard.Decision) {
	c := &mqttguard.Client{ID: "s1", Username: "sensor1"}
	now := time.Now()
	for i := range n {
		d := ts.Guard.Publish(context.Background(), c, &mqttguard.Message{Topic: fmt.Sprintf("sensors/sensor1/t%d", i), Subscribers: -1}, now)
		if d.Verdict == mqttguard.Allow {
			allowed++
		} else if refused.Verdict == mqttguard.Allow {
			refused = d
		}
	}
	return allowed, refused
}

func TestReloadAppliesTheUserRateLimit(t *testing.T) {
	ts := startStack(t, testConfig())
	allowed, _ := ts.publish(10)
	require.Equal(t, 10, allowed, "the default user limit (50/s, burst 100) lets ten through")

	ts.rewrite(t, "user_tokens_per_second = 50.0", "user_tokens_per_second = 1.0")
	ts.rewrite(t, "user_burst_capacity = 100.0", "user_burst_capacity = 4.0")
	require.NoError(t, ts.Reload())

	allowed, refused := ts.publish(10)
	assert.Less(t, allowed, 5, "the new burst of 4 (scaled by the client's trust) is in force")
	assert.Equal(t, "messages per user", refused.Cause.Rule)
	assert.Equal(t, 4.0, ts.Cfg.Security.RateLimit.UserBurstCapacity, "the configuration in force says so")
	assert.Contains(t, ts.logs.String(), `msg="security.rate_limit.user_burst_capacity changed from 100 to 4"`)
	assert.Contains(t, ts.logs.String(), "level=INFO")
}

func TestReloadNamesWhatNeedsARestart(t *testing.T) {
	ts := startStack(t, testConfig())
	ts.rewrite(t, "port = 0", "port = 1884")
	ts.rewrite(t, "max_clients = 10000", "max_clients = 5")
	ts.rewrite(t, `mode = "full"`, `mode = "light"`)
	require.NoError(t, ts.Reload())

	logs := ts.logs.String()
	assert.Contains(t, logs, `level=WARN msg="mqtt.port changed from 0 to 1884: restart to apply"`)
	assert.Contains(t, logs, `level=WARN msg="mqtt.max_clients changed from 10000 to 5: restart to apply"`)
	assert.Contains(t, logs, `level=INFO msg="security.mode changed from \"full\" to \"light\""`)
	assert.Equal(t, 0, ts.Cfg.MQTT.Port, "Cfg is what is in force: the old port until a restart")
	assert.Equal(t, "light", ts.Guard.Mode().String())
	assert.Equal(t, "light", ts.Cfg.Security.Mode)

	// A second reload says it again: the port is still waiting.
	require.NoError(t, ts.Reload())
	assert.Equal(t, 2, strings.Count(ts.logs.String(), "mqtt.port changed from 0 to 1884"))
	assert.Equal(t, 1, strings.Count(ts.logs.String(), "security.mode changed"), "the mode was applied once")
}

// A setting the command line overrode (the proxy's -upstream) stays
// overridden, and is no change to report.
func TestReloadKeepsOverrides(t *testing.T) {
	ts := startStack(t, testConfig())
	ts.Cfg.Override(func(c *guardconf.Config) { c.MQTT.MaxClients = 5 })
	require.NoError(t, ts.Reload())
	assert.Equal(t, 5, ts.Cfg.MQTT.MaxClients)
	assert.NotContains(t, ts.logs.String(), "max_clients")
	assert.Contains(t, ts.logs.String(), "settings_changed=0")
}

func TestReloadAppliesTrustFlappingAndProfiles(t *testing.T) {
	ts := startStack(t, testConfig())
	ts.rewrite(t, "username_factor = 1.0", "username_factor = 0.9")
	ts.rewrite(t, "max_connects = 15", "max_connects = 4")
	ts.rewrite(t, `interval = "5m"`, `interval = "1m"`)
	require.NoError(t, ts.Reload())
	assert.Equal(t, 0.9, ts.Tracker.Config().UsernameFactor)
	assert.Equal(t, 4, ts.Flapping.Config().MaxConnects)
	assert.Equal(t, time.Minute, ts.Cfg.Security.Devices[0].Interval)

	c := &mqttguard.Client{ID: "d1", Username: "sensor1"}
	now := time.Now()
	m := &mqttguard.Message{Topic: "sensors/sensor1/report", Subscribers: -1}
	require.Equal(t, mqttguard.Allow, ts.Guard.Publish(context.Background(), c, m, now).Verdict)
	d := ts.Guard.Publish(context.Background(), c, m, now.Add(10*time.Second))
	assert.Equal(t, mqttguard.Drop, d.Verdict, "10 s is too early")
	assert.Contains(t, d.Cause.Detail, "profile 1m0s±30s")
}

func TestReloadWithAFileThatDoesNotParseChangesNothing(t *testing.T) {
	ts := startStack(t, testConfig())
	ts.rewrite(t, "user_burst_capacity = 100.0", "user_burst_capacity = 1.0\n[security.trust")
	err := ts.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), ConfigFile+":")
	assert.Equal(t, 100.0, ts.Cfg.Security.RateLimit.UserBurstCapacity)
	allowed, _ := ts.publish(10)
	assert.Equal(t, 10, allowed)
}

func (ts *testStack) admin(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ts.Addr("admin")+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAdminReloadSaysWhatItDid(t *testing.T) {
	ts := startStack(t, testConfig())
	require.NoError(t, ts.StartAdmin())
	ts.rewrite(t, "port = 0", "port = 1884")
	ts.rewrite(t, "user_tokens_per_second = 50.0", "user_tokens_per_second = 5.0")
	code, body := ts.admin(t, "POST", "/reload")
	require.Equal(t, 200, code, body)
	var res adminapi.ReloadResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	assert.Equal(t, []string{"mqtt.port changed from 0 to 1884: restart to apply"}, res.RestartNeeded)
	assert.Equal(t, []string{"security.rate_limit.user_tokens_per_second changed from 50 to 5"}, res.Applied)
	assert.ElementsMatch(t, []string{"acl", "passwords", "plugins"}, res.Reloaded)
	assert.Equal(t, 5.0, ts.Guard.Config().RateLimits.MessagesPerUser.PerSecond)
}

// Empty lists are [] (a client iterating over them needs no null check),
// and modes are spelled as in the configuration.
func TestAdminListsAndModes(t *testing.T) {
	ts := startStack(t, testConfig())
	require.NoError(t, ts.StartAdmin())
	for _, path := range []string{"/bans", "/clients", "/plugins"} {
		code, body := ts.admin(t, "GET", path)
		require.Equal(t, 200, code, path)
		assert.Equal(t, "[]", strings.TrimSpace(body), path)
	}
	code, body := ts.admin(t, "POST", "/mode/light")
	require.Equal(t, 200, code, body)
	assert.JSONEq(t, `{"mode": "light"}`, body)
	assert.Equal(t, "light", ts.Cfg.Security.Mode)
	assert.Contains(t, ts.logs.String(), "mode=light")

	code, body = ts.admin(t, "POST", "/mode/bogus")
	assert.Equal(t, 400, code)
	assert.Contains(t, body, "want observe, light or full")
	assert.NotContains(t, body, "enforce-")
}
