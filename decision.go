package mqttguard

import (
	"fmt"
	"strconv"
	"time"
)

// Verdict is what a broker does with what a client asked for.
type Verdict uint8

const (
	// Allow: go on (after Decision.Delay, if any).
	Allow Verdict = iota
	// Reject: refuse with Decision.Code — a CONNACK, PUBACK/PUBREC or
	// SUBACK reason code (for an MQTT 3.1.1 CONNACK see V3Code).
	Reject
	// Drop: acknowledge as if accepted and deliver nothing (a shadow ban,
	// an anomalous reading, a subscriber not allowed to receive the
	// message). The client must not be able to tell.
	Drop
	// Disconnect: close the connection, with DISCONNECT Decision.Code for
	// an MQTT 5 client.
	Disconnect
	numVerdicts
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	case Disconnect:
		return "disconnect"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Component is the part of the Guard that took a decision.
type Component uint8

const (
	ByNone        Component = iota // allowed: nobody objected
	ByBan                          // the ban list
	ByFlapping                     // the flapping detector (connects in a loop)
	ByConnRate                     // connection rate per address or listener
	ByPassword                     // credentials
	ByCertificate                  // the TLS client certificate
	ByTrust                        // the client's trust state
	ByACL                          // the ACL
	ByTopic                        // an invalid topic name or filter
	ByRateLimit                    // message or byte rate limits
	ByAnomaly                      // the push-interval detector
	ByPlugin                       // a Wasm policy plugin
	ByWill                         // the will message
	ByPackets                      // the packet validator (malformed, too large)
	numComponents
)

var componentNames = [numComponents]string{
	"none", "ban", "flapping", "connection-rate", "password", "certificate", "trust",
	"acl", "topic", "rate-limit", "anomaly", "plugin", "will", "packets",
}

func (c Component) String() string {
	if c < numComponents {
		return componentNames[c]
	}
	return "Component(" + strconv.Itoa(int(c)) + ")"
}

// Cause says why, for the audit log: the component, and the rule, limit,
// ban or plugin that decided, with the file and line it came from when
// there is one.
type Cause struct {
	Component Component
	Rule      string // the ACL rule as written, the limit's name, the ban's value, the plugin's name
	File      string
	Line      int
	Detail    string // anything else: the state, the measured gap, the error
}

func (c Cause) String() string {
	s := c.Component.String()
	if c.Rule != "" {
		s += " " + strconv.Quote(c.Rule)
	}
	switch {
	case c.File != "":
		s += fmt.Sprintf(" (%s:%d)", c.File, c.Line)
	case c.Line > 0:
		s += fmt.Sprintf(" (line %d)", c.Line)
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Decision is the Guard's answer at one decision point.
type Decision struct {
	Verdict Verdict
	// Code is the MQTT v5 reason code to send with a Reject or Disconnect
	// (0 otherwise).
	Code byte
	// Delay is how long to hold the message before handling it (a
	// Throttled client's publishes).
	Delay time.Duration
	Cause Cause
	// Observed is set in ObserveOnly when the abuse layer would have
	// refused: the Verdict is Allow, and Would and WouldCode are what
	// enforcement would have done (and what the audit log says).
	Observed  bool
	Would     Verdict
	WouldCode byte
}

// Allowed reports whether the broker should go on.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

func (d Decision) String() string {
	s := d.Verdict.String()
	if d.Code != 0 {
		s += fmt.Sprintf(" 0x%02X", d.Code)
	}
	if d.Delay > 0 {
		s += " after " + d.Delay.String()
	}
	if d.Observed {
		s += fmt.Sprintf(" (observed: would %v 0x%02X)", d.Would, d.WouldCode)
	}
	if d.Cause.Component != ByNone {
		s += " by " + d.Cause.String()
	}
	return s
}

// V3Code is the MQTT 3.1.1 CONNACK return code for a rejected CONNECT
// (the DESIGN table: bad credentials 4, everything else 5 not
// authorized; 3 server unavailable for a broker-side failure).
func V3Code(v5 byte) byte {
	switch v5 {
	case 0x00:
		return 0
	case 0x86: // bad user name or password
		return 4
	case 0x84: // unsupported protocol version
		return 1
	case 0x85: // client identifier not valid
		return 2
	case 0x88, 0x89: // server unavailable, server busy
		return 3
	}
	return 5
}
