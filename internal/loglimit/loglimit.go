// Package loglimit bounds what a log can be made to say: a slog.Handler
// wrapper that lets through at most so many records per key — the value
// of an attribute such as a client's address — and in total, per
// interval, and says what it dropped in one summary line per interval.
//
// Security logs are written about clients that have proven nothing: an
// attacker who opens 3,000 connections with random client IDs makes
// 3,000 audit lines (326 bytes each in the example broker) unless
// something bounds them, and could fill the disk, or bury the one line
// that mattered. A Handler counts records in fixed windows of Interval:
//
//   - a key may write PerKey records a window (an address cannot flood
//     the log whatever client IDs it invents);
//   - all keys of one attribute together may write Total a window (a
//     botnet cannot either);
//   - but a key's first record in a window passes even when Total is
//     spent, for up to NewKeys keys of the attribute a window: a real
//     event from a client the flood has not touched still appears,
//     unless the flood comes from more than NewKeys keys at once;
//   - each attribute in Keys has its own Total and NewKeys, because
//     their values do not cost the same to forge: client IDs invented by
//     the thousand spend the client IDs' budget, not the addresses';
//   - when a window with drops ends, one line says how many records were
//     dropped, from how many keys, and which keys dropped most
//     ("loglimit: 2936 similar records suppressed", suppressed=2936
//     keys=1 top="addr=203.0.113.9:2936").
//
// So a window writes at most (Total + NewKeys) records per attribute
// in Keys, as many for records with none of them, and one summary,
// whatever arrives. Keys are tracked for the current window only, at
// most MaxKeys of them (more share one overflow key): memory is bounded
// too.
//
// Time is the record's own (slog.Record.Time), so a caller that passes
// the time of the event gets deterministic windows; records without one
// use Config.Now. A window's summary is written by the first record of a
// later window, or by Flush, which a program calls from a periodic task
// so that the last summary of a flood does not wait for the next record.
package loglimit

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds a Handler. Zero fields take the defaults in their
// comments.
type Config struct {
	// Keys are the attributes a record is counted by: the first of them
	// the record carries (top-level attributes, or attributes given to
	// Logger.With), as "name=value". Records with none of them count
	// together, as "(none)".
	Keys []string
	// PerKey is how many records a key may write per window (default 20).
	PerKey int
	// Total is how many records all keys of one attribute together may
	// write per window (default 300).
	Total int
	// NewKeys is how many keys of one attribute a window may let write
	// their first record once Total is spent (default 300).
	NewKeys int
	// Interval is the window, and the period of the summary line
	// (default one minute).
	Interval time.Duration
	// MaxKeys bounds the keys tracked in a window (default 10,000);
	// records of keys beyond it are counted together under "(other)".
	MaxKeys int
	// TopKeys is how many keys the summary names (default 5).
	TopKeys int
	// Level is the summary line's level (default slog.LevelWarn).
	Level slog.Level
	// Now is the time of records that carry none (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.PerKey, 20)
	def(&c.Total, 300)
	def(&c.NewKeys, 300)
	def(&c.MaxKeys, 10_000)
	def(&c.TopKeys, 5)
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Level == 0 {
		c.Level = slog.LevelWarn
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Stats count what a Handler let through and dropped since New.
type Stats struct {
	Passed, Suppressed uint64
	// Summaries counts the summary lines written.
	Summaries uint64
}

// Handler is the wrapper. Handlers derived with WithAttrs and WithGroup
// share their parent's limits.
type Handler struct {
	inner slog.Handler
	st    *state
	key   string // a key fixed by WithAttrs
	group bool   // a group is open: the record's attributes are not top-level
}

// state is what a Handler and the ones derived from it share.
type state struct {
	cfg Config

	mu      sync.Mutex
	start   time.Time // of the window; zero before the first record
	counts  map[string]int
	dropped map[string]int
	budgets map[string]*budget // by attribute name ("" for none)
	drops   int

	passed, suppressed, summaries atomic.Uint64
}

// budget is what one attribute's keys spent of Total and NewKeys this
// window.
type budget struct{ total, newKeys int }

// overflow is the key of records beyond MaxKeys.
const overflow = "(other)"

// New wraps inner.
func New(inner slog.Handler, cfg Config) *Handler {
	cfg = cfg.withDefaults()
	st := &state{cfg: cfg, counts: map[string]int{}, dropped: map[string]int{}, budgets: map[string]*budget{"": {}}}
	for _, k := range cfg.Keys {
		st.budgets[k] = &budget{}
	}
	return &Handler{inner: inner, st: st}
}

// Enabled is the wrapped handler's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle writes r if its key and the total are within their limits, and
// first the summary of a window that has ended.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = h.st.cfg.Now()
	}
	summary, pass := h.st.admit(h.keyOf(r), now)
	if summary != nil {
		h.inner.Handle(ctx, *summary)
	}
	if !pass {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs derives a Handler with attrs, sharing the limits.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if c.key == "" && !c.group {
		c.key = h.st.find(attrs)
	}
	return &c
}

// WithGroup derives a Handler with a group, sharing the limits.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.group = c.group || name != ""
	return &c
}

