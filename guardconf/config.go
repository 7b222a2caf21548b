package guardconf

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
)

// DefaultConfig is the example broker's embedded default configuration.
//
//go:embed default.toml
var DefaultConfig []byte

// Config is the broker's configuration file (see default.toml, which
// documents every key).
type Config struct {
	MQTT     MQTTConfig     `toml:"mqtt"`
	Security SecurityConfig `toml:"security"`
	Plugins  []PluginConfig `toml:"plugins"`
	Admin    AdminConfig    `toml:"admin"`
	Cluster  ClusterConfig  `toml:"cluster"`
	// Extension is the program's own tables, decoded beside the
	// Guard's (see Extension); nil when the program has none.
	Extension Extension `toml:"-"`

	// Where the file came from, and the directory relative paths start
	// from; text is kept to find the lines of keys in error messages.
	Source string `toml:"-"`
	Dir    string `toml:"-"`
	text   string
	// overrides are the command line's changes, made again to the file
	// a reload reads (see Override).
	overrides []func(*Config)
}

// Override changes the configuration as a command-line flag does (the
// proxy's -upstream): now, and again to the file each reload reads, so
// that a reload neither undoes it nor reports it as a changed setting.
func (c *Config) Override(f func(*Config)) {
	f(c)
	c.overrides = append(c.overrides, f)
}

type MQTTConfig struct {
	Bind           string        `toml:"bind"`
	Port           int           `toml:"port"`
	EnableTLS      bool          `toml:"enable_tls"`
	TLSPort        int           `toml:"tls_port"`
	TLSCertPath    string        `toml:"tls_cert_path"`
	TLSKeyPath     string        `toml:"tls_key_path"`
	TLSClientAuth  any           `toml:"tls_client_auth"` // a string, or a bool (true: "require")
	TLSCACertPath  string        `toml:"tls_ca_cert_path"`
	TLSCRLPaths    []string      `toml:"tls_crl_paths"`
	MaxPacketSize  int           `toml:"max_packet_size"`
	MaxConnectSize int           `toml:"max_connect_size"`
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	MaxClients     int           `toml:"max_clients"`
	// MaxPendingPerAddress and MaxPending cap the connections not yet
	// accepted (no CONNACK 0 yet), per client address (IPv6: per /64)
	// and in all; 0: packets' defaults (256, 10,000), -1: no cap.
	MaxPendingPerAddress int `toml:"max_pending_per_address"`
	MaxPending           int `toml:"max_pending"`
	// MaxQueuedMessages bounds the QoS 1 and 2 messages a session holds
	// unacknowledged (the example broker; 0: 1,000, mosquitto's
	// max_queued_messages default; at most 65,535, the packet
	// identifiers there are). Past it a subscriber misses messages.
	MaxQueuedMessages int `toml:"max_queued_messages"`
	// DeliveryWait bounds how long a publisher waits for a subscriber
	// whose outbound queue is nearly full (the example broker; 0: 50ms,
	// negative: never, at most 5s). See mochiguard.Options.DeliveryWait.
	DeliveryWait time.Duration `toml:"delivery_wait"`
}

// QueuedMessages is max_queued_messages with its default.
func (m MQTTConfig) QueuedMessages() int {
	if m.MaxQueuedMessages == 0 {
		return 1000
	}
	return m.MaxQueuedMessages
}

