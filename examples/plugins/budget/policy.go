package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

type config struct {
	Publishes  int    `json:"publishes"`
	Window     string `json:"window"`
	MaxDevices int    `json:"max_devices"`
}

type window struct {
	start time.Time
	used  int
}

type budgets struct {
	limit      int
	window     time.Duration
	maxDevices int
	devices    map[string]*window
}

func parseConfig(b []byte) (*budgets, error) {
	c := config{Publishes: 60, Window: "1m", MaxDevices: 100000}
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("configuration: %v", err)
		}
	}
	w, err := time.ParseDuration(c.Window)
	switch {
	case err != nil:
		return nil, fmt.Errorf("configuration: window: %v", err)
	case w <= 0:
		return nil, fmt.Errorf("configuration: window %v must be positive", w)
	case c.Publishes <= 0:
		return nil, fmt.Errorf("configuration: publishes %d must be positive", c.Publishes)
	case c.MaxDevices <= 0:
		return nil, fmt.Errorf("configuration: max_devices %d must be positive", c.MaxDevices)
	}
	return &budgets{limit: c.Publishes, window: w, maxDevices: c.MaxDevices, devices: map[string]*window{}}, nil
}

// spend charges one publish to the device at now and reports whether its
// budget allowed it, and whether the device is tracked at all.
func (b *budgets) spend(device string, now time.Time) (allowed, tracked bool) {
	w := b.devices[device]
	if w == nil {
		if len(b.devices) >= b.maxDevices {
			b.sweep(now)
			if len(b.devices) >= b.maxDevices {
				return true, false
			}
		}
		w = &window{start: now}
		b.devices[device] = w
	}
	if now.Sub(w.start) >= b.window || now.Before(w.start) {
		w.start, w.used = now, 0
	}
	w.used++
	return w.used <= b.limit, true
}

// sweep forgets devices whose window has ended.
func (b *budgets) sweep(now time.Time) {
	for d, w := range b.devices {
		if now.Sub(w.start) >= b.window {
			delete(b.devices, d)
		}
	}
}
