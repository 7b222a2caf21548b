package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The trust layer must not be a switch a stranger can throw: what an
// unauthenticated connection does counts against its address only. These
// attacks come from other loopback addresses (127.0.0.2 …), which the
// broker sees as other clients' addresses.

// fastGate is the default [security.auth_failures] (5 free, then turns
// doubling to a cap, a ban after 50) with its times scaled down, so that
// a thousand guesses take a second, not hours.
func fastGate(c *guardconf.Config) {
	c.Security.AuthFailures = guardconf.AuthFailuresConfig{Free: 5, Delay: time.Millisecond, MaxDelay: 20 * time.Millisecond, BanAfter: 50}
}

// guess sends n CONNECTs from address from, workers at a time, and
// counts the CONNACK codes.
func guess(t *testing.T, addr, from string, n, workers int, opts func(i int) e2e.RawOpts) map[byte]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[byte]int{}
	var errs []error
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				code, err := e2e.TryConnect(addr, from, opts(i))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					codes[code]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	require.Empty(t, errs, "every attempt is answered with a CONNACK")
	return codes
}

// received is what c was sent until a PINGRESP and for 300 ms after.
func received(c *e2e.Raw) []string {
	return append(strs(c.Ping()), strs(c.Collect(300*time.Millisecond, true))...)
}

func bans(t *testing.T, tb *testBroker) []map[string]any {
	t.Helper()
	code, body := tb.Admin(t, "GET", "/bans", "")
	require.Equal(t, 200, code, body)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out
}

func trustList(t *testing.T, tb *testBroker) []adminapi.TrustEntry {
	t.Helper()
	code, body := tb.Admin(t, "GET", "/trust", "")
	require.Equal(t, 200, code, body)
	var out []adminapi.TrustEntry
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out
}

// 1,000 wrong passwords for sensor1 from one address: sensor1, already
// connected or connecting from elsewhere with its password, notices
// nothing; the guessing address is spaced out (told "server busy"),
// then banned.
func TestGuessingLocksOutOnlyTheGuesser(t *testing.T) {
	tb := startBroker(t, fastGate)
	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	victim := e2e.DialRawFrom(t, tb.Addr("tcp"), "127.0.0.3", packets.V5)
	victim.Send(victim.ConnectPacket(user("sensor1", "sensor1")))
	require.Equal(t, reason.Success, victim.Expect(packets.CONNACK).ReasonCode)

	// A thousand guesses as fast as 4 connections go: most are told to
	// wait (busy); then one at a time, each in its turn, until banned.
	guesses := func(i int) e2e.RawOpts {
		return e2e.RawOpts{ID: "sensor1", User: "sensor1", Pass: fmt.Sprint("guess-", i)}
	}
	codes := guess(t, tb.Addr("tcp"), "127.0.0.2", 1000, 4, guesses)
	for i := 1000; codes[0x8A] == 0 && i < 3000; i++ {
		code, err := e2e.TryConnect(tb.Addr("tcp"), "127.0.0.2", guesses(i))
		require.NoError(t, err)
		codes[code]++
	}
	t.Logf("the guesser's CONNACKs: %v", codes)
	assert.Positive(t, codes[0x86], "wrong passwords verified and refused")
	// ban_after failures make the ban; the attempts being verified when
	// it lands (at most free at a time) still end as wrong passwords.
	assert.LessOrEqual(t, codes[0x86], 50+5, "verified: ban_after (+ free in flight) at most")
	assert.Positive(t, codes[0x89], "spaced out: told server busy past its turns")
	assert.Positive(t, codes[0x8A], "then banned")
	assert.Zero(t, codes[0], "no guess got in")
	code, err := e2e.TryConnect(tb.Addr("tcp"), "127.0.0.2", user("sensor1-other", "sensor1"))
	require.NoError(t, err)
	assert.Equal(t, byte(0x8A), code, "the guessing address is banned, even with a right password")
	var ipBan bool
	for _, b := range bans(t, tb) {
		ipBan = ipBan || (b["kind"] == "ip" && b["value"] == "127.0.0.2" && b["by"] == "auth-failures")
	}
	assert.True(t, ipBan, "an address ban by auth-failures: %v", bans(t, tb))

	// The real sensor1 was not kicked, publishes, and connects again
	// from its own address.
	assert.Equal(t, reason.Success, victim.Publish("sensors/sensor1/t", "still here", 1, false).ReasonCode)
	again := e2e.DialRawFrom(t, tb.Addr("tcp"), "127.0.0.3", packets.V5)
	again.Send(again.ConnectPacket(user("sensor1-b", "sensor1")))
	require.Equal(t, reason.Success, again.Expect(packets.CONNACK).ReasonCode)
	assert.Equal(t, reason.Success, again.Publish("sensors/sensor1/t", "and again", 1, false).ReasonCode)
	got := received(dash)
	assert.Contains(t, got, "sensors/sensor1/t still here")
	assert.Contains(t, got, "sensors/sensor1/t and again")
	assert.Empty(t, trustList(t, tb), "no client or username punished")
}

