// Command benchtable turns `go test -bench` output into a markdown table that
// puts mqttguard next to its peers.
//
// Benchmarks name the implementation in their last sub-benchmark element,
// as in BenchmarkMatch/vectors/impl=mqttguard and
// BenchmarkMatch/vectors/impl=mosquitto. Runs repeated with -count are
// reduced to their median (the machine is noisy; the median resists
// outliers better than the mean). For every group the row of our
// implementation comes first, and every peer row shows the ratio
// ours/peer of ns/op: below 1 means we are faster.
//
//	go test -run '^$' -bench . -count 6 ./bench/ | go run ./bench/benchtable
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	ours := flag.String("ours", "mqttguard", "implementation name of our own code")
	flag.Parse()
	results, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	writeTable(w, results, *ours)
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// writeTable prints one markdown table of all groups.
func writeTable(w io.Writer, results []*result, ours string) {
	fmt.Fprintln(w, "| benchmark | implementation | ns/op (median) | B/op | allocs/op | other | ours/peer |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|---:|")
	for _, g := range groupResults(results, ours) {
		var base *result
		if len(g.rows) > 0 && g.rows[0].impl == ours {
			base = g.rows[0]
		}
		for _, r := range g.rows {
			ratio := ""
			if base != nil && r != base {
				if m := r.median("ns/op"); m > 0 {
					ratio = fmt.Sprintf("%.2f", base.median("ns/op")/m)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n",
				g.name, r.impl, formatNum(r.median("ns/op")), formatNum(r.median("B/op")),
				formatNum(r.median("allocs/op")), r.otherMetrics(), ratio)
		}
	}
}
