package trust

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// tracker makes a Tracker for a test. Its violations count one by one
// even in the same instant (no Spacing), as most tests send bursts to
// reach a state: TestSpacing covers the default.
func tracker(t testing.TB, cfg Config) *Tracker {
	t.Helper()
	if cfg.Spacing == 0 {
		cfg.Spacing = -1
	}
	tr, err := New(cfg)
	require.NoError(t, err)
	return tr
}

// A burst of one kind of violation is one offence; an offence that goes
// on second after second escalates.
func TestSpacing(t *testing.T) {
	tr, err := New(Config{Mode: EnforceFull})
	require.NoError(t, err)
	c := Identity{ClientID: "c", Username: "u"}
	for range 30 {
		tr.Violation(c, RateLimited, t0)
	}
	assert.Equal(t, Normal, tr.State(c, t0), "30 refusals in one instant are one point")
	for range 3 {
		tr.Violation(c, ACLDenied, t0)
	}
	assert.Equal(t, Normal, tr.State(c, t0), "another kind is another point: 2 in all")
	at := t0
	for tr.State(c, at) != Disconnected {
		at = at.Add(10 * time.Millisecond)
		tr.Violation(c, RateLimited, at)
		require.Less(t, at.Sub(t0), 10*time.Second)
	}
	assert.InDelta(t, 1.3, at.Sub(t0).Seconds(), 0.15, "a sustained flood: a point every 100 ms, disconnected after 13 more")
}

func id(c string) Identity { return Identity{ClientID: c} }

func TestEscalationThresholds(t *testing.T) {
	// Default thresholds 4, 6, 10, 15; a malformed packet weighs 5, an
	// ACL refusal 1: a newcomer's three mistakes throttle nobody.
	rl, acl := RateLimited, ACLDenied
	cases := []struct {
		kinds []Kind
		want  State
	}{
		{[]Kind{rl}, Normal},
		{[]Kind{rl, rl, rl}, Normal},
		{[]Kind{rl, rl, rl, rl}, Throttled},
		{[]Kind{acl, acl, acl}, Normal},
		{[]Kind{acl, acl, acl, acl, acl, acl}, WriteDisabled},
		{[]Kind{Malformed}, Throttled},
		{[]Kind{Malformed, Malformed}, ShadowBanned},
		{[]Kind{Malformed, Malformed, Malformed}, Disconnected},
		{[]Kind{AuthFailure, AuthFailure}, WriteDisabled},
	}
	for _, c := range cases {
		tr := tracker(t, Config{Mode: EnforceFull})
		var got State
		for i, k := range c.kinds {
			got = tr.Violation(id("c"), k, t0.Add(time.Duration(i)*time.Millisecond))
		}
		assert.Equal(t, c.want, got, "%v", c.kinds)
		assert.Equal(t, c.want, tr.State(id("c"), t0.Add(time.Second)), "%v", c.kinds)
	}
}

func TestLevelLeaksOverTheWindow(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	// Rate-limit hits 40 s apart never add up to the threshold (4): the
	// level leaks over the minute.
	for i := 0; i < 20; i++ {
		tr.Violation(id("c"), RateLimited, t0.Add(time.Duration(i)*40*time.Second))
	}
	assert.Equal(t, Normal, tr.State(id("c"), t0.Add(20*40*time.Second)))
	// Four within a second escalate.
	at := t0.Add(time.Hour)
	for i := 0; i < 4; i++ {
		tr.Violation(id("c"), RateLimited, at)
	}
	assert.Equal(t, Throttled, tr.State(id("c"), at))
}

