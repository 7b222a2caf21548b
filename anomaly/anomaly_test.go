package anomaly

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func fixed(p Profile) Resolver { return func(Subject) (Profile, bool) { return p, true } }

var minute = Profile{Interval: 60 * time.Second, Tolerance: 5 * time.Second}

// The seed's own worked example: reports at 10:00:00 and 10:01:05 with
// T=60 s and E=5 s: 55 ≤ 65 ≤ 65, so the device behaves.
func TestSeedExample(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute)})
	assert.Equal(t, First, d.Observe("dev", t0).Result)
	v := d.Observe("dev", time.Date(2026, 11, 22, 10, 1, 5, 0, time.UTC))
	assert.Equal(t, Normal, v.Result)
	assert.Equal(t, 65*time.Second, v.Gap)
	assert.Equal(t, Keep, v.Action)
}

func TestBoundaries(t *testing.T) {
	for _, c := range []struct {
		gap  time.Duration
		want Result
	}{
		{55 * time.Second, Normal}, // T−E, inclusive
		{55*time.Second - time.Nanosecond, TooEarly},
		{65 * time.Second, Normal}, // T+E, inclusive
		{65*time.Second + time.Nanosecond, TooLate},
		{60 * time.Second, Normal},
		{0, TooEarly},
		{time.Hour, TooLate},
	} {
		d := NewIntervalDetector(Config{Resolver: fixed(minute)})
		d.Observe("dev", t0)
		v := d.Observe("dev", t0.Add(c.gap))
		assert.Equal(t, c.want, v.Result, "gap %v", c.gap)
		assert.Equal(t, c.gap, v.Gap)
	}
}

func TestStrikesAndActions(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute), Policy: Policy{FlagAfter: 2, BanAfter: 4}})
	at := t0
	d.Observe("dev", at)
	want := []Action{Drop, Flag, Flag, Ban, Ban}
	for i, a := range want {
		at = at.Add(time.Second) // far too early
		v := d.Observe("dev", at)
		assert.Equal(t, TooEarly, v.Result)
		assert.Equal(t, i+1, v.Strikes)
		assert.Equal(t, a, v.Action, "strike %d", i+1)
	}
	// A normal report clears the strikes (consecutive mode).
	at = at.Add(time.Minute)
	v := d.Observe("dev", at)
	assert.Equal(t, Normal, v.Result)
	assert.Equal(t, 0, v.Strikes)
	assert.Equal(t, Keep, v.Action)
}

func TestLeakyStrikes(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute), Policy: Policy{Leaky: true}})
	at := t0
	d.Observe("dev", at)
	for i := 0; i < 3; i++ {
		at = at.Add(time.Second)
		d.Observe("dev", at)
	}
	at = at.Add(time.Minute)
	assert.Equal(t, 2, d.Observe("dev", at).Strikes, "a normal report takes one strike away")
}

func TestLateIsReportedNotPunished(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute)})
	d.Observe("dev", t0)
	v := d.Observe("dev", t0.Add(3*time.Hour)) // offline for hours
	assert.Equal(t, TooLate, v.Result)
	assert.Equal(t, Keep, v.Action)
	assert.Equal(t, 0, v.Strikes)

	p := NewIntervalDetector(Config{Resolver: fixed(minute), Policy: Policy{PunishLate: true}})
	p.Observe("dev", t0)
	v = p.Observe("dev", t0.Add(3*time.Hour))
	assert.Equal(t, Drop, v.Action)
	assert.Equal(t, 1, v.Strikes)
}

func TestClockGoingBackwards(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute)})
	d.Observe("dev", t0)
	d.Observe("dev", t0.Add(60*time.Second))
	v := d.Observe("dev", t0.Add(30*time.Second))
	assert.Equal(t, OutOfOrder, v.Result)
	assert.Equal(t, Keep, v.Action)
	// The state was not touched: the next report is judged against 60 s.
	v = d.Observe("dev", t0.Add(120*time.Second))
	assert.Equal(t, Normal, v.Result)
	assert.Equal(t, 60*time.Second, v.Gap)
}

