package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
)

// sample is the Guard's counters at one moment: the overview's charts
// are the differences between consecutive samples.
type sample struct {
	at       time.Time
	clients  int
	verdicts [4]uint64 // decisions by verdict, all points together
	by       []uint64  // refusals by component
}

// history keeps the last samples in a fixed ring.
type history struct {
	mu      sync.Mutex
	samples []sample
	n, head int // samples kept; the next to write
}

func newHistory(keep int) *history { return &history{samples: make([]sample, keep)} }

func (h *history) add(s sample) {
	h.mu.Lock()
	h.samples[h.head] = s
	h.head = (h.head + 1) % len(h.samples)
	h.n = min(h.n+1, len(h.samples))
	h.mu.Unlock()
}

// all returns the samples, oldest first.
func (h *history) all() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]sample, 0, h.n)
	for i := range h.n {
		out = append(out, h.samples[(h.head-h.n+i+len(h.samples))%len(h.samples)])
	}
	return out
}

func takeSample(g *mqttguard.Guard, clients int, now time.Time) sample {
	st := g.Stats()
	s := sample{at: now, clients: clients, by: make([]uint64, len(mqttguard.Components()))}
	for _, p := range mqttguard.Points() {
		for _, v := range mqttguard.Verdicts() {
			if int(v) < len(s.verdicts) {
				s.verdicts[v] += st.Decisions(p, v)
			}
		}
	}
	for _, c := range mqttguard.Components() {
		s.by[c] = st.By(c)
	}
	return s
}

// series is one chart: a value per sample interval.
type series struct {
	Name   string
	Class  string // the CSS class of its line
	Values []float64
}

// Last is the most recent value (0 without any).
func (s series) Last() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	return s.Values[len(s.Values)-1]
}

// rates turns consecutive samples into per-second rates of what pick
// reads.
func rates(ss []sample, pick func(sample) uint64) []float64 {
	var out []float64
	for i := 1; i < len(ss); i++ {
		dt := ss[i].at.Sub(ss[i-1].at).Seconds()
		a, b := pick(ss[i-1]), pick(ss[i])
		if dt <= 0 || b < a {
			out = append(out, 0)
			continue
		}
		out = append(out, float64(b-a)/dt)
	}
	return out
}

// minPoints is the narrowest a chart's time axis gets, in samples.
const minPoints = 30

// chart draws series as an inline SVG line chart, width by height
// pixels, with the same vertical scale for all: numbers only, so it is
// safe HTML by construction. Empty series draw an empty frame.
func chart(width, height int, ss ...series) template.HTML {
	top := 1.0
	n := minPoints // a young chart starts at the right, not stretched
	for _, s := range ss {
		n = max(n, len(s.Values))
		for _, v := range s.Values {
			top = max(top, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="up to %s">`,
		width, height, width, height, human(top))
	fmt.Fprintf(&b, `<rect class="frame" x="0.5" y="0.5" width="%d" height="%d"/>`, width-1, height-1)
	for _, s := range ss {
		if len(s.Values) < 2 {
			continue
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="`, template.HTMLEscapeString(s.Class))
		for i, v := range s.Values {
			x := float64(width-1) * float64(i+n-len(s.Values)) / float64(max(n-1, 1))
			y := float64(height-2) - (float64(height-4) * v / top)
			fmt.Fprintf(&b, "%.1f,%.1f ", x+0.5, y+1)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// human writes a rate or count briefly: 7, 12.5, 1.2k, 3.4M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 10 || v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