type SecurityConfig struct {
	Mode                  string `toml:"mode"`
	EnableShadowBan       bool   `toml:"enable_shadow_ban"`
	EnableIPBan           bool   `toml:"enable_ip_ban"`
	AllowAnonymous        bool   `toml:"allow_anonymous"`
	PasswordFile          string `toml:"password_file"`
	ACLFile               string `toml:"acl_file"`
	BanFile               string `toml:"ban_file"`
	UseIdentityAsUsername bool   `toml:"use_identity_as_username"`
	CertIdentity          string `toml:"cert_identity"`
	SubscribeCheck        string `toml:"subscribe_check"`
	// TrustFile keeps the punished clients and usernames (trust states
	// worse than normal) over a restart, beside the ban file.
	TrustFile string `toml:"trust_file"`
	// Per client and per username bounds: the subscriptions a client
	// holds (defaults 1,000 filters and 1 MiB), the sessions a username
	// keeps (connected or, on the broker, offline; default 100) and the
	// bytes of the messages the broker holds for a username's sessions
	// (default 64 MiB). 0 takes the default, -1 removes the bound.
	// Anonymous clients share one account.
	MaxSubscriptions      int                `toml:"max_subscriptions"`
	MaxSubscriptionBytes  int                `toml:"max_subscription_bytes"`
	MaxSessionsPerUser    int                `toml:"max_sessions_per_user"`
	MaxQueuedBytesPerUser int64              `toml:"max_queued_bytes_per_user"`
	AuthFailures          AuthFailuresConfig `toml:"auth_failures"`
	RateLimit             RateLimitConfig    `toml:"rate_limit"`
	Trust                 TrustConfig        `toml:"trust"`
	Flapping              FlappingConfig     `toml:"flapping"`
	JWT                   JWTConfig          `toml:"jwt"`
	Devices               []DeviceProfile    `toml:"devices"`
}

// JWTConfig is token authentication (package jwtauth): a device sends a
// signed JWT as its password (or username), verified before the
// password file is asked.
type JWTConfig struct {
	Enable     bool     `toml:"enable"`
	From       string   `toml:"from"` // "password" (default) or "username"
	Algorithms []string `toml:"algorithms"`
	// Keys: an HMAC secret in a file (never in this one), PEM public key
	// files, and the identity provider's JWKS.
	SecretFile          string        `toml:"secret_file"`
	PublicKeyFiles      []string      `toml:"public_key_files"`
	JWKSURL             string        `toml:"jwks_url"`
	JWKSRefresh         time.Duration `toml:"jwks_refresh"`
	UnknownKIDRefreshes int           `toml:"unknown_kid_refreshes_per_minute"`
	FetchWait           time.Duration `toml:"fetch_wait"`
	Issuer              string        `toml:"issuer"`
	Audience            string        `toml:"audience"`
	Leeway              time.Duration `toml:"leeway"`
	AllowNoExpiry       bool          `toml:"allow_no_expiry"`
	IdentityClaim       string        `toml:"identity_claim"`
	ACLClaim            string        `toml:"acl_claim"`
	// Claims the token must carry, with %u and %c placeholders.
	Claims           map[string]string `toml:"claims"`
	DropWillOnExpiry bool              `toml:"drop_will_on_expiry"`
}

// AuthFailuresConfig is trust.AuthGateConfig: how failed
// authentications from an address are spaced out and when the address
// is banned.
type AuthFailuresConfig struct {
	Free     int           `toml:"free"`
	Delay    time.Duration `toml:"delay"`
	MaxDelay time.Duration `toml:"max_delay"`
	Window   time.Duration `toml:"window"`
	BanAfter int           `toml:"ban_after"`
	BanFor   time.Duration `toml:"ban_for"`
}

type RateLimitConfig struct {
	UserTokensPerSecond      float64 `toml:"user_tokens_per_second"`
	UserBurstCapacity        float64 `toml:"user_burst_capacity"`
	ChannelMessagesPerSecond float64 `toml:"channel_messages_per_second"`
	ChannelBurstCapacity     float64 `toml:"channel_burst_capacity"`
	IPConnectionsPerSecond   float64 `toml:"ip_connections_per_second"`
	ClientMessagesPerSecond  float64 `toml:"client_messages_per_second"`
	ClientBurstCapacity      float64 `toml:"client_burst_capacity"`
	ClientBytesPerSecond     float64 `toml:"client_bytes_per_second"`
	TotalMessagesPerSecond   float64 `toml:"total_messages_per_second"`
}

type TrustConfig struct {
	UsernameFactor float64 `toml:"username_factor"`
	IPFactor       float64 `toml:"ip_factor"`
}

type FlappingConfig struct {
	MaxConnects int           `toml:"max_connects"`
	Window      time.Duration `toml:"window"`
	BanFor      time.Duration `toml:"ban_for"`
}

type DeviceProfile struct {
	Topic     string        `toml:"topic"`
	ClientID  string        `toml:"client_id"`
	Username  string        `toml:"username"`
	Interval  time.Duration `toml:"interval"`
	Tolerance time.Duration `toml:"tolerance"`
}