func TestDeviceSwitchingProfiles(t *testing.T) {
	p := minute
	d := NewIntervalDetector(Config{Resolver: func(Subject) (Profile, bool) { return p, true }})
	d.Observe("dev", t0)
	assert.Equal(t, TooEarly, d.Observe("dev", t0.Add(10*time.Second)).Result)
	p = Profile{Interval: 10 * time.Second, Tolerance: time.Second} // reconfigured to report every 10 s
	assert.Equal(t, Normal, d.Observe("dev", t0.Add(20*time.Second)).Result)
	assert.Equal(t, TooLate, d.Observe("dev", t0.Add(80*time.Second)).Result)
}

func TestResolverRulesAndPerTopicDevices(t *testing.T) {
	r, err := NewResolver([]ProfileRule{
		{ClientID: "special", Profile: Profile{Interval: time.Second}},
		{Username: "door", TopicFilter: "sensors/door/+", Profile: Profile{Interval: time.Hour, Tolerance: time.Hour}},
		{TopicFilter: "sensors/+/temperature", Profile: minute},
	})
	require.NoError(t, err)
	p, ok := r(Subject{ClientID: "special", Topic: "x"})
	assert.True(t, ok)
	assert.Equal(t, time.Second, p.Interval)
	p, ok = r(Subject{ClientID: "t1", Topic: "sensors/t1/temperature"})
	assert.True(t, ok)
	assert.Equal(t, minute, p)
	_, ok = r(Subject{ClientID: "d1", Username: "other", Topic: "sensors/door/d1"})
	assert.False(t, ok, "every field of a rule must match")
	_, ok = r(Subject{ClientID: "x", Topic: "sensors/t1/humidity"})
	assert.False(t, ok)

	// One client, two topics at their own intervals: judged per topic.
	d := NewIntervalDetector(Config{Resolver: r})
	at := t0
	for i := 0; i < 5; i++ {
		at = at.Add(time.Minute)
		v1 := d.ObserveMessage(Subject{ClientID: "t1", Topic: "sensors/t1/temperature"}, at)
		v2 := d.ObserveMessage(Subject{ClientID: "t1", Topic: "sensors/t2/temperature"}, at.Add(time.Second))
		if i > 0 {
			assert.Equal(t, Normal, v1.Result)
			assert.Equal(t, Normal, v2.Result)
		}
	}
	assert.Equal(t, NoProfile, d.ObserveMessage(Subject{ClientID: "t1", Topic: "other"}, at).Result)

	for _, bad := range [][]ProfileRule{
		{{TopicFilter: "a/#/b", Profile: minute}},
		{{ClientID: "x", Profile: Profile{Interval: time.Second, Tolerance: 2 * time.Second}}},
		{{Profile: minute}},
	} {
		_, err := NewResolver(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

func TestNoResolverJudgesNothing(t *testing.T) {
	d := NewIntervalDetector(Config{})
	assert.Equal(t, NoProfile, d.Observe("dev", t0).Result)
	assert.Equal(t, NoProfile, d.ObserveWith("dev", Profile{}, t0).Result)
	assert.Equal(t, First, d.ObserveWith("dev", minute, t0).Result)
	assert.Equal(t, uint64(2), d.Stats().Count(NoProfile))
}

func TestObserveDoesNotAllocate(t *testing.T) {
	r, _ := NewResolver([]ProfileRule{{TopicFilter: "sensors/#", Profile: minute}})
	d := NewIntervalDetector(Config{Resolver: r})
	s := Subject{ClientID: "t1", Topic: "sensors/t1/temperature"}
	d.Observe("t1", t0)
	d.ObserveMessage(s, t0)
	at := t0
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(time.Minute)
		d.ObserveWith("t1", minute, at)
		d.ObserveMessage(s, at)
	})
	assert.Zero(t, allocs)
}

func TestMemoryBound(t *testing.T) {
	d := NewIntervalDetector(Config{Resolver: fixed(minute), MaxDevices: 64 * 50})
	// A device with strikes survives a flood of new device IDs.
	d.Observe("rogue", t0)
	d.Observe("rogue", t0.Add(time.Second))
	for i := 0; i < 100_000; i++ {
		d.Observe(fmt.Sprint("dev-", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	assert.LessOrEqual(t, d.Stats().Devices, 64*50)
	v := d.Observe("rogue", t0.Add(2*time.Second))
	assert.Equal(t, 2, v.Strikes, "a device with strikes is never dropped to make room")
	assert.Positive(t, d.Sweep(t0.Add(48*time.Hour)))
	assert.Equal(t, 0, d.Stats().Devices)
}

// A million devices at well under 64 bytes each (identities not stored).
func TestBytesPerDevice(t *testing.T) {
	if testing.Short() || testenv.RaceEnabled {
		t.Skip("a million devices; heap figures mean nothing under -race")
	}
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("device-%08d", i)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := NewIntervalDetector(Config{Resolver: fixed(minute), MaxDevices: 2 * n})
	for _, id := range ids {
		d.Observe(id, t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per device", per)
	assert.Equal(t, n, d.Stats().Devices)
	assert.Less(t, per, 64.0)
	runtime.KeepAlive(d)
	runtime.KeepAlive(ids)
}

// Goroutines report at once, beside Sweep and Stats. Each has devices of
// its own, reporting on time: every report is judged as if it came
// alone. All of them report the shared devices too, on top of each
// other: whatever the results, each shared device is new exactly once.
// And the counters add up to the reports made.
func TestConcurrentObserve(t *testing.T) {
	const goroutines, own, shared, rounds = 4, 50, 10, 100
	d := NewIntervalDetector(Config{Resolver: fixed(minute)})
	firstShared := make([]int, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reported := uint64(0)
			for r := 0; r < rounds; r++ {
				at := t0.Add(time.Duration(r) * time.Minute)
				for i := 0; i < own; i++ {
					v := d.Observe(fmt.Sprintf("g%d-dev%d", g, i), at)
					want := Verdict{Result: Normal, Gap: time.Minute, Profile: minute}
					if r == 0 {
						want = Verdict{Result: First, Profile: minute}
					}
					if !assert.Equal(t, want, v, "goroutine %d device %d round %d", g, i, r) {
						return
					}
				}
				for i := 0; i < shared; i++ {
					v := d.Observe(fmt.Sprintf("shared-%d", i), at)
					if v.Result == First {
						firstShared[g]++
					}
					if !assert.NotEqual(t, NoProfile, v.Result) {
						return
					}
				}
				reported += own + shared
				if r%10 == 0 {
					assert.Zero(t, d.Sweep(at), "no device is idle for a day")
					st := d.Stats()
					var n uint64
					for _, c := range st.Results {
						n += c
					}
					assert.GreaterOrEqual(t, n, reported, "the counters hold at least this goroutine's reports")
					assert.LessOrEqual(t, n, uint64(goroutines*rounds*(own+shared)))
					assert.LessOrEqual(t, st.Devices, goroutines*own+shared)
				}
			}
		}()
	}
	wg.Wait()

	total := 0
	for _, n := range firstShared {
		total += n
	}
	assert.Equal(t, shared, total, "each shared device is new once, to one goroutine")
	st := d.Stats()
	assert.Equal(t, goroutines*own+shared, st.Devices)
	assert.Equal(t, uint64(goroutines*own+shared), st.Count(First))
	assert.GreaterOrEqual(t, st.Count(Normal), uint64(goroutines*own*(rounds-1)), "the own devices' reports after their first")
	var n uint64
	for _, c := range st.Results {
		n += c
	}
	assert.Equal(t, uint64(goroutines*rounds*(own+shared)), n, "every report counted once")
	assert.Zero(t, st.Count(NoProfile))
	assert.Zero(t, st.Evicted)

	end := t0.Add(rounds*time.Minute + 24*time.Hour)
	assert.Equal(t, goroutines*own+shared, d.Sweep(end))
	assert.Zero(t, d.Stats().Devices)
}

func TestFlapping(t *testing.T) {
	f := NewFlappingDetector(FlappingConfig{})
	assert.Equal(t, FlappingConfig{MaxConnects: 15, Window: time.Minute, BanFor: 5 * time.Minute, MaxClients: 1 << 20}, f.Config())
	var bans int
	for i := 0; i < 20; i++ {
		v := f.Connect("flappy", t0.Add(time.Duration(i)*2*time.Second))
		if v.Ban {
			bans++
			assert.Equal(t, 15, v.Count)
			assert.True(t, t0.Add(14*2*time.Second+5*time.Minute).Equal(v.BanUntil))
		}
	}
	assert.Equal(t, 1, bans, "one ban per window, not one per connect")
	// 14 connects a minute, forever: never a ban.
	g := NewFlappingDetector(FlappingConfig{})
	for i := 0; i < 14*10; i++ {
		v := g.Connect("steady", t0.Add(time.Duration(i)*(60*time.Second/14+time.Millisecond)))
		require.False(t, v.Ban, "connect %d", i)
	}
	assert.Equal(t, uint64(1), f.Stats().Bans)
}

func TestFlappingBound(t *testing.T) {
	f := NewFlappingDetector(FlappingConfig{MaxClients: 64 * 10})
	for i := 0; i < 14; i++ {
		f.Connect("attacker", t0)
	}
	for i := 0; i < 20_000; i++ {
		f.Connect(fmt.Sprint("spoof-", i), t0.Add(time.Second))
	}
	assert.LessOrEqual(t, f.Stats().Clients, 64*10)
	assert.True(t, f.Connect("attacker", t0.Add(2*time.Second)).Ban, "a flood of new IDs must not wash out a count")
	assert.Positive(t, f.Stats().Untracked)
	assert.Positive(t, f.Sweep(t0.Add(time.Hour)))
}

func FuzzObserve(f *testing.F) {
	f.Add(int64(60), int64(5), []byte{60, 55, 65, 1, 200})
	f.Fuzz(func(t *testing.T, interval, tolerance int64, gaps []byte) {
		p := Profile{Interval: time.Duration(interval) * time.Second, Tolerance: time.Duration(tolerance) * time.Second}
		d := NewIntervalDetector(Config{Resolver: fixed(p)})
		at := t0
		last := time.Time{}
		strikes := 0
		for i, g := range gaps {
			at = at.Add(time.Duration(int8(g)) * time.Second)
			v := d.Observe("dev", at)
			switch {
			case !p.Valid():
				if v.Result != NoProfile {
					t.Fatalf("invalid profile judged: %+v", v)
				}
				continue
			case i == 0:
				if v.Result != First {
					t.Fatalf("first report: %+v", v)
				}
			case at.Before(last):
				if v.Result != OutOfOrder || v.Strikes != strikes {
					t.Fatalf("backwards report changed state: %+v", v)
				}
				continue
			default:
				gap := at.Sub(last)
				want := Normal
				if gap < p.Interval-p.Tolerance {
					want = TooEarly
				} else if gap > p.Interval+p.Tolerance {
					want = TooLate
				}
				if v.Result != want || v.Gap != gap {
					t.Fatalf("gap %v against %+v: got %+v, want %v", gap, p, v, want)
				}
				switch want {
				case TooEarly:
					strikes = min(strikes+1, 255)
				case Normal:
					strikes = 0
				}
				if v.Strikes != strikes {
					t.Fatalf("strikes %d, want %d", v.Strikes, strikes)
				}
			}
			last = at
		}
	})
}