// Wrong-password and anonymous CONNECTs that claim a victim's client ID
// (and a flapping burst of them) neither kick the victim nor refuse its
// next connection, and make no ban.
func TestClaimedIdentitiesAreNotEvidence(t *testing.T) {
	tb := startBroker(t, fastGate)
	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	victim := login(t, tb, packets.V5, user("sensor2-device", "sensor2"))

	codes := guess(t, tb.Addr("tcp"), "127.0.0.4", 10, 1, func(i int) e2e.RawOpts {
		return e2e.RawOpts{ID: "sensor2-device", User: fmt.Sprint("user-", i), Pass: "x"}
	})
	for code, n := range guess(t, tb.Addr("tcp"), "127.0.0.4", 16, 1, func(int) e2e.RawOpts { return e2e.RawOpts{ID: "sensor2-device"} }) {
		codes[code] += n
	}
	for code, n := range guess(t, tb.Addr("tcp"), "127.0.0.4", 16, 1, func(int) e2e.RawOpts { return e2e.RawOpts{ID: "admin-console"} }) {
		codes[code] += n
	}
	t.Logf("the impostor's CONNACKs: %v", codes)
	assert.Zero(t, codes[0x8A], "42 failures: under ban_after, and none is a flapping ban")
	assert.Zero(t, codes[0])

	assert.Equal(t, reason.Success, victim.Publish("sensors/sensor2/t", "not kicked", 1, false).ReasonCode)
	victim.Close()
	again := login(t, tb, packets.V5, user("sensor2-device", "sensor2"))
	assert.Equal(t, reason.Success, again.Publish("sensors/sensor2/t", "back", 1, false).ReasonCode)
	admin := login(t, tb, packets.V5, user("admin-console", "admin"))
	admin.Ping()
	got := received(dash)
	assert.Contains(t, got, "sensors/sensor2/t not kicked")
	assert.Contains(t, got, "sensors/sensor2/t back")
	assert.Empty(t, bans(t, tb))
	assert.Empty(t, trustList(t, tb))
	data, err := os.ReadFile(filepath.Join(tb.Dir, "bans.jsonl"))
	if err == nil {
		assert.Empty(t, strings.TrimSpace(string(data)), "the ban file stays empty")
	}
}

