package acl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// LoadFile reads a policy file: the native JSON format when the name
// ends in ".json", a mosquitto acl_file otherwise. Errors name the file
// and line.
func LoadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ParseError{Source: path, Msg: "cannot read the ACL file: " + err.Error()}
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return parseJSON(bytes.NewReader(data), path)
	}
	return parseMosquitto(bytes.NewReader(data), path)
}

// Holder keeps the current policy for a running broker and swaps it
// atomically on reload, so a check always sees one whole policy. A failed
// reload keeps the policy in force: a broken file never leaves a broker
// with an empty policy (CVE-2017-7652). The zero Holder holds nothing and
// denies every check. A Holder is safe for concurrent use.
type Holder struct {
	p atomic.Pointer[Policy]
}

// NewHolder returns a Holder holding p.
func NewHolder(p *Policy) *Holder {
	h := &Holder{}
	h.p.Store(p)
	return h
}

// Policy returns the policy in force, nil if none was ever stored.
func (h *Holder) Policy() *Policy { return h.p.Load() }

// Swap puts p in force and returns the previous policy, so a broker can
// re-check live subscriptions against the new one (mosquitto's
// CVE-2021-34434: a subscription outlived the right that admitted it).
// A nil p is refused and changes nothing.
func (h *Holder) Swap(p *Policy) (old *Policy) {
	if p == nil {
		return h.p.Load()
	}
	return h.p.Swap(p)
}

// Reload reads path with LoadFile and puts the result in force. On error
// the previous policy stays in force and the error says why.
func (h *Holder) Reload(path string) (old *Policy, err error) {
	p, err := LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl: reload kept the previous policy: %w", err)
	}
	return h.Swap(p), nil
}

// Check is Policy().Check.
func (h *Holder) Check(c Client, a Access, topic string) Decision {
	return h.p.Load().Check(c, a, topic)
}

// CheckAnyMessage is Policy().CheckAnyMessage.
func (h *Holder) CheckAnyMessage(c Client, a Access, topic string) Decision {
	return h.p.Load().CheckAnyMessage(c, a, topic)
}

// CheckMessage is Policy().CheckMessage.
func (h *Holder) CheckMessage(c Client, a Access, topic string, qos byte, retain bool) Decision {
	return h.p.Load().CheckMessage(c, a, topic, qos, retain)
}
