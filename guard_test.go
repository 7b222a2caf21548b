package mqttguard_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const aclFile = `# seed 002's spirit
user admin
topic readwrite #

user sensor1
topic deny sensors/sensor1/secret
topic write sensors/sensor1/#
topic read commands/sensor1/#

user dashboard
topic read sensors/#
`

var t0 = time.Unix(1_800_000_000, 0)

type fixture struct {
	g        *mqttguard.Guard
	bans     *trust.Bans
	tracker  *trust.Tracker
	auditLog *bytes.Buffer
	mu       *sync.Mutex
}

type syncBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (f *fixture) audit() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auditLog.String()
}

// newGuard builds a Guard with every component; edit the Config with
// change before it is built.
func newGuard(t testing.TB, mode trust.Mode, change func(*mqttguard.Config)) *fixture {
	t.Helper()
	pol, err := acl.ParseMosquitto(strings.NewReader(aclFile))
	require.NoError(t, err)
	var lines strings.Builder
	for user, pass := range map[string]string{"admin": "admin-pw", "sensor1": "s1-pw", "dashboard": "dash-pw"} {
		h, err := passwd.HashIterations(pass, 1000) // cheap for tests; the default is 210,000
		require.NoError(t, err)
		lines.WriteString(user + ":" + h + "\n")
	}
	pw, err := passwd.ParseMosquitto(strings.NewReader(lines.String()))
	require.NoError(t, err)
	tcfg := trust.Preset(mode)
	tracker, err := trust.New(tcfg)
	require.NoError(t, err)
	resolver, err := anomaly.NewResolver([]anomaly.ProfileRule{
		{TopicFilter: "sensors/+/report", Profile: anomaly.Profile{Interval: time.Minute, Tolerance: 5 * time.Second}},
	})
	require.NoError(t, err)
	f := &fixture{bans: &trust.Bans{}, tracker: tracker, auditLog: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cfg := mqttguard.Config{
		Mode:           mode,
		Authenticators: []mqttguard.Authenticator{passwd.NewHolder(pw)},
		ACL:            acl.NewHolder(pol),
		Bans:           f.bans,
		Trust:          tracker,
		Flapping:       anomaly.NewFlappingDetector(anomaly.FlappingConfig{}),
		Intervals:      anomaly.NewIntervalDetector(anomaly.Config{Resolver: resolver}),
		RateLimits: mqttguard.RateLimits{
			ConnectionsPerAddr: mqttguard.Rate{PerSecond: 10},
			MessagesPerClient:  mqttguard.Rate{PerSecond: 20, Burst: 40},
			MessagesPerUser:    mqttguard.Rate{PerSecond: 50, Burst: 100},
			MessagesPerTopic:   mqttguard.Rate{PerSecond: 3, Burst: 10},
		},
		ShadowBan: true,
		Logger:    slog.New(slog.NewTextHandler(syncBuffer{f.mu, f.auditLog}, nil)),
	}
	if change != nil {
		change(&cfg)
	}
	f.g, err = mqttguard.New(cfg)
	require.NoError(t, err)
	return f
}

var addr = netip.MustParseAddrPort("192.0.2.10:50000")

func (f *fixture) connect(t testing.TB, id, user, pass string, at time.Time) (mqttguard.Client, mqttguard.Decision) {
	t.Helper()
	return f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: id, Username: user,
		Password: []byte(pass), HasPassword: pass != "", Addr: addr, Listener: "tcp", ProtocolVersion: 5}, at)
}

func (f *fixture) publish(c *mqttguard.Client, topic string, at time.Time) mqttguard.Decision {
	return f.g.Publish(context.Background(), c, &mqttguard.Message{Topic: topic, Payload: []byte("21.5"), QoS: 1, Subscribers: -1}, at)
}

