package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/mqttguard/mqttguard/acl"
)

type config struct {
	Topics   []string              `json:"topics"`
	Ranges   map[string][2]float64 `json:"ranges"`
	MaxBytes int                   `json:"max_bytes"`
}

var defaultRanges = map[string][2]float64{
	"temperature": {-40, 85},
	"humidity":    {0, 100},
	"pressure":    {300, 1100},
	"co2":         {0, 40000},
	"battery":     {0, 100},
}

type validator struct {
	topics   []string
	ranges   map[string][2]float64
	maxBytes int
}

func parseConfig(b []byte) (*validator, error) {
	var c config
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("configuration: %v", err)
		}
	}
	v := &validator{topics: c.Topics, ranges: map[string][2]float64{}, maxBytes: c.MaxBytes}
	if len(v.topics) == 0 {
		v.topics = []string{"sensors/#"}
	}
	for i, f := range v.topics {
		if err := acl.ValidFilter(f); err != nil {
			return nil, fmt.Errorf("configuration: topics[%d]: %v", i, err)
		}
	}
	for k, r := range defaultRanges {
		v.ranges[k] = r
	}
	for k, r := range c.Ranges {
		if r[0] > r[1] {
			return nil, fmt.Errorf("configuration: ranges.%s: the minimum %v is above the maximum %v", k, r[0], r[1])
		}
		v.ranges[k] = r
	}
	if v.maxBytes <= 0 {
		v.maxBytes = 4096
	}
	return v, nil
}

// check returns why a payload is refused, or "".
func (v *validator) check(topic string, payload []byte) string {
	watched := false
	for _, f := range v.topics {
		if acl.Match(f, topic) {
			watched = true
			break
		}
	}
	if !watched {
		return ""
	}
	if len(payload) > v.maxBytes {
		return fmt.Sprintf("%d bytes, the limit is %d", len(payload), v.maxBytes)
	}
	var reading map[string]json.RawMessage
	if err := json.Unmarshal(payload, &reading); err != nil || reading == nil {
		return "not a JSON object"
	}
	keys := make([]string, 0, len(reading))
	for k := range reading {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first offence in a stable order
	for _, k := range keys {
		r, ok := v.ranges[k]
		if !ok {
			continue
		}
		raw := bytes.TrimSpace(reading[k])
		x, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || len(raw) == 0 || raw[0] == '"' {
			return fmt.Sprintf("%s is %s, not a number", k, raw)
		}
		if x < r[0] || x > r[1] {
			return fmt.Sprintf("%s %v is outside %v…%v", k, x, r[0], r[1])
		}
	}
	return ""
}
