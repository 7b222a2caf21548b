package mqttguard

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mqttguard/mqttguard/reason"
)

// Verdict is what a broker does with what a client asked for.
type Verdict uint8

const (
	// Allow: go on (after Decision.Delay, if any).
	Allow Verdict = iota
	// Reject: refuse with Decision.Code — a CONNACK, PUBACK/PUBREC or
	// SUBACK reason code (for MQTT 3.1.1, Code.V3Connack and
	// Code.V3Suback say what that version can).
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
	ByExpiry                       // the client's credentials ended (Client.Expires)
	numComponents
)

var componentNames = [numComponents]string{
	"none", "ban", "flapping", "connection-rate", "password", "certificate", "trust",
	"acl", "topic", "rate-limit", "anomaly", "plugin", "will", "packets", "expiry",
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
	// (reason.Success otherwise).
	Code reason.Code
	// Delay is how long to hold the message before handling it (a
	// Throttled client's publishes).
	Delay time.Duration
	Cause Cause
	// Observed is set in ObserveOnly when the abuse layer would have
	// refused: the Verdict is Allow, and Would and WouldCode are what
	// enforcement would have done (and what the audit log says).
	Observed  bool
	Would     Verdict
	WouldCode reason.Code
}

// Refusal is the reason code to send for a decision that refuses: Code,
// or 0x87 (not authorized) when Code is not a failure code — a broker
// must never answer a refusal with a success code. Every adapter sends
// this, so they agree.
func (d Decision) Refusal() reason.Code {
	if d.Code.IsError() {
		return d.Code
	}
	return reason.NotAuthorized
}

// RefusalIn is Refusal for a packet of the given MQTT control packet type
// (2 CONNACK, 4 PUBACK, 5 PUBREC, 9 SUBACK, 14 DISCONNECT; packets.Type's
// values): a code that packet may not carry — a plugin's deny code, say —
// becomes 0x87 not authorized (for a DISCONNECT, 0x98 administrative
// action), so that what a client receives is valid MQTT 5.
func (d Decision) RefusalIn(packetType byte) reason.Code {
	c := d.Refusal()
	switch {
	case c.ValidIn(packetType):
		return c
	case packetType == 14:
		return reason.AdministrativeAction
	}
	return reason.NotAuthorized
}

// Allowed reports whether the broker should go on.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

func (d Decision) String() string {
	s := d.Verdict.String()
	if d.Code != 0 {
		s += fmt.Sprintf(" 0x%02X", byte(d.Code))
	}
	if d.Delay > 0 {
		s += " after " + d.Delay.String()
	}
	if d.Observed {
		s += fmt.Sprintf(" (observed: would %v 0x%02X)", d.Would, byte(d.WouldCode))
	}
	if d.Cause.Component != ByNone {
		s += " by " + d.Cause.String()
	}
	return s
}
