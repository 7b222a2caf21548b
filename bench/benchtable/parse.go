package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// result is every run of one benchmark name.
type result struct {
	name    string // full name without the -GOMAXPROCS suffix
	group   string // name without its last element
	impl    string // last element, "impl=" stripped
	metrics map[string][]float64
	order   []string // metric units in first-seen order
}

func (r *result) median(unit string) float64 {
	v := r.metrics[unit]
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// otherMetrics formats the custom metrics (b.ReportMetric) of a result.
func (r *result) otherMetrics() string {
	var parts []string
	for _, u := range r.order {
		switch u {
		case "ns/op", "B/op", "allocs/op":
			continue
		}
		parts = append(parts, formatNum(r.median(u))+" "+u)
	}
	return strings.Join(parts, ", ")
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output. Lines that are not benchmark results
// (goos:, pkg:, PASS, ok …) are ignored; a result line that does not parse
// is an error naming its line number.
func parse(in io.Reader) ([]*result, error) {
	byName := map[string]*result{}
	var out []*result
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue // a benchmark's own log line, not a result
		}
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("line %d: expected value/unit pairs after the iteration count: %q", line, sc.Text())
		}
		name := procSuffix.ReplaceAllString(fields[0], "")
		r := byName[name]
		if r == nil {
			r = &result{name: name, metrics: map[string][]float64{}}
			r.group, r.impl = splitImpl(name)
			byName[name] = r
			out = append(out, r)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: metric %q: value %q is not a number", line, fields[i+1], fields[i])
			}
			unit := fields[i+1]
			if _, seen := r.metrics[unit]; !seen {
				r.order = append(r.order, unit)
			}
			r.metrics[unit] = append(r.metrics[unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

func splitImpl(name string) (group, impl string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name, ""
	}
	return name[:i], strings.TrimPrefix(name[i+1:], "impl=")
}

type group struct {
	name string
	rows []*result
}

// groupResults keeps the input order of groups and puts our row first.
func groupResults(results []*result, ours string) []group {
	idx := map[string]int{}
	var gs []group
	for _, r := range results {
		i, ok := idx[r.group]
		if !ok {
			i = len(gs)
			idx[r.group] = i
			gs = append(gs, group{name: r.group})
		}
		gs[i].rows = append(gs[i].rows, r)
	}
	for _, g := range gs {
		sort.SliceStable(g.rows, func(a, b int) bool {
			return g.rows[a].impl == ours && g.rows[b].impl != ours
		})
	}
	return gs
}

func formatNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return ""
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
