package main

import (
	"encoding/json"
	"fmt"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/wasmguard/guest"
)

type config struct {
	Deny   []string `json:"deny"`
	Reason *int     `json:"reason"`
}

type denyList struct {
	filters []string
	reason  reason.Code
}

func parseConfig(b []byte) (*denyList, error) {
	var c config
	if len(b) > 0 {
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("configuration: %v", err)
		}
	}
	d := &denyList{reason: reason.NotAuthorized}
	if c.Reason != nil {
		if *c.Reason < 0x80 || *c.Reason > 0xFF {
			return nil, fmt.Errorf("configuration: reason %d is not an MQTT v5 failure code (0x80–0xFF)", *c.Reason)
		}
		d.reason = reason.Code(*c.Reason)
	}
	for i, f := range c.Deny {
		if err := acl.ValidFilter(f); err != nil {
			return nil, fmt.Errorf("configuration: deny[%d]: %v", i, err)
		}
		d.filters = append(d.filters, f)
	}
	return d, nil
}

func (d *denyList) publish(topic string) guest.Verdict {
	for _, f := range d.filters {
		if acl.Match(f, topic) {
			return guest.Deny(d.reason)
		}
	}
	return guest.Allow()
}

func (d *denyList) subscribe(filter string) guest.Verdict {
	for _, f := range d.filters {
		if acl.Intersects(f, filter) {
			return guest.Deny(d.reason)
		}
	}
	return guest.Allow()
}