func TestConnectCredentials(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	c, d := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	require.Equal(t, mqttguard.Allow, d.Verdict, d.String())
	assert.Equal(t, "sensor1", c.Username)
	assert.Equal(t, netip.MustParseAddr("192.0.2.10"), c.Addr)

	_, d = f.connect(t, "s1", "sensor1", "wrong", t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.BadUsernameOrPassword, d.Code)
	assert.Equal(t, mqttguard.ByPassword, d.Cause.Component)
	assert.Equal(t, byte(4), d.Code.V3Connack())

	_, d = f.connect(t, "anon", "", "", t0)
	assert.Equal(t, reason.NotAuthorized, d.Code, "anonymous clients are refused by default")
	assert.Equal(t, byte(5), d.Code.V3Connack())

	open := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.AllowAnonymous = true })
	_, d = open.connect(t, "anon", "", "", t0)
	assert.Equal(t, mqttguard.Allow, d.Verdict)

	assert.Zero(t, f.tracker.Stats(t0).Violations(trust.AuthFailure),
		"a bad password proves nothing about sensor1: it counts against no one's trust (an AuthGate spaces out the address)")
}

// A CONNECT naming an Authentication Method the Guard has no
// authenticator for is refused with 0x8C, even with the right password,
// and counts against nobody.
func TestConnectUnsupportedAuthMethod(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	_, d := f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("s1-pw"), HasPassword: true, Addr: addr, ProtocolVersion: 5, AuthMethod: "SCRAM-SHA-1"}, t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.BadAuthenticationMethod, d.Code)
	assert.Contains(t, d.String(), `"SCRAM-SHA-1" is not supported`)
	assert.Zero(t, f.tracker.Stats(t0).Violations(trust.AuthFailure))
}

func TestConnectBansFlappingAndRates(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	require.NoError(t, f.bans.Add(trust.Ban{Kind: trust.BanUsername, Value: "dashboard", Reason: "stolen laptop"}))
	_, d := f.connect(t, "d1", "dashboard", "dash-pw", t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.Banned, d.Code)
	assert.Equal(t, mqttguard.ByBan, d.Cause.Component)
	assert.Contains(t, d.Cause.String(), "stolen laptop")

	// Flapping: the 15th connect within a minute bans the client ID for
	// five minutes (EMQX's default). Spread over seconds so that the
	// per-address connection rate does not refuse first.
	var last mqttguard.Decision
	n := 0
	for ; n < 30 && last.Verdict == mqttguard.Allow; n++ {
		_, last = f.connect(t, "flappy", "sensor1", "s1-pw", t0.Add(time.Duration(n)*time.Second))
	}
	assert.Equal(t, 15, n)
	assert.Equal(t, mqttguard.ByFlapping, last.Cause.Component, last.String())
	assert.Equal(t, reason.Banned, last.Code)
	_, d = f.connect(t, "flappy", "sensor1", "s1-pw", t0.Add(4*time.Minute))
	assert.Equal(t, mqttguard.ByBan, d.Cause.Component, "banned in the list")
	_, d = f.connect(t, "flappy", "sensor1", "s1-pw", t0.Add(15*time.Second+5*time.Minute))
	assert.Equal(t, mqttguard.Allow, d.Verdict, "until the ban expires")

	// Ten connections a second per address.
	g := newGuard(t, trust.EnforceFull, nil)
	for i := range 10 {
		_, d = g.connect(t, "c"+string(rune('a'+i)), "sensor1", "s1-pw", t0)
		require.Equal(t, mqttguard.Allow, d.Verdict)
	}
	_, d = g.connect(t, "c11", "sensor1", "s1-pw", t0)
	assert.Equal(t, reason.ConnectionRateExceeded, d.Code)
	assert.Equal(t, mqttguard.ByConnRate, d.Cause.Component)
}

