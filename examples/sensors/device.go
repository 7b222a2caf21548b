package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Reading is what a sensor publishes on sensors/<kind>/<id>, as JSON.
// Exactly one of Celsius, Motion and Open is set, by kind.
type Reading struct {
	Device  string    `json:"device"`
	Kind    string    `json:"kind"`
	Celsius *float64  `json:"celsius,omitempty"`
	Motion  *bool     `json:"motion,omitempty"`
	Open    *bool     `json:"open,omitempty"`
	At      time.Time `json:"at"`
}

// Value is the reading for a summary line.
func (r Reading) Value() string {
	switch {
	case r.Celsius != nil:
		return fmt.Sprintf("%.1f °C", *r.Celsius)
	case r.Motion != nil && *r.Motion:
		return "motion"
	case r.Motion != nil:
		return "still"
	case r.Open != nil && *r.Open:
		return "OPEN"
	case r.Open != nil:
		return "closed"
	}
	return "?"
}

// parseReading decodes and checks a payload: a reading the aggregator
// cannot trust is counted and dropped, never half-used.
func parseReading(payload []byte) (Reading, error) {
	var r Reading
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("not a reading: %w", err)
	}
	set := 0
	for _, p := range []bool{r.Celsius != nil, r.Motion != nil, r.Open != nil} {
		if p {
			set++
		}
	}
	if r.Device == "" || set != 1 {
		return r, fmt.Errorf("not a reading: want a device and exactly one of celsius, motion, open")
	}
	if r.Celsius != nil && (math.IsNaN(*r.Celsius) || *r.Celsius < -60 || *r.Celsius > 150) {
		return r, fmt.Errorf("temperature %v °C is out of any sensor's range", *r.Celsius)
	}
	return r, nil
}

// Device is a simulated sensor: its next reading each Interval.
type Device struct {
	ID       string
	Kind     string // "temperature", "motion" or "door"
	Interval time.Duration
	// Celsius is where a temperature sensor starts; Heating, how much
	// it rises per reading on top of its drift (a failing cooler).
	Celsius, Heating float64

	n    int
	base float64
	open bool
}

// Topic is where the device publishes.
func (d *Device) Topic() string { return "sensors/" + d.Kind + "/" + d.ID }

// next is the device's next reading. Temperature drifts as a
// mean-reverting random walk around its start (plus Heating); motion is
// seen now and then, and regularly enough that a short demo sees it; a
// door opens from time to time and closes on the next reading.
func (d *Device) next(rng *rand.Rand, now time.Time) Reading {
	d.n++
	r := Reading{Device: d.ID, Kind: d.Kind, At: now.UTC().Truncate(time.Millisecond)}
	switch d.Kind {
	case "temperature":
		if d.n == 1 {
			d.base = d.Celsius
		}
		d.base += d.Heating
		d.Celsius += 0.3*(d.base-d.Celsius) + rng.NormFloat64()*0.15 + d.Heating
		c := math.Round(d.Celsius*10) / 10
		r.Celsius = &c
	case "motion":
		m := d.n%7 == 4 || rng.Float64() < 0.05
		r.Motion = &m
	case "door":
		d.open = !d.open && (d.n == 3 || rng.Float64() < 0.1)
		o := d.open
		r.Open = &o
	}
	return r
}