// 100 devices behind one address (a NAT) keep reconnecting and
// publishing while one device behind the same address guesses
// passwords: they never queue behind its turns (a username that logged
// in from an address has a lane of its own there), even when their
// passwords must be verified again, and the address is never banned
// (someone authenticated from it).
func TestNATDevicesKeepWorkingBesideAGuesser(t *testing.T) {
	const devices = 100
	dir := e2e.PrepareDir(t)
	f, err := os.OpenFile(filepath.Join(dir, "passwd"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	for i := range devices {
		h, err := passwd.HashIterations(fmt.Sprint("pw-dev-", i), 1000)
		require.NoError(t, err)
		fmt.Fprintf(f, "dev-%d:%s\n", i, h)
	}
	require.NoError(t, f.Close())
	// A NAT's devices share an address: its connection rate is the
	// fleet's, not one device's. (In the file: the reload below reads it.)
	_, err = guardstack.Setup(dir, guardconf.DefaultConfig)
	require.NoError(t, err)
	conf, err := os.ReadFile(filepath.Join(dir, guardstack.ConfigFile))
	require.NoError(t, err)
	conf = []byte(strings.Replace(string(conf), "ip_connections_per_second = 10.0", "ip_connections_per_second = 1000.0", 1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, guardstack.ConfigFile), conf, 0o600))
	tb := startBrokerIn(t, dir, fastGate)
	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	const nat = "127.0.0.5"
	dev := func(i int) e2e.RawOpts {
		return e2e.RawOpts{ID: fmt.Sprint("dev-", i), User: fmt.Sprint("dev-", i), Pass: fmt.Sprint("pw-dev-", i)}
	}
	conns := make([]*e2e.Raw, devices)
	for i := range conns {
		conns[i] = e2e.DialRawFrom(t, tb.Addr("tcp"), nat, packets.V5)
		conns[i].Send(conns[i].ConnectPacket(dev(i)))
		require.Equal(t, reason.Success, conns[i].Expect(packets.CONNACK).ReasonCode, "dev-%d", i)
	}

	// The guesser, behind the same address, for as long as the devices
	// take to reconnect and publish.
	stop := make(chan struct{})
	var mu sync.Mutex
	guessed := map[byte]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, err := e2e.TryConnect(tb.Addr("tcp"), nat, e2e.RawOpts{ID: fmt.Sprint("x", w), User: "admin", Pass: fmt.Sprint("guess-", i)})
				if err == nil {
					mu.Lock()
					guessed[code]++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // well past ban_after failures
	// A reload of the password file forgets the passwords verified a
	// moment ago: every device's reconnect is verified again, and goes
	// through the failure gate the guesser has filled.
	code, body := tb.Admin(t, "POST", "/reload", "")
	require.Equal(t, 200, code, body)
	for i, c := range conns {
		c.Disconnect(0)
		c = e2e.DialRawFrom(t, tb.Addr("tcp"), nat, packets.V5)
		c.Send(c.ConnectPacket(dev(i)))
		require.Equal(t, reason.Success, c.Expect(packets.CONNACK).ReasonCode, "dev-%d reconnects", i)
		assert.Equal(t, reason.Success, c.Publish(fmt.Sprintf("sensors/dev-%d/t", i), "ok", 1, false).ReasonCode, "dev-%d", i)
	}
	close(stop)
	wg.Wait()
	t.Logf("the guesser's CONNACKs: %v", guessed)
	assert.Greater(t, guessed[0x86]+guessed[0x89], 50, "the guesser failed more than ban_after times")
	assert.Zero(t, guessed[0x8A], "the NAT is not banned")
	assert.Empty(t, bans(t, tb))
	assert.Len(t, received(dash), devices, "every device's reading delivered")
}

// Violations follow the username: a shadow-banned client coming back
// under a new client ID is shadow-banned still, after a restart too;
// and a pardon through the admin API restores it at once.
func TestPunishmentFollowsTheUsernameAndSurvivesARestart(t *testing.T) {
	dir := e2e.PrepareDir(t)
	tb := startBrokerIn(t, dir, nil)
	s1 := login(t, tb, packets.V5, user("s1-a", "sensor1"))
	usernameState := func(tb *testBroker) string {
		for _, e := range trustList(t, tb) {
			if e.Dimension == "username" && e.Key == "sensor1" {
				return e.State
			}
		}
		return "normal"
	}
	// Over its rate limit until its username is shadow-banned (a
	// refusal counts once per 100 ms: a second or so).
	deadline := time.Now().Add(10 * time.Second)
	for usernameState(tb) != "shadow-banned" {
		require.True(t, time.Now().Before(deadline), "shadow-banned within 10 s; state %s", usernameState(tb))
		for range 20 {
			s1.Publish("sensors/sensor1/t", "flood", 1, false)
		}
	}
	s1.Close()

	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	fresh := login(t, tb, packets.V5, user("s1-b", "sensor1"))
	assert.Equal(t, reason.Success, fresh.Publish("sensors/sensor1/t", "new client ID", 1, false).ReasonCode, "acknowledged as usual")
	assert.Empty(t, received(dash), "a new client ID is shadow-banned too")

	// A restart: the state comes back from the trust file.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tb.b.Close(ctx))
	tb = startBrokerIn(t, dir, nil)
	assert.Equal(t, "shadow-banned", usernameState(tb), "restored from %s", "trust.jsonl")
	dash = login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	after := login(t, tb, packets.V5, user("s1-c", "sensor1"))
	assert.Equal(t, reason.Success, after.Publish("sensors/sensor1/t", "after restart", 1, false).ReasonCode)
	assert.Empty(t, received(dash), "shadow-banned after the restart")

	code, body := tb.Admin(t, "POST", "/trust/pardon", `{"dimension": "username", "key": "sensor1"}`)
	require.Equal(t, 200, code, body)
	assert.Equal(t, reason.Success, after.Publish("sensors/sensor1/t", "pardoned", 1, false).ReasonCode)
	assert.Equal(t, []string{"sensors/sensor1/t pardoned"}, received(dash), "delivered at once")
	assert.Empty(t, trustList(t, tb))
}

// A newcomer's first try: two typos in the password, three publishes
// the ACL forbids, a second apart. The account goes on publishing
// normally.
func TestNewcomerMistakesPunishNobody(t *testing.T) {
	tb := startBroker(t, nil)
	dash := login(t, tb, packets.V5, user("dash", "dashboard"))
	dash.Subscribe(e2e.RawSub{Filter: "sensors/#", QoS: 1})
	for _, pw := range []string{"sensor2-pw-1", "Sensor2-pw-01"} {
		code, err := e2e.TryConnect(tb.Addr("tcp"), "", e2e.RawOpts{ID: "try", User: "sensor2", Pass: pw})
		require.NoError(t, err)
		assert.Equal(t, byte(0x86), code)
	}
	c := login(t, tb, packets.V5, user("try", "sensor2"))
	for _, topic := range []string{"sensors/sensor1/t", "alerts/critical", "commands/sensor1/x"} {
		assert.Equal(t, reason.NotAuthorized, c.Publish(topic, "oops", 1, false).ReasonCode, topic)
		time.Sleep(150 * time.Millisecond) // each counts: past trust.Config.Spacing
	}
	assert.Equal(t, reason.Success, c.Publish("sensors/sensor2/t", "right", 1, false).ReasonCode)
	assert.Equal(t, []string{"sensors/sensor2/t right"}, received(dash))
	assert.Empty(t, trustList(t, tb), "nobody throttled")
}