// Recovery steps down one state per quiet period, never skipping one,
// and reports every step.
func TestRecoveryVisitsEveryState(t *testing.T) {
	var got []Transition
	var mu sync.Mutex
	tr := tracker(t, Config{Mode: EnforceFull, OnTransition: func(x Transition) {
		mu.Lock()
		got = append(got, x)
		mu.Unlock()
	}})
	for i := 0; i < 3; i++ {
		tr.Violation(id("c"), Malformed, t0)
	}
	require.Equal(t, Disconnected, tr.State(id("c"), t0))
	cfg := tr.Config()
	// Just before the ban ends: still Disconnected.
	assert.Equal(t, Disconnected, tr.State(id("c"), t0.Add(cfg.BanDuration-time.Nanosecond)))
	banEnd := t0.Add(cfg.BanDuration)
	assert.Equal(t, ShadowBanned, tr.State(id("c"), banEnd))
	q := cfg.QuietPeriod
	assert.Equal(t, ShadowBanned, tr.State(id("c"), banEnd.Add(q-time.Nanosecond)))
	assert.Equal(t, WriteDisabled, tr.State(id("c"), banEnd.Add(q)))
	// Read much later: the remaining steps happen one quiet period apart.
	assert.Equal(t, Normal, tr.State(id("c"), banEnd.Add(24*time.Hour)))

	var path []string
	for _, x := range got {
		path = append(path, fmt.Sprintf("%s>%s", x.From, x.To))
	}
	assert.Equal(t, []string{
		"normal>throttled",           // 5 ≥ 3
		"throttled>shadow-banned",    // 10 ≥ 10
		"shadow-banned>disconnected", // 15 ≥ 15
		"disconnected>shadow-banned",
		"shadow-banned>write-disabled",
		"write-disabled>throttled",
		"throttled>normal",
	}, path)
	assert.True(t, got[0].Escalation)
	assert.Equal(t, Malformed, got[0].Kind)
	assert.True(t, banEnd.Equal(got[3].At))
	assert.Equal(t, "ban period over", got[3].Reason)
	assert.Equal(t, "quiet period held", got[4].Reason)
	assert.True(t, banEnd.Add(2*q).Equal(got[5].At), "each step one quiet period after the last")
	assert.True(t, banEnd.Add(3*q).Equal(got[6].At))
}

// A violation during recovery restarts the quiet period: no flapping.
func TestHysteresis(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	for i := 0; i < 4; i++ {
		tr.Violation(id("c"), RateLimited, t0)
	}
	require.Equal(t, Throttled, tr.State(id("c"), t0))
	q := tr.Config().QuietPeriod
	// One more hit just before the quiet period ends: stays Throttled for
	// another full quiet period, does not escalate (the level leaked).
	at := t0.Add(q - time.Second)
	assert.Equal(t, Throttled, tr.Violation(id("c"), RateLimited, at))
	assert.Equal(t, Throttled, tr.State(id("c"), at.Add(q-time.Nanosecond)))
	assert.Equal(t, Normal, tr.State(id("c"), at.Add(q)))
	// Alternating good and bad at the edge never flips states back and
	// forth: count transitions.
	tr2 := tracker(t, Config{Mode: EnforceFull})
	var n int
	tr2.cfg.OnTransition = func(Transition) { n++ }
	at = t0
	for i := 0; i < 1000; i++ {
		at = at.Add(10 * time.Second)
		if i%2 == 0 {
			tr2.Violation(id("c"), RateLimited, at)
		} else {
			tr2.Good(id("c"), at)
		}
	}
	assert.LessOrEqual(t, n, 1, "at most one escalation, no flapping")
}

