package guardconf

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedDefaultConfig(t *testing.T) {
	c, err := ParseConfig(DefaultConfig, "default.toml", "/data", nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", c.MQTT.Bind, "loopback by default")
	assert.Equal(t, 1883, c.MQTT.Port)
	assert.Equal(t, 8883, c.MQTT.TLSPort)
	assert.Equal(t, "full", c.Security.Mode)
	assert.Equal(t, 50.0, c.Security.RateLimit.UserTokensPerSecond, "50 a second per user, bursts of 100")
	assert.Equal(t, 100.0, c.Security.RateLimit.UserBurstCapacity)
	assert.Equal(t, 3.0, c.Security.RateLimit.ChannelMessagesPerSecond)
	assert.Equal(t, 10.0, c.Security.RateLimit.IPConnectionsPerSecond)
	assert.Equal(t, packets.DefaultMaxPendingPerAddress, c.MQTT.MaxPendingPerAddress, "the file says the defaults")
	assert.Equal(t, packets.DefaultMaxPending, c.MQTT.MaxPending)
	assert.False(t, c.Security.AllowAnonymous)
	assert.Equal(t, "/data/passwd", c.Path(c.Security.PasswordFile))
	assert.Equal(t, "/abs/x", c.Path("/abs/x"))
}

func TestConfigErrorsNameTheLine(t *testing.T) {
	base := string(DefaultConfig)
	for _, tc := range []struct {
		name, edit, says, at string // at: text on the line the error must name
	}{
		{"unknown key", strings.Replace(base, "max_clients = 10000", "max_clients = 10000\nworkers = 4", 1), "mqtt.workers: unknown key", "workers = 4"},
		{"wrong type", strings.Replace(base, "port = 1883", `port = "1883"`, 1), "incompatible types", `port = "1883"`},
		{"bad mode", strings.Replace(base, `mode = "full"`, `mode = "paranoid"`, 1), `security.mode: "paranoid": want "observe", "light" or "full"`, `mode = "paranoid"`},
		{"negative rate", strings.Replace(base, "channel_messages_per_second = 3.0", "channel_messages_per_second = -3.0", 1),
			"security.rate_limit.channel_messages_per_second: -3 must not be negative", "channel_messages_per_second = -3.0"},
		{"pending cap", strings.Replace(base, "max_pending = 10000", "max_pending = -5", 1),
			"mqtt.max_pending: -5: want a number of connections, 0 for the default (10000) or -1 for no cap", "max_pending = -5"},
		{"bad duration", strings.Replace(base, `connect_timeout = "10s"`, `connect_timeout = "ten"`, 1), "invalid duration", `connect_timeout = "ten"`},
		{"syntax", strings.Replace(base, "[security.trust]", "[security.trust", 1), "the table header [security.trust is not closed: want [security.trust]", "[security.trust"},
		{"unclosed", strings.Replace(base, "[security]", "[security", 1), fmt.Sprintf("my.toml:%d: the table header [security is not closed: want [security]", lineOf(base, "[security]")), "[security"},
		{"unclosed, comment", strings.Replace(base, "[mqtt]", "[mqtt  # the listeners", 1), "the table header [mqtt is not closed", "[mqtt  #"},
		{"unclosed array", base + "\n[[plugins    # mine\npath = \"x.wasm\"\n", "the table header [[plugins is not closed: want [[plugins]]", "[[plugins    # mine"},
		{"other syntax", strings.Replace(base, "max_clients = 10000", "max_clients = = 10000", 1), "expected value", "max_clients = = 10000"},
		{"tolerance", strings.Replace(base, `tolerance = "30s"`, `tolerance = "10m"`, 1), "security.devices[0].tolerance: 10m0s must be at least 0 and below the interval 5m0s", `tolerance = "10m"`},
		{"client auth", strings.Replace(base, `tls_client_auth = "request"`, `tls_client_auth = "maybe"`, 1), `mqtt.tls_client_auth: tls_client_auth "maybe": want none, request or require`, `tls_client_auth = "maybe"`},
		{"bad topic", strings.Replace(base, `topic = "sensors/+/report"`, `topic = "sensors/#/report"`, 1), "security.devices[0].topic", `topic = "sensors/#/report"`},
		{"plugin", base + "\n[[plugins]]\nname = \"x\"\n", "plugins[0].path: a plugin needs the path of its .wasm file", ""},
		{"redis url", strings.Replace(base, `redis_url = ""`, `redis_url = "10.0.0.5:6379"`, 1),
			"cluster.redis_url: want redis://host:port/db", `redis_url = "10.0.0.5:6379"`},
		{"when down", strings.Replace(base, `when_down = "local"`, `when_down = "open"`, 1),
			`cluster.when_down: unknown policy "open"; want local, allow or refuse`, `when_down = "open"`},
	} {
		_, err := ParseConfig([]byte(tc.edit), "my.toml", "/data", nil)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.says, tc.name)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tc.name)
		assert.Equal(t, "my.toml", ce.File, tc.name)
		if tc.at != "" {
			assert.Equal(t, lineOf(tc.edit, tc.at), ce.Line, "%s: %v", tc.name, err)
		}
	}
}

