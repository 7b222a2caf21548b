package loglimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// sink is a text log in a buffer, safe for concurrent writes.
type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSuffix(s.buf.String(), "\n"), "\n")
}

func (s *sink) count(substr string) int {
	n := 0
	for _, l := range s.lines() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func newLogger(cfg Config) (*slog.Logger, *Handler, *sink) {
	s := &sink{}
	h := New(slog.NewTextHandler(s, nil), cfg)
	return slog.New(h), h, s
}

// event logs one audit-like record at time at.
func event(l *slog.Logger, at time.Time, addr, client string) {
	r := slog.NewRecord(at, slog.LevelWarn, "mqttguard: reject", 0)
	r.AddAttrs(slog.String("client", client), slog.String("addr", addr))
	l.Handler().Handle(context.Background(), r)
}

// One address, 3,000 CONNECTs with random client IDs in a second: 20
// lines pass, the summary of the minute says the rest.
func TestFloodFromOneKey(t *testing.T) {
	l, h, s := newLogger(Config{Keys: []string{"addr"}})
	for i := range 3000 {
		event(l, t0.Add(time.Duration(i)*time.Millisecond/3), "203.0.113.9", fmt.Sprintf("rnd-%d", i))
	}
	assert.Equal(t, 20, s.count("mqttguard: reject"))
	event(l, t0.Add(5*time.Second), "198.51.100.7", "sensor-1") // a real event, same minute
	assert.Contains(t, s.lines()[len(s.lines())-1], "addr=198.51.100.7", "another address still gets through")

	h.Flush(t0.Add(time.Minute))
	last := s.lines()[len(s.lines())-1]
	assert.Contains(t, last, `msg="loglimit: 2980 similar records suppressed"`)
	assert.Contains(t, last, `suppressed=2980 keys=1 top="addr=203.0.113.9:2980"`)
	assert.Equal(t, Stats{Passed: 21, Suppressed: 2980, Summaries: 1}, h.Stats())
}

// A flood from many keys is bounded by Total + NewKeys a window, and
// the summary's count is exactly what was dropped. A key the flood has
// not used still gets its first record out.
func TestFloodFromManyKeys(t *testing.T) {
	const keys, each = 1000, 10
	cfg := Config{Keys: []string{"addr"}, PerKey: 5, Total: 50, NewKeys: 100}
	l, h, s := newLogger(cfg)
	for i := range keys * each {
		event(l, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("10.0.%d.%d", i%keys/250, i%keys%250), "x")
	}
	passed := s.count("mqttguard: reject")
	assert.Equal(t, cfg.Total+cfg.NewKeys, passed, "the bound, reached")
	event(l, t0.Add(20*time.Second), "192.0.2.1", "sensor-1")
	assert.Equal(t, passed, s.count("mqttguard: reject"), "NewKeys is spent too: the flood came from more keys than it")
	h.Flush(t0.Add(time.Minute))
	dropped := keys*each + 1 - passed
	assert.Contains(t, s.lines()[len(s.lines())-1], fmt.Sprintf("suppressed=%d keys=%d ", dropped, keys+1))

	// Fewer keys than NewKeys: a new key's first record passes over Total.
	l, _, s = newLogger(cfg)
	for i := range 50 * each {
		event(l, t0, fmt.Sprintf("10.1.0.%d", i%50), "x")
	}
	event(l, t0, "192.0.2.1", "sensor-1")
	assert.Equal(t, 1, s.count("addr=192.0.2.1"))
}

// Windows roll with the records' own time: each minute has its own
// budget, and the summary of one comes with the first record of the
// next, or with Flush.
func TestWindows(t *testing.T) {
	l, h, s := newLogger(Config{Keys: []string{"addr"}, PerKey: 2})
	for i := range 5 {
		event(l, t0.Add(time.Duration(i)*time.Second), "a", "c")
	}
	assert.Equal(t, 2, s.count("mqttguard: reject"))
	h.Flush(t0.Add(59 * time.Second))
	assert.Zero(t, s.count("suppressed"), "the window has not ended")
	event(l, t0.Add(61*time.Second), "a", "c")
	lines := s.lines()
	require.Len(t, lines, 4)
	assert.Contains(t, lines[2], "loglimit: 3 similar records suppressed")
	assert.Contains(t, lines[2], `top="addr=a:3"`)
	assert.Contains(t, lines[3], "mqttguard: reject", "a new window, a new budget")
	h.Flush(t0.Add(10 * time.Minute))
	assert.Len(t, s.lines(), 4, "no drops, no summary")
	assert.Equal(t, uint64(1), h.Stats().Summaries)
}

// The key may come from Logger.With; a record without any key counts
// under "". Beyond MaxKeys, keys share one.
func TestKeys(t *testing.T) {
	l, h, s := newLogger(Config{Keys: []string{"addr", "client"}, PerKey: 1, MaxKeys: 3})
	l.With("addr", "a").Warn("one")
	l.With("addr", "a").Warn("two")
	l.Warn("no key")
	l.Warn("no key again")
	l.Warn("client only", "client", "c1")
	l.WithGroup("g").Warn("grouped", "addr", "b") // inside a group: not top-level, key ""
	for i := range 5 {
		l.Warn("many", "client", fmt.Sprintf("k%d", i))
	}
	assert.Equal(t, 1, s.count("one"))
	assert.Zero(t, s.count("two"))
	assert.Equal(t, 1, s.count(`msg="no key"`))
	assert.Zero(t, s.count("no key again"))
	assert.Equal(t, 1, s.count("client only"))
	assert.Zero(t, s.count("grouped"))
	assert.Equal(t, 1, s.count(`msg=many`), "keys beyond MaxKeys share (other), which passes one")
	h.Flush(time.Now().Add(time.Hour))
	assert.Contains(t, s.lines()[len(s.lines())-1], `top="(other):4 (none):2 addr=a:1"`)
}

func TestConcurrentUse(t *testing.T) {
	l, h, _ := newLogger(Config{Keys: []string{"addr"}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				event(l, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("a%d", g), "c")
			}
		}()
	}
	wg.Wait()
	st := h.Stats()
	assert.Equal(t, uint64(8*20), st.Passed)
	assert.Equal(t, uint64(8*480), st.Suppressed)
}

// Client IDs invented by the thousand spend the client IDs' budget, not
// the addresses': an event keyed by a new address still appears.
func TestEachAttributeHasItsOwnBudget(t *testing.T) {
	cfg := Config{Keys: []string{"ip", "client"}, PerKey: 5, Total: 50, NewKeys: 50}
	l, _, s := newLogger(cfg)
	for i := range 3000 {
		l.Warn("trust: state change", "client", fmt.Sprintf("rnd-%d", i))
	}
	assert.Equal(t, 100, s.count("client=rnd-"))
	l.Warn("trust: state change", "client", "sensor-7")
	l.Warn("trust: state change", "ip", "198.51.100.7")
	assert.Zero(t, s.count("client=sensor-7"), "the client IDs' budget is spent")
	assert.Equal(t, 1, s.count("ip=198.51.100.7"), "the addresses' is not")
}