func TestPublishACLAndTopics(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	assert.Equal(t, mqttguard.Allow, f.publish(&c, "sensors/sensor1/temp", t0).Verdict)

	d := f.publish(&c, "sensors/sensor2/temp", t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.NotAuthorized, d.Code)
	assert.Equal(t, mqttguard.ByACL, d.Cause.Component)

	d = f.publish(&c, "sensors/+/temp", t0)
	assert.Equal(t, reason.TopicNameInvalid, d.Code, "a wildcard is not a topic name")
	assert.Equal(t, mqttguard.ByTopic, d.Cause.Component)

	admin, _ := f.connect(t, "a1", "admin", "admin-pw", t0)
	d = f.publish(&admin, "anything/at/all", t0)
	assert.Equal(t, mqttguard.Allow, d.Verdict)
	assert.Equal(t, mqttguard.Drop, f.g.Deliver(&c, &mqttguard.Message{Topic: "sensors/sensor2/temp"}).Verdict, "receive check")
	assert.Equal(t, mqttguard.Allow, f.g.Deliver(&c, &mqttguard.Message{Topic: "commands/sensor1/reboot"}).Verdict)
	assert.Contains(t, f.audit(), "component=acl")
}

func TestPublishRateLimits(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil })
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	// The topic limit (burst 10) refuses first: quota exceeded.
	var d mqttguard.Decision
	n := 0
	for ; n < 100; n++ {
		if d = f.publish(&c, "sensors/sensor1/temp", t0); d.Verdict != mqttguard.Allow {
			break
		}
	}
	assert.Equal(t, 10, n)
	assert.Equal(t, reason.QuotaExceeded, d.Code)
	assert.Equal(t, "messages per topic", d.Cause.Rule)
	// Spread over topics, the client's own limit (burst 40) refuses:
	// message rate too high.
	for n = 10; n < 100; n++ {
		if d = f.publish(&c, "sensors/sensor1/t"+string(rune('a'+n%26))+string(rune('a'+n/26)), t0); d.Verdict != mqttguard.Allow {
			break
		}
	}
	assert.Equal(t, 40, n)
	assert.Equal(t, reason.QuotaExceeded, d.Code, "0x96 may not be sent in a PUBACK")
	assert.True(t, d.Code.ValidIn(4) && d.Code.ValidIn(5), "a code PUBACK and PUBREC may carry")
	assert.Equal(t, "messages per client", d.Cause.Rule)
}

func TestFanoutCostInEnforceFull(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil })
	c, _ := f.connect(t, "a1", "admin", "admin-pw", t0)
	m := &mqttguard.Message{Topic: "alerts/all", Subscribers: 200} // 101–500 subscribers: ×5
	assert.Equal(t, mqttguard.Allow, f.g.Publish(context.Background(), &c, m, t0).Verdict)
	assert.Equal(t, mqttguard.Allow, f.g.Publish(context.Background(), &c, m, t0).Verdict)
	assert.Equal(t, reason.QuotaExceeded, f.g.Publish(context.Background(), &c, m, t0).Code, "burst 10 holds two")

	light := newGuard(t, trust.EnforceLight, func(c *mqttguard.Config) { c.Trust = nil })
	c, _ = light.connect(t, "a1", "admin", "admin-pw", t0)
	for range 10 {
		assert.Equal(t, mqttguard.Allow, light.g.Publish(context.Background(), &c, m, t0).Verdict, "no fan-out cost in EnforceLight")
	}
}

// A flooding client climbs the trust states: throttled, write-disabled,
// shadow-banned, disconnected; and is refused with 0x8A on reconnect.
func TestFloodEscalates(t *testing.T) {
	var mu sync.Mutex
	var states []string
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) {
		tcfg := trust.Preset(trust.EnforceFull)
		tcfg.OnTransition = func(tr trust.Transition) {
			if tr.Dimension != trust.ByClientID {
				return // its username follows it
			}
			mu.Lock()
			states = append(states, tr.To.String())
			mu.Unlock()
		}
		var err error
		c.Trust, err = trust.New(tcfg)
		require.NoError(t, err)
	})
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	var verdicts []string
	now := t0
	for i := 0; i < 2000; i++ {
		d := f.publish(&c, "sensors/sensor1/temp", now)
		v := d.Verdict.String()
		if d.Delay > 0 {
			v = "delayed"
		}
		if len(verdicts) == 0 || verdicts[len(verdicts)-1] != v {
			verdicts = append(verdicts, v)
		}
		if d.Verdict == mqttguard.Disconnect {
			assert.Equal(t, reason.AdministrativeAction, d.Code)
			break
		}
		now = now.Add(time.Millisecond)
	}
	mu.Lock()
	assert.Equal(t, []string{"throttled", "write-disabled", "shadow-banned", "disconnected"}, states)
	mu.Unlock()
	assert.Equal(t, []string{"allow", "reject", "drop", "disconnect"}, verdicts)
	_, d := f.connect(t, "s1", "sensor1", "s1-pw", now.Add(time.Second))
	assert.Equal(t, reason.Banned, d.Code)
	assert.Equal(t, mqttguard.ByTrust, d.Cause.Component)
}

