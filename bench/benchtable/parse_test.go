package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/mqttguard/mqttguard/bench
BenchmarkMatch/vectors/impl=mqttguard-2   	 1000000	       10.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatch/vectors/impl=mosquitto-2   	 1000000	       20.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatch/vectors/impl=mqttguard-2   	 1000000	       12.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatch/vectors/impl=mosquitto-2   	 1000000	       30.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatch/vectors/impl=mqttguard-2   	 1000000	       11.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatch/vectors/impl=mosquitto-2   	 1000000	       22.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkHeap/impl=mqttguard-2   	 1	       5.0 ns/op	  70.5 B/key
BenchmarkHeap/impl=mqttguard-2   	 some log line from the benchmark
PASS
ok  	github.com/mqttguard/mqttguard/bench	1.0s
`

func TestParseMediansAndRatio(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, rs, 3)
	assert.Equal(t, "BenchmarkMatch/vectors", rs[0].group)
	assert.Equal(t, "mqttguard", rs[0].impl)
	assert.Equal(t, 11.0, rs[0].median("ns/op"))
	assert.Equal(t, 22.0, rs[1].median("ns/op"))
	assert.Equal(t, "70.5 B/key", rs[2].otherMetrics())

	var buf bytes.Buffer
	writeTable(&buf, rs, "mqttguard")
	out := buf.String()
	assert.Contains(t, out, "| BenchmarkMatch/vectors | mosquitto | 22 | 0 | 0 |  | 0.50 |")
	assert.Contains(t, out, "| BenchmarkMatch/vectors | mqttguard | 11 | 0 | 0 |  |  |")
}

func TestParseOursFirstEvenWhenListedLater(t *testing.T) {
	in := "BenchmarkX/impl=peer-2 10 4 ns/op\nBenchmarkX/impl=mqttguard-2 10 2 ns/op\n"
	rs, err := parse(strings.NewReader(in))
	require.NoError(t, err)
	var buf bytes.Buffer
	writeTable(&buf, rs, "mqttguard")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 4)
	assert.Contains(t, lines[2], "| mqttguard |")
	assert.Contains(t, lines[3], "| 0.50 |")
}

func TestParseBadValueNamesLine(t *testing.T) {
	_, err := parse(strings.NewReader("pkg: x\nBenchmarkX-2 10 abc ns/op\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("BenchmarkX-2 1 1 ns/op extra")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := parse(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		writeTable(&buf, rs, "mqttguard")
	})
}
