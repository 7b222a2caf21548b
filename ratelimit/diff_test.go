package ratelimit

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// step is one call of a differential sequence.
type step struct {
	dt time.Duration // time since the previous step (may be negative)
	n  int
}

// runDifferential drives one key of l and the reference limiter with the
// same steps and fails at the first differing decision. The reference is
// rate.NewLimiter(rate.Every(l.Interval()), burst·mult), which decides
// exactly like a GCRA bucket with the same integer interval.
func runDifferential(t *testing.T, l *Limiter, ref *rate.Limiter, steps []step, mult float64, label string) (allowed int) {
	t.Helper()
	now := time.Now()
	for i, s := range steps {
		now = now.Add(s.dt)
		var got bool
		if mult == 1 {
			got = l.AllowN("k", now, s.n)
		} else {
			got = l.AllowScaled("k", now, s.n, mult)
		}
		want := ref.AllowN(now, s.n)
		if got != want {
			t.Fatalf("%s: step %d (dt %v, n %d): ours %v, x/time/rate %v (tokens ours %.6f ref %.6f)",
				label, i, s.dt, s.n, got, want, l.Tokens("k", now), ref.TokensAt(now))
		}
		if got {
			allowed++
		}
		if tok, rt := l.Tokens("k", now), ref.TokensAt(now); math.Abs(tok-rt) > 1e-6*math.Max(1, math.Abs(rt)) {
			t.Fatalf("%s: step %d: Tokens %.9f, x/time/rate %.9f", label, i, tok, rt)
		}
	}
	return allowed
}

func randomSteps(r *rand.Rand, count int, interval time.Duration, burst int, aligned bool) []step {
	steps := make([]step, count)
	for i := range steps {
		var dt time.Duration
		if aligned {
			// Exact multiples of the interval: the boundary worst case.
			dt = interval * time.Duration(r.IntN(4))
		} else {
			dt = time.Duration(r.Int64N(int64(interval) * 3))
		}
		steps[i] = step{dt: dt, n: 1 + r.IntN(burst+2)} // sometimes above burst
	}
	return steps
}

func TestDifferentialAgainstXTimeRate(t *testing.T) {
	count := 20000
	if testing.Short() {
		count = 3000
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []rate.Limit{10, 1000, 3, 7, 0.5, 1e6, 333333} {
		for _, aligned := range []bool{false, true} {
			burst := 1 + r.IntN(40)
			l := New(limit, burst)
			ref := rate.NewLimiter(rate.Every(l.Interval()), burst)
			steps := randomSteps(r, count, l.Interval(), burst, aligned)
			n := runDifferential(t, l, ref, steps, 1, fmt.Sprintf("limit %v/s", float64(limit)))
			if n == 0 || n == len(steps) {
				t.Fatalf("limit %v: %d of %d allowed: the sequence does not exercise both outcomes", limit, n, len(steps))
			}
		}
	}
}

// TestBoundaryRounding documents the one place the two differ: for
// intervals of a few nanoseconds, x/time/rate's float arithmetic can
// compute a remaining wait of exactly 1 ns as 0.99… ns, truncate it to 0
// and allow the event 1 ns early. This limiter's integer arithmetic is
// exact. No difference shows for intervals of a microsecond or more
// (TestDifferentialAgainstXTimeRate).
func TestBoundaryRounding(t *testing.T) {
	now := time.Now()
	l := New(rate.Every(7), 1)
	ref := rate.NewLimiter(rate.Every(7), 1)
	// Empty both, then ask again 6 ns later: exactly 1 ns too early.
	if !l.AllowN("k", now, 1) || !ref.AllowN(now, 1) {
		t.Fatal("a full bucket must allow")
	}
	at := now.Add(6)
	if l.AllowN("k", at, 1) {
		t.Fatal("6 ns into a 7 ns interval the bucket holds 6/7 of a token")
	}
	if d := l.Delay("k", at, 1); d != 1 {
		t.Fatalf("Delay = %v, want 1ns", d)
	}
	if !l.AllowN("k", at.Add(1), 1) {
		t.Fatal("7 ns later a token is there")
	}
	t.Logf("x/time/rate at the same 1 ns-early instant allows: %v", ref.AllowN(at, 1))
}

// Multipliers scale rate and burst: a bucket at multiplier m decides like
// rate.NewLimiter(rate.Every(T/m), b·m) when T/m and b·m are whole.
func TestDifferentialWithMultipliers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, m := range []float64{0.5, 0.8, 1.5, 2, 4} {
		l := New(rate.Every(300*time.Millisecond), 20) // T/m and 20·m are whole
		scaled := time.Duration(float64(l.Interval()) / m)
		ref := rate.NewLimiter(rate.Every(scaled), int(20*m))
		steps := randomSteps(r, 20000, scaled, int(20*m), false)
		runDifferentialScaled(t, l, ref, steps, m)
	}
}