func TestScore(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	c := id("c")
	assert.Equal(t, 300, tr.Score(c, t0), "a newcomer starts at the initial score")
	assert.Equal(t, 0.8, tr.Multiplier(c, t0))
	tr.Violation(c, RateLimited, t0)
	assert.Equal(t, 260, tr.Score(c, t0), "falls by weight × 40")
	// Good traffic: at most one reward per 10 s.
	tr2 := tracker(t, Config{Mode: EnforceFull, ScoreHalfLife: 1000 * time.Hour})
	for i := 0; i < 100; i++ {
		tr2.Good(c, t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 300+2*10, tr2.Score(c, t0.Add(100*time.Second)))
	// Decay towards the initial score: halfway after one half-life.
	tr3 := tracker(t, Config{Mode: EnforceFull})
	tr3.Violation(c, Malformed, t0) // -200 → 100
	assert.Equal(t, 100, tr3.Score(c, t0))
	assert.Equal(t, Throttled, tr3.State(c, t0))
	assert.Equal(t, 0.5, tr3.Multiplier(c, t0), "Throttled or worse forces the lowest band")
	tr4 := tracker(t, Config{Mode: EnforceFull, Thresholds: [4]int{100, 200, 300, 400}})
	tr4.Violation(c, Malformed, t0)
	assert.Equal(t, 200, tr4.Score(c, t0.Add(time.Hour)))
	assert.Equal(t, 250, tr4.Score(c, t0.Add(2*time.Hour)))
	// Scores stay in range.
	for i := 0; i < 100; i++ {
		tr4.Violation(c, Malformed, t0.Add(2*time.Hour))
	}
	assert.Equal(t, 0, tr4.Score(c, t0.Add(2*time.Hour)))
}

func TestBands(t *testing.T) {
	for score, want := range map[int]float64{0: 0.5, 100: 0.5, 101: 0.8, 300: 0.8, 301: 1, 600: 1, 601: 1.5, 800: 1.5, 801: 2, 1000: 2} {
		assert.Equal(t, want, Band(score), "score %d", score)
	}
	prev := 0.0
	for s := 0; s <= MaxScore; s++ {
		require.GreaterOrEqual(t, Band(s), prev, "Band must be monotone")
		prev = Band(s)
	}
}

func TestModes(t *testing.T) {
	flood := func(tr *Tracker) {
		for i := 0; i < 10; i++ {
			tr.Violation(id("c"), Malformed, t0.Add(time.Duration(i)*time.Second))
		}
	}
	light := tracker(t, Preset(EnforceLight))
	flood(light)
	v := light.Verdict(id("c"), t0.Add(10*time.Second))
	assert.Equal(t, Throttled, v.State, "EnforceLight stops at Throttled")
	assert.True(t, v.Enforced)
	assert.Equal(t, 500*time.Millisecond, v.Delay)

	full := tracker(t, Preset(EnforceFull))
	flood(full)
	assert.Equal(t, Disconnected, full.State(id("c"), t0.Add(10*time.Second)))

	observe := tracker(t, Preset(ObserveOnly))
	flood(observe)
	v = observe.Verdict(id("c"), t0.Add(10*time.Second))
	assert.False(t, v.Enforced)
	assert.Equal(t, time.Duration(0), v.Delay)
	action, code := v.Publish()
	assert.Equal(t, PublishAllow, action, "ObserveOnly never punishes")
	assert.Equal(t, reason.Success, code)
	ok, _ := v.Connect()
	assert.True(t, ok)
	// Debounce: ten malformed packets in ten seconds count once.
	assert.Equal(t, Throttled, v.State, "one malformed packet (weight 5) is recorded, the other nine debounced")
	st := observe.Stats(t0)
	assert.Equal(t, uint64(10), st.Violations(Malformed), "every report is counted in the stats")
}

// An hour of floods under ObserveOnly, then enforcement: nobody is banned
// for the past; fresh violations are needed.
func TestSwitchFromObserveDoesNotMassBan(t *testing.T) {
	cfg := Preset(ObserveOnly)
	cfg.Spacing = -1
	tr := tracker(t, cfg)
	for c := 0; c < 200; c++ {
		for m := 0; m < 60; m++ {
			tr.Violation(id(fmt.Sprint(c)), Malformed, t0.Add(time.Duration(m)*time.Minute))
		}
	}
	at := t0.Add(time.Hour)
	before := tr.Stats(at)
	assert.Positive(t, before.States(ShadowBanned)+before.States(Disconnected), "observe mode records the would-be states")
	tr.SetMode(EnforceFull)
	after := tr.Stats(at)
	assert.Equal(t, 200, after.States(Normal), "switching to enforcement starts everyone afresh")
	assert.Less(t, tr.Score(id("7"), at), 300, "scores are kept")
	// Fresh violations escalate as usual.
	for i := 0; i < 3; i++ {
		tr.Violation(id("7"), Malformed, at)
	}
	assert.Equal(t, Disconnected, tr.State(id("7"), at))
}

func TestVerdictActions(t *testing.T) {
	for _, c := range []struct {
		s      State
		action PublishAction
		code   reason.Code
		connOK bool
	}{
		{Normal, PublishAllow, 0, true},
		{Throttled, PublishAllow, 0, true},
		{WriteDisabled, PublishReject, 0x87, true},
		{ShadowBanned, PublishAckAndDrop, 0x00, true},
		{Disconnected, PublishDisconnect, 0x98, false},
	} {
		v := Verdict{State: c.s, Enforced: true}
		a, code := v.Publish()
		assert.Equal(t, c.action, a, c.s.String())
		assert.Equal(t, c.code, code, c.s.String())
		ok, cc := v.Connect()
		assert.Equal(t, c.connOK, ok, c.s.String())
		if !ok {
			assert.Equal(t, reason.Banned, cc)
		}
	}
}

func TestDimensions(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, UsernameFactor: 1, IPFactor: 0.5})
	addr := netip.MustParseAddr("192.0.2.7")
	// Four devices of one account misbehave once each: the account
	// reaches Throttled, so a fifth device of the same account is
	// throttled too; the shared address only got half the weight.
	for i := 0; i < 4; i++ {
		tr.Violation(Identity{ClientID: fmt.Sprint("dev", i), Username: "acme", Addr: addr}, RateLimited, t0)
	}
	fourth := Identity{ClientID: "dev9", Username: "acme", Addr: addr}
	assert.Equal(t, Throttled, tr.State(fourth, t0))
	assert.Equal(t, Normal, tr.State(Identity{ClientID: "x", Username: "other", Addr: addr}, t0))
	assert.Equal(t, Normal, tr.State(id("dev0"), t0), "the device alone did little")
}