type PluginConfig struct {
	Name         string        `toml:"name"`
	Path         string        `toml:"path"`
	Config       string        `toml:"config"`
	ConfigFile   string        `toml:"config_file"`
	Failure      string        `toml:"failure"`
	MaxInstances int           `toml:"max_instances"`
	MaxMemoryMB  int           `toml:"max_memory_mb"`
	Timeout      time.Duration `toml:"timeout"`
}

// ClusterConfig is fleet mode: brokers that share bans, trust records and
// the per-user, per-IP and total limits through one Redis.
type ClusterConfig struct {
	RedisURL string `toml:"redis_url" secret:"true"` // "": this broker alone
	Prefix   string `toml:"prefix"`
	Node     string `toml:"node"`
	WhenDown string `toml:"when_down"` // shared limits while Redis is away
	SeedBans bool   `toml:"seed_bans"`
}

type AdminConfig struct {
	Listen    string `toml:"listen"`
	TokenFile string `toml:"token_file"`
	// Dashboard serves the security dashboard at /dashboard/ beside the
	// API (nil: on).
	Dashboard *bool `toml:"dashboard"`
}

// DashboardOn reports whether the dashboard is served (admin.dashboard,
// on unless the file says false).
func (a AdminConfig) DashboardOn() bool { return a.Dashboard == nil || *a.Dashboard }

// ConfigError is a configuration the broker cannot run with: the file,
// the line (0 when unknown), the key and what to do.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return loc + ": " + e.Msg
}