func runDifferentialScaled(t *testing.T, l *Limiter, ref *rate.Limiter, steps []step, m float64) {
	t.Helper()
	now := time.Now()
	for i, s := range steps {
		now = now.Add(s.dt)
		got, want := l.AllowScaled("k", now, s.n, m), ref.AllowN(now, s.n)
		if got != want {
			t.Fatalf("multiplier %v step %d (n %d): ours %v, reference %v", m, i, s.n, got, want)
		}
	}
}

func TestSpecialLimits(t *testing.T) {
	now := time.Now()
	// rate.Inf allows everything, whatever the burst.
	inf := New(rate.Inf, 0)
	if !inf.AllowN("k", now, 1_000_000) || inf.Tokens("k", now) != 0 || inf.Delay("k", now, 5) != 0 {
		t.Fatal("rate.Inf must allow everything")
	}
	// Limit 0 allows the initial burst only, forever.
	zero := New(0, 3)
	ref := rate.NewLimiter(0, 3)
	allowed := 0
	for i := 0; i < 10; i++ {
		at := now.Add(time.Duration(i) * time.Hour)
		got, want := zero.AllowN("k", at, 1), ref.AllowN(at, 1)
		if got != want {
			t.Fatalf("limit 0, hour %d: ours %v, x/time/rate %v", i, got, want)
		}
		if got {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("limit 0 allowed %d, want the burst of 3", allowed)
	}
	if d := zero.Delay("k", now, 1); d != rate.InfDuration {
		t.Fatalf("limit 0, spent: Delay %v, want InfDuration", d)
	}
	// Burst 0 refuses everything, n > burst too.
	b0 := New(10, 0)
	if b0.AllowN("k", now, 1) {
		t.Fatal("burst 0 must refuse")
	}
	l := New(10, 5)
	if l.AllowN("k", now, 6) {
		t.Fatal("n > burst must be refused even with a full bucket")
	}
	if l.Delay("k", now, 6) != rate.InfDuration {
		t.Fatal("Delay for n > burst must be InfDuration")
	}
	if !l.AllowN("k", now, 0) || !l.AllowN("k", now, -5) || l.Tokens("k", now) != 5 {
		t.Fatal("n <= 0 is allowed and takes nothing (negative n must not mint tokens)")
	}
	if l.AllowN("k", now, math.MaxInt) {
		t.Fatal("a huge n must be refused")
	}
	// The zero Limiter refuses, like a zero rate.Limiter.
	var z Limiter
	if z.AllowN("k", now, 1) || z.Tokens("k", now) != 0 || z.Len() != 0 {
		t.Fatal("the zero Limiter must refuse everything")
	}
	// Negative and NaN limits are 0; a tiny limit does not overflow.
	for _, lim := range []rate.Limit{-1, rate.Limit(math.NaN()), 1e-12} {
		x := New(lim, 2)
		if !x.AllowN("k", now, 2) || x.AllowN("k", now.Add(24*time.Hour), 1) {
			t.Fatalf("limit %v: want the burst and then nothing for a day", lim)
		}
	}
	// A huge limit (faster than 1/ns) behaves as one token per ns.
	fast := New(1e12, 1)
	if !fast.AllowN("k", now, 1) || fast.AllowN("k", now, 1) || !fast.AllowN("k", now.Add(time.Nanosecond), 1) {
		t.Fatal("limit 1e12: want one token per nanosecond")
	}
}

// Time going backwards must not mint tokens. x/time/rate allows 20 of
// 20 on this sequence (golang/go#56287); the correct answer is the burst.
func TestTimeGoingBackwardsMintsNothing(t *testing.T) {
	t0 := time.Now()
	l := New(1, 2)
	ref := rate.NewLimiter(1, 2)
	ours, theirs := 0, 0
	for i := 0; i < 20; i++ {
		at := t0.Add(10 * time.Second)
		if i%2 == 1 {
			at = t0.Add(5 * time.Second)
		}
		if l.AllowN("k", at, 1) {
			ours++
		}
		if ref.AllowN(at, 1) {
			theirs++
		}
	}
	if ours != 2 {
		t.Fatalf("alternating timestamps: allowed %d, want 2", ours)
	}
	t.Logf("alternating timestamps: ours %d of 20, x/time/rate %d of 20", ours, theirs)
}

// FuzzDifferential decodes the input into a limit, a burst and steps and
// requires the same decisions as x/time/rate built on the same integer
// interval.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{10, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{200, 40, 1, 255, 255, 0, 0, 0, 0, 9, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		interval := time.Duration(1+binary.LittleEndian.Uint16(append(data[:2:2], 0))) * time.Millisecond
		burst := int(data[2] % 50)
		l := New(rate.Every(interval), burst)
		if l.Interval() != interval {
			t.Fatalf("interval %v became %v", interval, l.Interval())
		}
		ref := rate.NewLimiter(rate.Every(interval), burst)
		var steps []step
		for i := 3; i+1 < len(data); i += 2 {
			dt := time.Duration(data[i]) * interval / 64
			steps = append(steps, step{dt: dt, n: int(data[i+1] % 60)})
		}
		runDifferential(t, l, ref, steps, 1, "fuzz")
	})
}

