package packets

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/malformed.json")

// corpusCase is one malformed case as testdata/malformed.json keeps it,
// for tests outside this package (the example broker's end-to-end cases
// replay every one over TCP).
type corpusCase struct {
	Name    string `json:"name"`
	Version byte   `json:"version"` // 3, 4 or 5: the connection's
	Hex     string `json:"hex"`     // the packet
	Code    byte   `json:"code"`    // the reason code a v5 client is told
	Rule    string `json:"rule"`
}

// The corpus file is generated from malformedCases; this test keeps it
// current (go test ./packets -run Corpus -update rewrites it).
func TestMalformedCorpusIsCurrent(t *testing.T) {
	var cases []corpusCase
	for _, c := range malformedCases() {
		cases = append(cases, corpusCase{Name: c.name, Version: byte(c.v), Hex: hex.EncodeToString(c.raw), Code: byte(c.code), Rule: c.rule})
	}
	want, err := json.MarshalIndent(cases, "", "  ")
	require.NoError(t, err)
	want = append(want, '\n')
	const path = "testdata/malformed.json"
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run go test ./packets -run Corpus -update", path)
	}
}