// ParseConfig reads a configuration. source names it in errors; dir is
// where relative paths start.
func ParseConfig(text []byte, source, dir string, ext Extension) (*Config, error) {
	c := &Config{Source: source, Dir: dir, text: string(text), Extension: ext}
	md, err := toml.Decode(string(text), c)
	var und []toml.Key
	if err == nil {
		und = md.Undecoded()
		if ext != nil {
			var emd toml.MetaData
			if emd, err = toml.Decode(string(text), ext); err == nil {
				und = undecodedByBoth(und, emd.Undecoded())
			}
		}
	}
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if ce := unclosedHeader(c.text, source, pe.Position.Line); ce != nil {
				return nil, ce
			}
			return nil, &ConfigError{File: source, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type mismatches come as "toml: line N (last key "k"): …".
		if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
			var line int
			fmt.Sscan(m[1], &line)
			return nil, &ConfigError{File: source, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, &ConfigError{File: source, Msg: err.Error()}
	}
	if len(und) > 0 {
		k := und[0].String()
		return nil, &ConfigError{File: source, Line: c.line(k), Key: k, Msg: "unknown key; see the embedded default (go run ./examples/broker -print-config) for the keys there are"}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if ext != nil {
		if err := ext.Validate(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// unclosedHeader finds a table header left open ("[security") at or just
// before the line where the parser noticed (it notices on the next line,
// and names the previous table as where it was).
func unclosedHeader(text, source string, errLine int) *ConfigError {
	lines := strings.Split(text, "\n")
	for i := min(errLine, len(lines)) - 1; i >= 0 && i >= errLine-2; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "[") || strings.Contains(l, "]") {
			continue
		}
		header, _, _ := strings.Cut(l, "#")
		header = strings.TrimSpace(header)
		want := header + "]"
		if strings.HasPrefix(header, "[[") {
			want += "]"
		}
		return &ConfigError{File: source, Line: i + 1,
			Msg: fmt.Sprintf("the table header %s is not closed: want %s", header, want)}
	}
	return nil
}

var typeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// LoadConfig reads the file at path, with the program's extension (nil
// for none).
func LoadConfig(path string, ext Extension) (*Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, _ := filepath.Abs(path)
	return ParseConfig(text, path, filepath.Dir(abs), ext)
}

// UseLinesOf makes c name lines as nc's file has them: a reload that put
// nc's settings in force keeps c, whose errors must point into the file
// as it is now.
func (c *Config) UseLinesOf(nc *Config) { c.text = nc.text }

// Errorf is a ConfigError about key ("mqtt.port", "plugins[1].path"),
// with the line the key is on in the file.
func (c *Config) Errorf(key, format string, args ...any) error {
	return &ConfigError{File: c.Source, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) validate() error {
	m, s, r := &c.MQTT, &c.Security, &c.Security.RateLimit
	switch {
	case m.Port < -1 || m.Port > 65535:
		return c.Errorf("mqtt.port", "%d is not a port (0: any free port, -1: off)", m.Port)
	case m.TLSPort < -1 || m.TLSPort > 65535:
		return c.Errorf("mqtt.tls_port", "%d is not a port (0: any free port, -1: off)", m.TLSPort)
	case m.Port == -1 && (!m.EnableTLS || m.TLSPort == -1):
		return c.Errorf("mqtt.port", "every listener is off")
	case m.EnableTLS && (m.TLSCertPath == "" || m.TLSKeyPath == ""):
		return c.Errorf("mqtt.tls_cert_path", "enable_tls needs tls_cert_path and tls_key_path")
	case m.MaxPacketSize < 0 || m.MaxPacketSize > 268435455:
		return c.Errorf("mqtt.max_packet_size", "%d is outside 0–268435455 (0: the default, 1 MiB)", m.MaxPacketSize)
	case m.MaxConnectSize < 0:
		return c.Errorf("mqtt.max_connect_size", "must not be negative")
	case m.ConnectTimeout < 0:
		return c.Errorf("mqtt.connect_timeout", "must not be negative")
	case m.MaxClients < 0:
		return c.Errorf("mqtt.max_clients", "must not be negative")
	case m.MaxPendingPerAddress < -1:
		return c.Errorf("mqtt.max_pending_per_address", "%d: want a number of connections, 0 for the default (256) or -1 for no cap", m.MaxPendingPerAddress)
	case m.MaxQueuedMessages < 0 || m.MaxQueuedMessages > 65535:
		return c.Errorf("mqtt.max_queued_messages", "%d is outside 0–65535 (0: the default, 1000; 65,535 packet identifiers are all a session has)", m.MaxQueuedMessages)
	case m.DeliveryWait > 5*time.Second:
		return c.Errorf("mqtt.delivery_wait", "%v is more than 5s: a publisher would stop reading its own connection that long for one subscriber; want 50ms (the default) or \"-1s\" to never wait", m.DeliveryWait)
	case m.MaxPending < -1:
		return c.Errorf("mqtt.max_pending", "%d: want a number of connections, 0 for the default (10000) or -1 for no cap", m.MaxPending)
	}
	if _, err := c.ClientAuth(); err != nil {
		return c.Errorf("mqtt.tls_client_auth", "%v", err)
	}
	if m.EnableTLS {
		if ca, _ := c.ClientAuth(); ca != tlsconf.NoClientCert && m.TLSCACertPath == "" {
			return c.Errorf("mqtt.tls_ca_cert_path", "client certificates are %v but no CA is given to verify them", m.TLSClientAuth)
		}
	}
	if _, err := trust.ParseMode(s.Mode); err != nil {
		return c.Errorf("security.mode", "%q: want \"observe\", \"light\" or \"full\"", s.Mode)
	}
	if s.SubscribeCheck != "" && s.SubscribeCheck != "covers" && s.SubscribeCheck != "delivery" {
		return c.Errorf("security.subscribe_check", "%q: want \"covers\" or \"delivery\"", s.SubscribeCheck)
	}
	if _, err := tlsconf.ParseIdentitySource(s.CertIdentity); err != nil {
		return c.Errorf("security.cert_identity", "%v", err)
	}
	if j := s.JWT; j.Enable {
		switch {
		case j.From != "" && j.From != "password" && j.From != "username":
			return c.Errorf("security.jwt.from", "%q: want \"password\" or \"username\"", j.From)
		case len(j.Algorithms) == 0:
			return c.Errorf("security.jwt.algorithms", "name the algorithms your identity provider signs with, e.g. [\"RS256\"]")
		case j.SecretFile == "" && len(j.PublicKeyFiles) == 0 && j.JWKSURL == "":
			return c.Errorf("security.jwt", "no keys: set secret_file, public_key_files or jwks_url")
		case j.JWKSURL != "" && !strings.HasPrefix(j.JWKSURL, "https://") && !loopbackHTTP(j.JWKSURL):
			return c.Errorf("security.jwt.jwks_url", "%q: the keys that admit clients must come over https (http only from a loopback address)", j.JWKSURL)
		}
	}
	if s.UseIdentityAsUsername && !hostVerifiesCertificates(c.Extension) && (!m.EnableTLS || m.TLSClientAuth == "none" || m.TLSClientAuth == false) {
		return c.Errorf("security.use_identity_as_username", "needs TLS with client certificates (mqtt.tls_client_auth)")
	}
	for key, v := range map[string]float64{
		"user_tokens_per_second": r.UserTokensPerSecond, "user_burst_capacity": r.UserBurstCapacity,
		"channel_messages_per_second": r.ChannelMessagesPerSecond, "channel_burst_capacity": r.ChannelBurstCapacity,
		"ip_connections_per_second": r.IPConnectionsPerSecond, "client_messages_per_second": r.ClientMessagesPerSecond,
		"client_burst_capacity": r.ClientBurstCapacity, "client_bytes_per_second": r.ClientBytesPerSecond,
		"total_messages_per_second": r.TotalMessagesPerSecond,
	} {
		if v < 0 {
			return c.Errorf("security.rate_limit."+key, "%v must not be negative (0: no limit)", v)
		}
	}
	for key, v := range map[string]float64{"username_factor": s.Trust.UsernameFactor, "ip_factor": s.Trust.IPFactor} {
		if v < 0 || v > 1 {
			return c.Errorf("security.trust."+key, "%v is outside 0–1", v)
		}
	}
	f := s.Flapping
	if f.MaxConnects < 0 || f.Window < 0 || f.BanFor < 0 {
		return c.Errorf("security.flapping", "values must not be negative")
	}
	if _, err := trust.NewAuthGate(s.AuthFailures.AuthGate()); err != nil {
		return c.Errorf("security.auth_failures", "%v", err)
	}
	for key, v := range map[string]int64{"max_subscriptions": int64(s.MaxSubscriptions), "max_subscription_bytes": int64(s.MaxSubscriptionBytes),
		"max_sessions_per_user": int64(s.MaxSessionsPerUser), "max_queued_bytes_per_user": s.MaxQueuedBytesPerUser} {
		if v < -1 {
			return c.Errorf("security."+key, "%d: want a number, 0 for the default or -1 for no bound", v)
		}
	}
	for i, d := range s.Devices {
		key := fmt.Sprintf("security.devices[%d]", i)
		switch {
		case d.Topic == "" && d.ClientID == "" && d.Username == "":
			return c.Errorf(key, "a profile needs a topic, client_id or username to match")
		case d.Interval <= 0:
			return c.Errorf(key+".interval", "must be positive")
		case d.Tolerance < 0 || d.Tolerance >= d.Interval:
			return c.Errorf(key+".tolerance", "%v must be at least 0 and below the interval %v", d.Tolerance, d.Interval)
		}
		if d.Topic != "" {
			if err := acl.ValidFilter(d.Topic); err != nil {
				return c.Errorf(key+".topic", "%v", err)
			}
		}
	}
	names := map[string]bool{}
	for i, p := range c.Plugins {
		key := fmt.Sprintf("plugins[%d]", i)
		switch {
		case p.Path == "":
			return c.Errorf(key+".path", "a plugin needs the path of its .wasm file")
		case p.Name != "" && names[p.Name]:
			return c.Errorf(key+".name", "%q is used twice", p.Name)
		case p.Failure != "" && p.Failure != "closed" && p.Failure != "open":
			return c.Errorf(key+".failure", "%q: want \"closed\" or \"open\"", p.Failure)
		case p.Config != "" && p.ConfigFile != "":
			return c.Errorf(key+".config", "give config or config_file, not both")
		case p.MaxInstances < 0 || p.MaxMemoryMB < 0 || p.Timeout < 0:
			return c.Errorf(key, "limits must not be negative")
		}
		names[p.Name] = true
	}
	if cl := c.Cluster; cl.RedisURL != "" {
		scheme, _, _ := strings.Cut(cl.RedisURL, "://")
		switch scheme {
		case "redis", "rediss", "unix", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
		default:
			return c.Errorf("cluster.redis_url", "want redis://host:port/db, rediss://… (TLS), unix:///path/to/redis.sock, redis-sentinel://host:port?master_name=NAME&addr=… or redis-cluster://host:port?addr=…")
		}
	}
	if w := c.Cluster.WhenDown; w != "" {
		if _, err := ratelimit.ParseDownPolicy(w); err != nil {
			return c.Errorf("cluster.when_down", "%v", err)
		}
	}
	if c.Admin.Listen != "" && c.Admin.TokenFile == "" {
		return c.Errorf("admin.token_file", "the admin API needs a token file")
	}
	if a := c.Admin; a.Listen != "" && a.DashboardOn() && !Loopback(a.Listen) {
		// The admin listener speaks plain HTTP: the token typed at
		// sign-in and the session cookie would cross the network in
		// clear text.
		return c.Errorf("admin.listen", "%q is not a loopback address, and the dashboard's sign-in would cross the network in clear text: "+
			"listen on 127.0.0.1 and reach it through an SSH tunnel or a TLS reverse proxy on this host, or set admin.dashboard = false", a.Listen)
	}
	return nil
}

// ClientAuth is mqtt.tls_client_auth, parsed.
func (c *Config) ClientAuth() (tlsconf.ClientAuth, error) {
	switch v := c.MQTT.TLSClientAuth.(type) {
	case nil:
		return tlsconf.NoClientCert, nil
	case bool:
		if v {
			return tlsconf.RequireClientCert, nil
		}
		return tlsconf.NoClientCert, nil
	case string:
		return tlsconf.ParseClientAuth(v)
	}
	return 0, fmt.Errorf("%v: want \"none\", \"request\", \"require\" or a bool", c.MQTT.TLSClientAuth)
}

// Path resolves a path from the configuration against its directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// line finds the line of a key ("security.rate_limit.user_burst_capacity",
// "plugins[1].path") in the file's text, or 0.
func (c *Config) line(key string) int {
	if !strings.Contains(key, "[") {
		if n := c.lineOf(key, -1, ""); n > 0 { // a table's header
			return n
		}
	}
	table, index, name := splitKey(key)
	return c.lineOf(table, index, name)
}

// lineOf finds key name in table (the index-th of an array of tables
// when index >= 0), or the table's header when name is "".
func (c *Config) lineOf(table string, index int, name string) int {
	cur, count := "", -1
	for i, l := range strings.Split(c.text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "[["):
			cur = strings.TrimSpace(strings.Trim(strings.SplitN(l, "]]", 2)[0], "[ "))
			if cur == table {
				count++
			}
			if name == "" && cur == table && count == index {
				return i + 1
			}
		case strings.HasPrefix(l, "["):
			cur = strings.TrimSpace(strings.Trim(strings.SplitN(l, "]", 2)[0], "[ "))
			if name == "" && cur == table {
				return i + 1
			}
		default:
			k, _, ok := strings.Cut(l, "=")
			if ok && strings.TrimSpace(k) == name && cur == table && (index < 0 || count == index) {
				return i + 1
			}
		}
	}
	return 0
}

// splitKey turns "a.b[2].c" into table "a.b", index 2, name "c".
func splitKey(key string) (table string, index int, name string) {
	index = -1
	if i := strings.IndexByte(key, '['); i >= 0 {
		j := strings.IndexByte(key, ']')
		fmt.Sscan(key[i+1:j], &index)
		table, name = key[:i], strings.TrimPrefix(key[j+1:], ".")
		return
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], -1, key[i+1:]
	}
	return "", -1, key
}

// AuthGate is [security.auth_failures] as the trust package takes it.
func (a AuthFailuresConfig) AuthGate() trust.AuthGateConfig {
	return trust.AuthGateConfig{Free: a.Free, Delay: a.Delay, MaxDelay: a.MaxDelay, Window: a.Window,
		BanAfter: a.BanAfter, BanFor: a.BanFor}
}

// loopbackHTTP reports whether u is an http URL on a loopback address.
func loopbackHTTP(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "http" && Loopback(p.Hostname())
}

// Loopback reports whether host[:port] — a listen address, a request's
// Host — names this host only: a loopback IP or "localhost".
func Loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
