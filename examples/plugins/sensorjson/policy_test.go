package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSensorReadings(t *testing.T) {
	v, err := parseConfig(nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		topic, payload, why string
	}{
		{"sensors/1/env", `{"temperature": 21.5, "humidity": 40}`, ""},
		{"sensors/1/env", `{"temperature": -40, "humidity": 100, "pressure": 1013.25}`, ""},
		{"sensors/1/env", `{"temperature": 21.5, "firmware": "v2", "note": null}`, ""},
		{"sensors/1/env", `{"temperature": 900}`, "temperature 900 is outside -40…85"},
		{"sensors/1/env", `{"humidity": -3}`, "humidity -3 is outside 0…100"},
		{"sensors/1/env", `{"temperature": "hot"}`, `temperature is "hot", not a number`},
		{"sensors/1/env", `{"temperature": null}`, "temperature is null, not a number"},
		{"sensors/1/env", `{"temperature": 1e400}`, "temperature is 1e400, not a number"},
		{"sensors/1/env", `[21.5]`, "not a JSON object"},
		{"sensors/1/env", `21.5`, "not a JSON object"},
		{"sensors/1/env", `null`, "not a JSON object"},
		{"sensors/1/env", ``, "not a JSON object"},
		{"sensors/1/env", `{"co2": 400, "battery": 101}`, "battery 101 is outside 0…100"},
		{"lights/1/state", `on`, ""}, // not a sensor topic
	} {
		assert.Equal(t, tc.why, v.check(tc.topic, []byte(tc.payload)), tc.payload)
	}
	long := make([]byte, 5000)
	assert.Equal(t, "5000 bytes, the limit is 4096", v.check("sensors/x", long))
}

func TestSensorConfig(t *testing.T) {
	v, err := parseConfig([]byte(`{"topics": ["plant/+/telemetry"], "ranges": {"temperature": [0, 40], "rpm": [0, 6000]}, "max_bytes": 64}`))
	require.NoError(t, err)
	assert.Equal(t, "temperature -1 is outside 0…40", v.check("plant/7/telemetry", []byte(`{"temperature": -1}`)))
	assert.Equal(t, "rpm 7000 is outside 0…6000", v.check("plant/7/telemetry", []byte(`{"rpm": 7000}`)))
	assert.Equal(t, "", v.check("sensors/1/env", []byte(`{"temperature": 900}`)), "only the configured topics")

	for cfg, says := range map[string]string{
		`{"topics": ["a/#/b"]}`:     "topics[0]",
		`{"ranges": {"t": [5, 1]}}`: "the minimum 5 is above the maximum 1",
		`{"range": {}}`:             "unknown field",
		`{"ranges": {"t": "cold"}}`: "configuration",
	} {
		_, err := parseConfig([]byte(cfg))
		assert.ErrorContains(t, err, says, cfg)
	}
}
