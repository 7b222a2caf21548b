package trust

import "math"

// record is the trust state of one identity. Everything that changes with
// time (recovery, score decay, the escalation level's leak) is computed
// when the record is next touched, so no goroutine or ticker ever walks
// the records.
type record struct {
	state   State
	since   int64   // when state was entered (unix ns)
	score   float64 // at scoreAt
	scoreAt int64
	// The escalation level is the weight of violations in the last
	// window, estimated with two fixed windows: all of the current one and
	// the part of the previous one the sliding window still overlaps.
	winStart int64   // start of the current window
	cur      float64 // weight in the current window
	prev     float64 // weight in the previous window
	lastBad  int64   // last counted violation (0: none)
	lastGood int64   // last rewarded good behaviour
	lastSeen int64   // last violation or good traffic
	lastKind Kind    // of the last counted violation: the reason an operator sees
}

// params are a Config turned into the numbers the record math uses.
type params struct {
	initial      float64
	weights      [numKinds]float64
	thresholds   [4]float64
	window       int64 // ns
	quiet        int64 // ns a state must be held quietly before stepping down
	ban          int64
	penalty      float64
	reward       float64
	goodInterval int64
	halfLife     float64 // ns
	cooldown     int64
	spacing      int64
	idle         int64
}

func newParams(c Config) params {
	p := params{
		initial:      float64(c.InitialScore),
		window:       max(c.Window.Nanoseconds(), 1),
		quiet:        max(c.QuietPeriod, c.MinDwell).Nanoseconds(),
		ban:          c.BanDuration.Nanoseconds(),
		penalty:      float64(c.ScorePenalty),
		reward:       float64(c.GoodReward),
		goodInterval: c.GoodInterval.Nanoseconds(),
		halfLife:     float64(max(c.ScoreHalfLife.Nanoseconds(), 1)),
		cooldown:     c.ObserveCooldown.Nanoseconds(),
		spacing:      max(c.Spacing.Nanoseconds(), 0),
		idle:         c.IdleExpiry.Nanoseconds(),
	}
	for k := range p.weights {
		w := defaultWeights[k]
		if cw, ok := c.Weights[Kind(k)]; ok && cw != 0 {
			w = cw
		}
		p.weights[k] = float64(max(w, 0))
	}
	for i, t := range c.Thresholds {
		p.thresholds[i] = float64(t)
	}
	return p
}

func newRecord(p *params, now int64) *record {
	return &record{score: p.initial, scoreAt: now, winStart: now, since: now, lastSeen: now}
}

// step is one state change found while bringing a record up to date.
type step struct {
	at       int64
	score    float32
	from, to State
	kind     Kind
	escalate bool
	adopted  bool // taken from another broker's Record
	restored bool // taken from a Record saved by an earlier run
	pardoned bool // an operator's Pardon
	dim      Dimension
}

// reason explains a step for the audit log.
func (s step) reason() string {
	switch {
	case s.pardoned:
		return "pardoned"
	case s.restored:
		return "restored from the last run"
	case s.adopted:
		return "adopted from another broker"
	case s.escalate:
		return "violations reached the threshold"
	case s.from == Disconnected:
		return "ban period over"
	}
	return "quiet period held"
}

// advance brings the record to now: recovery steps (each state held a
// quiet period, none skipped), the score's decay towards the initial
// score and the escalation windows. Times that go backwards count as no
// time.
func (r *record) advance(p *params, now int64, steps *stepList) {
	for r.state != Normal {
		var at int64
		if r.state == Disconnected {
			at = r.since + p.ban
		} else {
			at = max(r.lastBad, r.since) + p.quiet
		}
		if at > now {
			break
		}
		from := r.state
		r.state--
		r.since = at
		steps.add(step{from: from, to: r.state, at: at, score: float32(r.score)})
	}
	if d := now - r.scoreAt; d > 0 {
		if r.score != p.initial {
			r.score = p.initial + (r.score-p.initial)*math.Exp2(-float64(d)/p.halfLife)
		}
		r.scoreAt = now
	}
	if d := now - r.winStart; d >= p.window {
		if d >= 2*p.window {
			r.prev = 0
		} else {
			r.prev = r.cur
		}
		r.cur = 0
		r.winStart = now - d%p.window
	}
}

// level is the weight of violations in the window ending at now (the
// record must have been advanced to now).
func (r *record) level(p *params, now int64) float64 {
	overlap := 1 - float64(now-r.winStart)/float64(p.window)
	return r.cur + r.prev*max(overlap, 0)
}

// violation counts one violation of weight w (already scaled for the
// identity's dimension) and escalates as far as the level reaches,
// capped by the mode.
func (r *record) violation(p *params, w float64, kind Kind, now int64, limit State, steps *stepList) {
	r.cur += w
	r.score = max(0, r.score-w*p.penalty)
	r.lastBad = max(r.lastBad, now)
	r.lastSeen = max(r.lastSeen, now)
	r.lastKind = kind
	level := r.level(p, now)
	target := Normal
	for i, th := range p.thresholds {
		if level >= th {
			target = State(i + 1)
		}
	}
	target = min(target, limit)
	if target > r.state {
		steps.add(step{from: r.state, to: target, at: now, score: float32(r.score), kind: kind, escalate: true})
		r.state = target
		r.since = now
	}
}

// good rewards well-behaved traffic, at most once per interval.
func (r *record) good(p *params, now int64) {
	r.lastSeen = max(r.lastSeen, now)
	if r.lastGood != 0 && now-r.lastGood < p.goodInterval {
		return
	}
	r.score = min(MaxScore, r.score+p.reward)
	r.lastGood = now
}

// baseline reports whether the record carries no information worth
// keeping: Normal, no escalation level, score back at the initial one,
// idle for the expiry.
func (r *record) baseline(p *params, now int64) bool {
	return r.state == Normal && r.level(p, now) < 0.01 && math.Abs(r.score-p.initial) < 0.5 && now-r.lastSeen >= p.idle
}

// stepList collects state changes without allocating for the usual few
// (four recovery steps and an escalation per identity).
type stepList struct {
	buf [6]step
	n   int
	ext []step
}

func (l *stepList) add(s step) {
	if l.n < len(l.buf) {
		l.buf[l.n] = s
		l.n++
		return
	}
	l.ext = append(l.ext, s)
}

func (l *stepList) each(f func(step)) {
	for i := 0; i < l.n; i++ {
		f(l.buf[i])
	}
	for _, s := range l.ext {
		f(s)
	}
}

func (l *stepList) empty() bool { return l.n == 0 }

func (l *stepList) len() int { return l.n + len(l.ext) }

// setDim marks the steps from index from on as the given dimension's.
func (l *stepList) setDim(from int, d Dimension) {
	for i := from; i < l.len(); i++ {
		if i < len(l.buf) {
			l.buf[i].dim = d
		} else {
			l.ext[i-len(l.buf)].dim = d
		}
	}
}