func TestTransitionLogAndReentrantCallback(t *testing.T) {
	var buf bytes.Buffer
	var tr *Tracker
	tr = tracker(t, Config{
		Mode:   EnforceFull,
		Logger: slog.New(slog.NewTextHandler(&buf, nil)),
		// Calling back into the Tracker from the callback must not deadlock.
		OnTransition: func(x Transition) { tr.State(Identity{ClientID: x.Key}, x.At) },
	})
	for i := 0; i < 3; i++ {
		tr.Violation(id("sensor-9"), AuthFailure, t0)
	}
	out := buf.String()
	assert.Contains(t, out, "trust: state change")
	assert.Contains(t, out, "client=sensor-9")
	assert.Contains(t, out, "to=write-disabled")
	assert.Contains(t, out, "violation=auth-failure")
}

func TestMemoryBoundAndPunishmentSurvivesFlood(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, MaxRecords: 64 * 20})
	for i := 0; i < 3; i++ {
		tr.Violation(id("attacker"), Malformed, t0)
	}
	require.Equal(t, Disconnected, tr.State(id("attacker"), t0))
	for i := 0; i < 50_000; i++ {
		tr.Violation(id(fmt.Sprint("spoof-", i)), RateLimited, t0.Add(time.Duration(i)*time.Microsecond))
	}
	st := tr.Stats(t0.Add(time.Second))
	assert.LessOrEqual(t, st.Records, 64*20)
	assert.Equal(t, Disconnected, tr.State(id("attacker"), t0.Add(time.Second)), "a flood of new IDs must not wash out a ban")
	// Idle baseline records go on Sweep.
	assert.Positive(t, tr.Sweep(t0.Add(48*time.Hour)))
	assert.Equal(t, 0, tr.Stats(t0.Add(48*time.Hour)).Records)
}