// FuzzEdges throws arbitrary limits (0, Inf, negative, tiny, huge),
// bursts, costs and timestamps that jump backwards at the limiter and
// checks what must always hold: never more than burst + limit·span, never
// a cost above the burst, n <= 0 always allowed, Delay agreeing with
// AllowN.
func FuzzEdges(f *testing.F) {
	f.Add(0.0, 3, []byte{1, 2, 3, 200, 4})
	f.Add(math.Inf(1), 0, []byte{255, 255, 0})
	f.Add(-5.0, 10, []byte{9, 9, 9})
	f.Add(1e-12, 1, []byte{0, 1})
	f.Add(2.5, 4, []byte{10, 250, 10, 250, 10, 250})
	f.Fuzz(func(t *testing.T, limit float64, burst int, data []byte) {
		l := New(rate.Limit(limit), burst%1000)
		burst = l.Burst() // a negative burst is 0
		t0 := time.Now()
		earliest, latest := t0, t0
		at := t0
		total := 0
		for i := 0; i+1 < len(data); i += 2 {
			// The first byte moves time: up to ±6.4 s, backwards half the time.
			jump := time.Duration(int8(data[i])) * 50 * time.Millisecond
			at = at.Add(jump)
			if at.Before(earliest) {
				earliest = at
			}
			if at.After(latest) {
				latest = at
			}
			n := int(data[i+1]) - 20 // sometimes negative
			if data[i+1] == 255 {
				n = math.MaxInt
			}
			d := l.Delay("k", at, n)
			ok := l.AllowN("k", at, n)
			switch {
			case n <= 0 && !ok:
				t.Fatalf("n=%d refused", n)
			case n > burst && ok && l.Limit() != rate.Inf:
				t.Fatalf("n=%d above burst %d allowed", n, burst)
			case d == 0 && !ok:
				t.Fatalf("Delay said 0 but AllowN(n=%d) refused", n)
			case d > 0 && ok:
				t.Fatalf("Delay said %v but AllowN(n=%d) allowed", d, n)
			}
			if ok && n > 0 {
				total += n
			}
		}
		if l.Limit() == rate.Inf {
			return
		}
		span := latest.Sub(earliest).Seconds()
		bound := float64(burst) + float64(l.Limit())*span + 1
		if float64(total) > bound {
			t.Fatalf("allowed %d, bound %.3f (limit %v burst %d span %.3fs)", total, bound, l.Limit(), burst, span)
		}
	})
}