func TestSeedStyleClientAuthBool(t *testing.T) {
	c, err := ParseConfig([]byte(strings.Replace(string(DefaultConfig), `tls_client_auth = "request"`, "tls_client_auth = true", 1)), "x", "/", nil)
	require.NoError(t, err)
	ca, err := c.ClientAuth()
	require.NoError(t, err)
	assert.Equal(t, tlsconf.RequireClientCert, ca)
}

// lineOf is the 1-based line of the first line containing s.
func lineOf(text, s string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

// Whatever the file holds, ParseConfig returns a configuration or a
// *ConfigError that names the file: never a panic, never an error an
// operator cannot place.
func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultConfig)
	f.Add([]byte("[mqtt]\nport = \"x\"\n"))
	f.Add([]byte("[security]\nmode = \"full\"\n[[security.devices]]\ntopic = \"a/#\"\ninterval = \"1s\"\n"))
	f.Add([]byte("[[plugins]]\nname = \"p\"\npath = \"p.wasm\"\ntimeout = \"-1s\"\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseConfig(text, "fuzz.toml", "/data", nil)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "fuzz.toml" || !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("%T %v: not a ConfigError naming the file", err, err)
			}
			return
		}
		if c == nil {
			t.Fatal("no configuration and no error")
		}
	})
}

// hostTLS is a program whose host broker verifies client certificates.
type hostTLS struct{}

func (hostTLS) Validate(*Config) error            { return nil }
func (*hostTLS) VerifiesClientCertificates() bool { return true }

func TestUseIdentityAsUsernameNeedsVerifiedCertificates(t *testing.T) {
	text := []byte(strings.NewReplacer("enable_tls = true", "enable_tls = false",
		"use_identity_as_username = false", "use_identity_as_username = true").Replace(string(DefaultConfig)))
	require.Contains(t, string(text), "use_identity_as_username = true")
	_, err := ParseConfig(text, "my.toml", "/data", nil)
	require.Error(t, err, "nobody verifies the certificates it would trust")
	assert.Contains(t, err.Error(), "security.use_identity_as_username: needs TLS")
	_, err = ParseConfig(text, "my.toml", "/data", &hostTLS{})
	assert.NoError(t, err, "the host broker verifies them")
}

// The dashboard's sign-in crosses the network in clear text on a
// non-loopback address: refused, with what to do.
func TestDashboardOnlyOnLoopback(t *testing.T) {
	for listen, ok := range map[string]bool{"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "192.0.2.7:8080": false} {
		text := strings.Replace(string(DefaultConfig), `listen = "127.0.0.1:8080"`, fmt.Sprintf("listen = %q", listen), 1)
		_, err := ParseConfig([]byte(text), "mqttguard.toml", t.TempDir(), nil)
		if ok {
			assert.NoError(t, err, listen)
			continue
		}
		require.Error(t, err, listen)
		assert.Contains(t, err.Error(), "admin.dashboard = false", listen)
		off := strings.Replace(text, "dashboard = true", "dashboard = false", 1)
		_, err = ParseConfig([]byte(off), "mqttguard.toml", t.TempDir(), nil)
		assert.NoError(t, err, "%s without the dashboard", listen)
	}
}

// delivery_wait: 50ms in the default file, "-1s" for never, at most 5s.
func TestDeliveryWait(t *testing.T) {
	c, err := ParseConfig(DefaultConfig, "default.toml", t.TempDir(), nil)
	require.NoError(t, err)
	assert.Equal(t, 50*time.Millisecond, c.MQTT.DeliveryWait)
	for v, ok := range map[string]bool{`"-1s"`: true, `"5s"`: true, `"0s"`: true, `"6s"`: false} {
		text := strings.Replace(string(DefaultConfig), `delivery_wait = "50ms"`, "delivery_wait = "+v, 1)
		_, err := ParseConfig([]byte(text), "mqttguard.toml", t.TempDir(), nil)
		if ok {
			assert.NoError(t, err, v)
		} else {
			assert.ErrorContains(t, err, "mqtt.delivery_wait", v)
		}
	}
}

// max_queued_messages: 1,000 by default, at most the 65,535 packet
// identifiers a session has.
func TestMaxQueuedMessages(t *testing.T) {
	c, err := ParseConfig(DefaultConfig, "default.toml", t.TempDir(), nil)
	require.NoError(t, err)
	assert.Equal(t, 1000, c.MQTT.QueuedMessages())
	assert.Equal(t, 1000, MQTTConfig{}.QueuedMessages(), "absent from a file: the default")
	for v, ok := range map[string]bool{"1": true, "65535": true, "0": true, "65536": false, "-1": false} {
		text := strings.Replace(string(DefaultConfig), "max_queued_messages = 1000", "max_queued_messages = "+v, 1)
		_, err := ParseConfig([]byte(text), "mqttguard.toml", t.TempDir(), nil)
		if ok {
			assert.NoError(t, err, v)
		} else {
			assert.ErrorContains(t, err, "mqtt.max_queued_messages", v)
		}
	}
}