func TestShadowBanOffRefusesInstead(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.ShadowBan = false })
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	for i := 0; i < 2000; i++ {
		d := f.publish(&c, "sensors/sensor1/temp", t0.Add(time.Duration(i)*time.Millisecond))
		require.NotEqual(t, mqttguard.Drop, d.Verdict, "no shadow ban without ShadowBan")
		if d.Verdict == mqttguard.Disconnect {
			return
		}
	}
	t.Fatal("never escalated")
}

func TestPushIntervalAnomaly(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil })
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	topic := "sensors/sensor1/report"
	now := t0
	assert.Equal(t, mqttguard.Allow, f.publish(&c, topic, now).Verdict, "the first report")
	now = now.Add(65 * time.Second) // T+E: inclusive
	assert.Equal(t, mqttguard.Allow, f.publish(&c, topic, now).Verdict)
	now = now.Add(10 * time.Second)
	d := f.publish(&c, topic, now)
	assert.Equal(t, mqttguard.Drop, d.Verdict, "too early: acknowledged, not delivered")
	assert.Equal(t, mqttguard.ByAnomaly, d.Cause.Component)
	// Repeated anomalies end in a ban (BanAfter 10).
	for i := 0; i < 20 && d.Verdict != mqttguard.Disconnect; i++ {
		now = now.Add(time.Second)
		d = f.publish(&c, topic, now)
	}
	assert.Equal(t, mqttguard.Disconnect, d.Verdict)
	_, d = f.connect(t, "s1", "sensor1", "s1-pw", now)
	assert.Equal(t, mqttguard.ByBan, d.Cause.Component)
	assert.Equal(t, "anomaly", f.bans.List(now)[0].By)
}

func TestSubscribe(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	c, _ := f.connect(t, "d1", "dashboard", "dash-pw", t0)
	ctx := context.Background()
	assert.Equal(t, mqttguard.Allow, f.g.Subscribe(ctx, &c, "sensors/#", 1, t0).Verdict)
	d := f.g.Subscribe(ctx, &c, "commands/#", 1, t0)
	assert.Equal(t, reason.NotAuthorized, d.Code)
	d = f.g.Subscribe(ctx, &c, "a/#/b", 0, t0)
	assert.Equal(t, reason.TopicFilterInvalid, d.Code)
	assert.Equal(t, mqttguard.ByTopic, d.Cause.Component)
}

func TestWill(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	_, d := f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("s1-pw"), HasPassword: true, Addr: addr, ProtocolVersion: 5,
		Will: &mqttguard.Message{Topic: "commands/all", Payload: []byte("gone")}}, t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.NotAuthorized, d.Code, "a denied will topic refuses the connection")
	assert.Equal(t, mqttguard.ByWill, d.Cause.Component)

	will := &mqttguard.Message{Topic: "sensors/sensor1/status", Payload: []byte("offline")}
	c, d := f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "s1", Username: "sensor1",
		Password: []byte("s1-pw"), HasPassword: true, Addr: addr, ProtocolVersion: 5, Will: will}, t0)
	require.Equal(t, mqttguard.Allow, d.Verdict)
	assert.Equal(t, mqttguard.Allow, f.g.Disconnect(&c, will, t0).Verdict)
	assert.Equal(t, mqttguard.Allow, f.g.Disconnect(&c, nil, t0).Verdict)

	// Banned since: the will is not sent.
	require.NoError(t, f.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "s1"}))
	d = f.g.Disconnect(&c, will, t0)
	assert.Equal(t, mqttguard.Drop, d.Verdict)
	assert.Equal(t, mqttguard.ByBan, d.Cause.Component)
}

