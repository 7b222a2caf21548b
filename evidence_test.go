package mqttguard_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Evidence counts only against what a client has proven to be: before
// authentication, its address.

func withGate(t testing.TB, cfg trust.AuthGateConfig) func(*mqttguard.Config) {
	return func(c *mqttguard.Config) {
		g, err := trust.NewAuthGate(cfg)
		require.NoError(t, err)
		c.AuthGate = g
		c.RateLimits.ConnectionsPerAddr = mqttguard.Rate{} // the gate is under test
	}
}

func (f *fixture) connectFrom(t testing.TB, from netip.Addr, id, user, pass string, at time.Time) (mqttguard.Client, mqttguard.Decision) {
	t.Helper()
	return f.g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: id, Username: user,
		Password: []byte(pass), HasPassword: pass != "", Addr: netip.AddrPortFrom(from, 40000), Listener: "tcp", ProtocolVersion: 5}, at)
}

// A stranger guessing sensor1's password locks neither sensor1 nor its
// client ID out; its own address is spaced out, then banned.
func TestGuessingCountsAgainstTheAddressOnly(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, withGate(t, trust.AuthGateConfig{Free: 3, Delay: time.Microsecond, MaxDelay: 10 * time.Microsecond, BanAfter: 40}))
	guesser, device := netip.MustParseAddr("203.0.113.66"), netip.MustParseAddr("198.51.100.7")
	_, d := f.connectFrom(t, device, "sensor1-dev", "sensor1", "s1-pw", t0)
	require.Equal(t, mqttguard.Allow, d.Verdict)

	now := t0
	codes := map[reason.Code]int{}
	for i := range 100 {
		_, d := f.connectFrom(t, guesser, "sensor1-dev", "sensor1", fmt.Sprint("guess-", i), now)
		codes[d.Code]++
		now = now.Add(time.Millisecond)
	}
	assert.Equal(t, 40, codes[0x86], "bad password until the ban")
	assert.Equal(t, 60, codes[0x8A], "then banned: refused without a hash")
	ban, banned := f.bans.Banned(trust.Identity{Addr: guesser}, now)
	require.True(t, banned)
	assert.Equal(t, trust.BanIP, ban.Kind)
	assert.True(t, ban.Automatic)

	_, d = f.connectFrom(t, device, "sensor1-dev", "sensor1", "s1-pw", now)
	assert.Equal(t, mqttguard.Allow, d.Verdict, "sensor1 with its password, from its own address: %v", d)
	st := f.tracker.Stats(now)
	assert.Zero(t, st.Violations(trust.AuthFailure)+st.Violations(trust.Flapping), "no trust evidence against sensor1 or its client ID")
	_, banned = f.bans.Banned(trust.Identity{ClientID: "sensor1-dev", Username: "sensor1"}, now)
	assert.False(t, banned)
}

// Flapping counts only connects that authenticated, by the client ID
// within its username: a stranger cycling a victim's client ID mints no
// ban, and bob flapping as the victim's client ID bans only bob's use
// of it.
func TestFlappingCountsOnlyAuthenticatedConnects(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) { c.RateLimits.ConnectionsPerAddr = mqttguard.Rate{} })
	now := t0
	for range 30 {
		f.connectFrom(t, netip.MustParseAddr("203.0.113.5"), "admin-console", "", "", now)
		f.connectFrom(t, netip.MustParseAddr("203.0.113.5"), "admin-console", "admin", "wrong", now)
		now = now.Add(time.Second)
	}
	assert.Zero(t, f.bans.Len(), "anonymous and failed connects ban nothing")
	_, d := f.connect(t, "admin-console", "admin", "admin-pw", now)
	assert.Equal(t, mqttguard.Allow, d.Verdict)

	for range 20 {
		_, d = f.connect(t, "admin-console", "dashboard", "dash-pw", now)
		now = now.Add(time.Second)
	}
	assert.Equal(t, reason.Banned, d.Code, "dashboard flapped")
	_, d = f.connect(t, "admin-console", "admin", "admin-pw", now)
	assert.Equal(t, mqttguard.Allow, d.Verdict, "the ban is dashboard's use of the client ID: %v", d)
}

// A topic's limit charges whoever floods it, not everyone who may
// publish there.
func TestTopicLimitChargesTheFlooder(t *testing.T) {
	f := newGuard(t, trust.EnforceFull, nil)
	adm, _ := f.connect(t, "adm", "admin", "admin-pw", t0)
	s1, _ := f.connect(t, "s1", "sensor1", "s1-pw", t0)
	refused := 0
	for range 50 {
		if f.publish(&s1, "sensors/sensor1/alert", t0).Verdict != mqttguard.Allow {
			refused++
		}
	}
	require.Positive(t, refused, "sensor1 exhausted its share of the topic")
	d := f.publish(&adm, "sensors/sensor1/alert", t0)
	assert.Equal(t, mqttguard.Allow, d.Verdict, "admin's real alert goes through: %v", d)
}

// Hashing is a bounded resource: CONNECTs that find every slot busy
// wait VerifyWait at most, then are refused as busy (0x89), with no
// trust evidence against anyone; the next CONNECT gets in.
func TestVerificationWaitsAtMostVerifyWait(t *testing.T) {
	h, err := passwd.HashIterations("slow-pw", 200_000) // tens of milliseconds a hash
	require.NoError(t, err)
	pw, err := passwd.ParseMosquitto(strings.NewReader("slow:" + h + "\n"))
	require.NoError(t, err)
	f := newGuard(t, trust.EnforceFull, func(c *mqttguard.Config) {
		c.Authenticators = []mqttguard.Authenticator{passwd.NewHolderWithLimits(pw, passwd.VerifyLimits{Concurrency: 1})}
		c.VerifyWait = time.Millisecond
		c.RateLimits.ConnectionsPerAddr = mqttguard.Rate{}
	})
	var wg sync.WaitGroup
	codes := make([]reason.Code, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, d := f.connectFrom(t, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), fmt.Sprint("c", i), "slow", "wrong", time.Now())
			codes[i] = d.Code
		}()
	}
	wg.Wait()
	assert.Contains(t, codes, reason.BadUsernameOrPassword, "one hashed: a wrong password")
	assert.Contains(t, codes, reason.ServerBusy, "the others waited a millisecond for the slot: busy")
	_, d := f.connectFrom(t, netip.MustParseAddr("192.0.2.1"), "c0", "slow", "slow-pw", time.Now())
	assert.Equal(t, mqttguard.Allow, d.Verdict, "%v", d)
}