// A table full of punished records (an attacker earning a disconnect
// under each of thousands of client IDs) neither blinds the tracker to
// a new offender nor lets the attacker out: its username carries the
// punishment to every new client ID, however many its client records
// are past MaxClientsPerUser.
func TestFullOfPunishedRecordsStillTracksNewOffenders(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, MaxRecords: 64 * 20, UsernameFactor: 1})
	for i := 0; i < 10_000; i++ {
		spoof := Identity{ClientID: fmt.Sprint("spoof-", i), Username: "mallory"}
		for range 3 {
			tr.Violation(spoof, Malformed, t0.Add(time.Duration(i)*time.Microsecond))
		}
	}
	at := t0.Add(time.Second)
	assert.LessOrEqual(t, tr.Stats(at).Records, 64*20)
	evil := Identity{ClientID: "evil", Username: "eve"}
	for range 3 {
		tr.Violation(evil, Malformed, at)
	}
	assert.Equal(t, Disconnected, tr.State(evil, at), "a new offender is tracked when the table is full")
	assert.Equal(t, Disconnected, tr.State(Identity{ClientID: "spoof-10000", Username: "mallory"}, at), "the flooder stays punished")
}

func TestUnknownClientCostsNothing(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull})
	v := tr.Verdict(id("never-seen"), t0)
	assert.Equal(t, Normal, v.State)
	assert.Equal(t, 300, v.Score)
	assert.Equal(t, 0, tr.Stats(t0).Records, "a read does not create a record")
	assert.Equal(t, Normal, tr.State(Identity{}, t0))
}

func TestZeroAllocationsForKnownClient(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, Weights: map[Kind]int{RateLimited: 1}})
	c := Identity{ClientID: "sensor-1", Username: "u", Addr: netip.MustParseAddr("10.0.0.1")}
	tr.Good(c, t0)
	at := t0
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(time.Minute) // quiet enough never to escalate
		tr.Violation(c, RateLimited, at)
		tr.Good(c, at)
		tr.State(c, at)
		tr.Multiplier(c, at)
	})
	assert.Zero(t, allocs)
}

func TestConcurrentUse(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, MaxRecords: 640, OnTransition: func(Transition) {}})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				c := id(fmt.Sprint(i % 100))
				at := t0.Add(time.Duration(i) * time.Millisecond)
				switch i % 4 {
				case 0:
					tr.Violation(c, Kind(i%numKinds), at)
				case 1:
					tr.Good(c, at)
				case 2:
					tr.Verdict(c, at)
				default:
					if g == 0 && i%500 == 3 {
						tr.Sweep(at)
						tr.Stats(at)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	for _, s := range tr.Stats(t0).Scores {
		assert.GreaterOrEqual(t, s, 0)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{InitialScore: 2000},
		{Thresholds: [4]int{3, 3, 10, 15}},
		{Window: -time.Second},
		{Mode: 7},
		{IPFactor: -1},
		{Weights: map[Kind]int{Kind(99): 1}},
	} {
		_, err := New(c)
		require.Error(t, err, "%+v", c)
		var ce *ConfigError
		assert.ErrorAs(t, err, &ce)
	}
	m, err := ParseMode("full")
	require.NoError(t, err)
	assert.Equal(t, EnforceFull, m)
	_, err = ParseMode("harsh")
	assert.ErrorContains(t, err, "unknown mode")
}

func TestDecayIsMonotoneTowardsInitial(t *testing.T) {
	tr := tracker(t, Config{Mode: EnforceFull, Thresholds: [4]int{1000, 2000, 3000, 4000}})
	tr.Violation(id("c"), Malformed, t0)
	prev := -1
	for h := 0; h < 48; h++ {
		s := tr.Score(id("c"), t0.Add(time.Duration(h)*30*time.Minute))
		require.GreaterOrEqual(t, s, prev)
		require.LessOrEqual(t, s, 300)
		prev = s
	}
	assert.InDelta(t, 300, prev, 1)
	_ = math.Abs
}