// A will is judged as a publish is, by the push-interval profile too: an
// early report does not go out because the connection dropped.
func TestWillMeetsTheProfile(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	c := mqttguard.Client{ID: "s1", Username: "sensor1", Addr: addr.Addr()}
	report := &mqttguard.Message{Topic: "sensors/sensor1/report", Payload: []byte("21.5"), Subscribers: -1}
	require.Equal(t, mqttguard.Allow, f.g.Publish(context.Background(), &c, report, t0).Verdict)
	d := f.g.Disconnect(&c, report, t0.Add(time.Second))
	assert.Equal(t, mqttguard.Drop, d.Verdict, "a second report a second later, as a will")
	assert.Equal(t, mqttguard.ByAnomaly, d.Cause.Component)
	assert.Zero(t, d.Code, "a will is sent or not: no code")
	assert.Equal(t, mqttguard.Allow, f.g.Disconnect(&c, report, t0.Add(time.Minute)).Verdict, "on time")
}

// le is a verdict as the echo test plugin's payload: it answers with the
// payload's last four bytes.
func le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestPlugins(t *testing.T) {
	wasm, err := os.ReadFile("wasmguard/testdata/echo.wasm")
	require.NoError(t, err)
	p, err := wasmguard.Load(context.Background(), wasm, wasmguard.Limits{MaxInstances: 2}, wasmguard.WithName("echo"))
	require.NoError(t, err)
	defer p.Close(context.Background())
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Plugins = []*wasmguard.Plugin{p} })
	c, d := f.connect(t, "a1", "admin", "admin-pw", t0)
	require.Equal(t, mqttguard.Allow, d.Verdict)
	pub := func(payload []byte) mqttguard.Decision {
		return f.g.Publish(context.Background(), &c, &mqttguard.Message{Topic: "x", Payload: payload, Subscribers: -1}, t0)
	}
	assert.Equal(t, mqttguard.Allow, pub(le(0)).Verdict)
	d = pub(le(0x9901))
	assert.Equal(t, mqttguard.Reject, d.Verdict)
	assert.Equal(t, reason.PayloadFormatInvalid, d.Code)
	assert.Equal(t, mqttguard.Cause{Component: mqttguard.ByPlugin, Rule: "echo"}, d.Cause)
	assert.Equal(t, mqttguard.Drop, pub(le(2)).Verdict)
	d = pub(le(0xDEAD)) // traps: fail closed
	assert.Equal(t, reason.UnspecifiedError, d.Code)
	assert.Contains(t, d.Cause.Detail, "trapped")

	old := f.g.SetPlugins(nil)
	assert.Equal(t, []*wasmguard.Plugin{p}, old)
	assert.Equal(t, mqttguard.Allow, pub(le(0x9901)).Verdict, "the plugin is out")
}

// ObserveOnly lets the abuse layer's refusals through and says what they
// would have been; access control is still enforced.
func TestObserveOnly(t *testing.T) {
	f := newGuard(t, trust.ObserveOnly, nil)
	c, d := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	require.Equal(t, mqttguard.Allow, d.Verdict)
	observed := 0
	for i := 0; i < 200; i++ {
		d = f.publish(&c, "sensors/sensor1/temp", t0)
		require.Equal(t, mqttguard.Allow, d.Verdict)
		require.Zero(t, d.Delay)
		if d.Observed {
			observed++
			assert.Equal(t, mqttguard.Reject, d.Would)
			assert.Equal(t, reason.QuotaExceeded, d.WouldCode)
		}
	}
	assert.Equal(t, 190, observed, "the topic's burst of 10, then every one")
	assert.Equal(t, uint64(190), f.g.Stats().Observed(mqttguard.ByRateLimit))
	assert.Contains(t, f.audit(), `msg="mqttguard: would reject"`)

	d = f.publish(&c, "commands/sensor1/x", t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict, "the ACL is enforced in every mode")
	_, d = f.connect(t, "s1", "sensor1", "nope", t0)
	assert.Equal(t, reason.BadUsernameOrPassword, d.Code, "so are credentials")

	f.g.SetMode(trust.EnforceFull)
	assert.Equal(t, trust.EnforceFull, f.tracker.Mode())
	d = f.publish(&c, "sensors/sensor1/temp", t0)
	assert.Equal(t, mqttguard.Reject, d.Verdict, "enforced now")
}