// Flush writes the summary of the window now has ended, if it had drops
// and no record has written it yet.
func (h *Handler) Flush(now time.Time) {
	if summary := h.st.roll(now); summary != nil {
		h.inner.Handle(context.Background(), *summary)
	}
}

// Stats returns the counters.
func (h *Handler) Stats() Stats {
	return Stats{Passed: h.st.passed.Load(), Suppressed: h.st.suppressed.Load(), Summaries: h.st.summaries.Load()}
}

func (h *Handler) keyOf(r slog.Record) string {
	if h.key != "" || h.group {
		return h.key
	}
	key := ""
	r.Attrs(func(a slog.Attr) bool {
		key = h.st.find([]slog.Attr{a})
		return key == ""
	})
	return key
}

// find returns the key the first of cfg.Keys among attrs makes, "" if
// none is there.
func (s *state) find(attrs []slog.Attr) string {
	for _, name := range s.cfg.Keys {
		for _, a := range attrs {
			if a.Key == name {
				return name + "=" + a.Value.String()
			}
		}
	}
	return ""
}

// admit counts a record of key at now. It returns the summary of a
// window that ended (nil if none, or if it had no drops) and whether the
// record passes.
func (s *state) admit(key string, now time.Time) (summary *slog.Record, pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	summary = s.rollLocked(now)
	b := s.budgets[attrName(key)]
	n, seen := s.counts[key]
	if !seen && len(s.counts) >= s.cfg.MaxKeys {
		key = overflow
		n, seen = s.counts[key]
	}
	switch {
	case n >= s.cfg.PerKey:
	case b.total < s.cfg.Total:
		b.total++
		pass = true
	case !seen && b.newKeys < s.cfg.NewKeys:
		b.newKeys++
		pass = true
	}
	if pass {
		s.counts[key] = n + 1
		s.passed.Add(1)
		return summary, true
	}
	if !seen {
		s.counts[key] = n // known this window, so its next record is not "new"
	}
	s.dropped[key]++
	s.drops++
	s.suppressed.Add(1)
	return summary, false
}

// attrName is the attribute a key was made from ("addr" of
// "addr=192.0.2.1"; "" for records without one).
func attrName(key string) string {
	name, _, _ := strings.Cut(key, "=")
	return name
}

func (s *state) roll(now time.Time) *slog.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rollLocked(now)
}

// rollLocked starts a new window if now is past the current one, and
// returns the ended window's summary if it dropped records.
func (s *state) rollLocked(now time.Time) *slog.Record {
	if !s.start.IsZero() && now.Sub(s.start) < s.cfg.Interval {
		return nil
	}
	var summary *slog.Record
	if s.drops > 0 {
		summary = s.summary(now)
		s.summaries.Add(1)
	}
	clear(s.counts)
	clear(s.dropped)
	for _, b := range s.budgets {
		*b = budget{}
	}
	s.drops = 0
	if s.start.IsZero() || now.Sub(s.start) >= 2*s.cfg.Interval {
		s.start = now
	} else {
		s.start = s.start.Add(s.cfg.Interval)
	}
	return summary
}

// summary describes the ending window: how many records were dropped,
// from how many keys, the keys that dropped most.
func (s *state) summary(now time.Time) *slog.Record {
	type kn struct {
		key string
		n   int
	}
	top := make([]kn, 0, len(s.dropped))
	for k, n := range s.dropped {
		top = append(top, kn{k, n})
	}
	slices.SortFunc(top, func(a, b kn) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.key, b.key)) })
	var names strings.Builder
	for i, t := range top[:min(len(top), s.cfg.TopKeys)] {
		if i > 0 {
			names.WriteByte(' ')
		}
		if t.key == "" {
			t.key = "(none)"
		}
		fmt.Fprintf(&names, "%s:%d", t.key, t.n)
	}
	r := slog.NewRecord(now, s.cfg.Level, fmt.Sprintf("loglimit: %d similar records suppressed", s.drops), 0)
	r.AddAttrs(slog.Int("suppressed", s.drops), slog.Int("keys", len(s.dropped)), slog.String("top", names.String()),
		slog.Time("since", s.start), slog.Duration("interval", s.cfg.Interval))
	return &r
}
