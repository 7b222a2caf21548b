package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReading(t *testing.T) {
	for _, tc := range []struct {
		payload string
		ok      bool
	}{
		{`{"device":"temp-1","kind":"temperature","celsius":21.5}`, true},
		{`{"device":"door-1","kind":"door","open":true}`, true},
		{`{"device":"motion-1","kind":"motion","motion":false}`, true},
		{`{"device":"temp-1","celsius":21.5,"open":true}`, false}, // two values
		{`{"device":"temp-1"}`, false},                            // none
		{`{"celsius":21.5}`, false},                               // whose?
		{`{"device":"temp-1","celsius":1e9}`, false},              // no such temperature
		{`21.5`, false},
		{``, false},
	} {
		_, err := parseReading([]byte(tc.payload))
		assert.Equal(t, tc.ok, err == nil, "%s: %v", tc.payload, err)
	}
}

// Every reading a device makes is one the aggregator accepts.
func TestDeviceReadingsParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range defaultDevices() {
		for range 100 {
			b, err := json.Marshal(d.next(rng, time.Now()))
			require.NoError(t, err)
			r, err := parseReading(b)
			require.NoError(t, err, "%s", b)
			assert.Equal(t, d.ID, r.Device)
		}
	}
}

func FuzzParseReading(f *testing.F) {
	f.Add([]byte(`{"device":"temp-1","kind":"temperature","celsius":21.5,"at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"device":"door-1","open":true,"motion":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := parseReading(payload)
		if err != nil {
			return
		}
		n := 0
		for _, set := range []bool{r.Celsius != nil, r.Motion != nil, r.Open != nil} {
			if set {
				n++
			}
		}
		if n != 1 || r.Device == "" || r.Value() == "?" {
			t.Fatalf("accepted %q as %+v", payload, r)
		}
	})
}