func TestAuditLogIsRateLimited(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.Trust = nil; c.AuditPerSecond = 1 })
	c, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	for range 100 {
		f.publish(&c, "sensors/sensor1/secret", t0)
	}
	assert.Equal(t, 10, strings.Count(f.audit(), "component=acl"), "a burst of 10 lines, then 1 a second")
	st := f.g.Stats()
	assert.Equal(t, uint64(90), st.AuditSuppressed)
	assert.Equal(t, uint64(100), st.Decisions(mqttguard.PointPublish, mqttguard.Reject))
	assert.Equal(t, uint64(100), st.By(mqttguard.ByACL))
	assert.Contains(t, f.audit(), `rule="topic deny sensors/sensor1/secret" line=6`)
}

func TestConfigErrors(t *testing.T) {
	_, err := mqttguard.New(mqttguard.Config{RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: -1}}})
	assert.ErrorContains(t, err, "Config.RateLimits.MessagesPerUser")
	_, err = mqttguard.New(mqttguard.Config{Plugins: []*wasmguard.Plugin{nil}})
	assert.ErrorContains(t, err, "Config.Plugins[0]")
	g, err := mqttguard.New(mqttguard.Config{})
	require.NoError(t, err, "every component is optional")
	c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "x"}, t0)
	assert.Equal(t, mqttguard.Allow, d.Verdict)
	assert.Equal(t, mqttguard.Allow, g.Publish(context.Background(), &c, &mqttguard.Message{Topic: "a"}, t0).Verdict)
}

// The allow path of a publish allocates nothing, every component on.
func TestPublishAllowPathDoesNotAllocate(t *testing.T) {
	wasm, err := os.ReadFile("wasmguard/testdata/trivial.wasm")
	require.NoError(t, err)
	p, err := wasmguard.Load(context.Background(), wasm, wasmguard.Limits{MaxInstances: 1})
	require.NoError(t, err)
	defer p.Close(context.Background())
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) {
		c.Plugins = []*wasmguard.Plugin{p}
		c.RateLimits = mqttguard.RateLimits{MessagesPerClient: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9},
			BytesPerClient: mqttguard.Rate{PerSecond: 1e12, Burst: 1e12}, MessagesPerUser: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9},
			MessagesPerTopic: mqttguard.Rate{PerSecond: 1e9, Burst: 1e9}}
	})
	c, _ := f.connect(t, "a1", "admin", "admin-pw", t0)
	m := &mqttguard.Message{Topic: "plant/line1/temp", Payload: []byte("21.5"), Subscribers: 3}
	ctx := context.Background()
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		if d := f.g.Publish(ctx, &c, m, now); d.Verdict != mqttguard.Allow {
			t.Fatal(d)
		}
	})
	assert.Zero(t, allocs)
}

func TestFilterOnDelivery(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.FilterOnDelivery = true })
	c, _ := f.connect(t, "d1", "dashboard", "dash-pw", t0)
	ctx := context.Background()
	assert.Equal(t, mqttguard.Allow, f.g.Subscribe(ctx, &c, "#", 1, t0).Verdict, "the subscription stands")
	assert.Equal(t, mqttguard.Allow, f.g.Deliver(&c, &mqttguard.Message{Topic: "sensors/s1/t"}).Verdict)
	assert.Equal(t, mqttguard.Drop, f.g.Deliver(&c, &mqttguard.Message{Topic: "commands/s1"}).Verdict, "deliveries are checked")
	assert.Equal(t, reason.TopicFilterInvalid, f.g.Subscribe(ctx, &c, "a/#/b", 1, t0).Code, "filters are still validated")
}
