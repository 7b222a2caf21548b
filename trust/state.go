package trust

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mqttguard/mqttguard/reason"
)

// State is how a client is treated, from trusted to shut out. The order
// matters: a higher State is more severe.
type State uint8

const (
	// Normal: no restriction beyond the client's rate multiplier.
	Normal State = iota
	// Throttled: rate limits shrink to the lowest band and every publish
	// waits an extra delay (Config.ThrottleDelay, default 500 ms).
	Throttled
	// WriteDisabled: publishes are refused with reason code 0x87 (not
	// authorized); subscribing and receiving still work.
	WriteDisabled
	// ShadowBanned: publishes are acknowledged exactly as for anyone else
	// (PUBACK 0x00, never 0x10, which would reveal the ban) and never
	// delivered.
	ShadowBanned
	// Disconnected: the client is disconnected with DISCONNECT 0x98
	// (administrative action) and refused with CONNACK 0x8A (banned) until
	// the ban period ends.
	Disconnected

	numStates = iota // not a State: how many there are (States lists them)
)

// States lists the states, least severe first.
func States() []State {
	out := make([]State, numStates)
	for i := range out {
		out[i] = State(i)
	}
	return out
}

func (s State) String() string {
	switch s {
	case Normal:
		return "normal"
	case Throttled:
		return "throttled"
	case WriteDisabled:
		return "write-disabled"
	case ShadowBanned:
		return "shadow-banned"
	case Disconnected:
		return "disconnected"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState reads the names String returns.
func ParseState(s string) (State, error) {
	for st := Normal; st <= Disconnected; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown state %q; want normal, throttled, write-disabled, shadow-banned or disconnected", s)
}

// Mode is how far a Tracker may go, for a staged rollout: observe
// first, then enforce lightly, then fully.
type Mode uint8

const (
	// ObserveOnly records and reports what it would do and never
	// punishes: every Verdict has Enforced false. Violations count at most
	// once per client per Config.ObserveCooldown, so that switching to
	// enforcement later does not ban everyone at once. The zero Mode.
	ObserveOnly Mode = iota
	// EnforceLight uses Normal and Throttled only.
	EnforceLight
	// EnforceFull uses all five states, shadow ban included.
	EnforceFull
)

// String is the mode's name in configuration files, the admin API and
// logs: "observe", "light" or "full".
func (m Mode) String() string {
	switch m {
	case ObserveOnly:
		return "observe"
	case EnforceLight:
		return "light"
	case EnforceFull:
		return "full"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode reads the names String returns ("observe", "light",
// "full"); the constants' names and "enforce-light", "enforce-full" and
// "observe-only" are accepted too.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "observe", "observe-only", "ObserveOnly":
		return ObserveOnly, nil
	case "light", "enforce-light", "EnforceLight":
		return EnforceLight, nil
	case "full", "enforce-full", "EnforceFull":
		return EnforceFull, nil
	}
	return 0, &ConfigError{Field: "mode", Msg: "unknown mode " + strconv.Quote(s) + "; want observe, light or full"}
}

// maxState is the most severe state a mode uses.
func (m Mode) maxState() State {
	if m == EnforceLight {
		return Throttled
	}
	return Disconnected
}

// Kind is what a client did wrong. Each kind has a weight (Config.Weights).
type Kind uint8

const (
	RateLimited  Kind = iota // a rate limit refused a message or connection
	ACLDenied                // a publish or subscribe the ACL refused
	Malformed                // a malformed or oversized packet
	Anomaly                  // an anomaly detector's verdict (push interval)
	AuthFailure              // bad credentials
	Flapping                 // connecting and disconnecting in a loop
	PluginDenied             // a policy plugin refused something
	Other                    // anything else a broker wants to count
	// A new kind goes here, after Other: no kind is ever renumbered.

	numKinds = iota // not a Kind: how many there are (Kinds lists them)
)

// Kinds lists the kinds of violation.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

func (k Kind) String() string {
	switch k {
	case RateLimited:
		return "rate-limited"
	case ACLDenied:
		return "acl-denied"
	case Malformed:
		return "malformed"
	case Anomaly:
		return "anomaly"
	case AuthFailure:
		return "auth-failure"
	case Flapping:
		return "flapping"
	case PluginDenied:
		return "plugin-denied"
	case Other:
		return "other"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Verdict is what a Tracker says about a client at one moment: its
// state and what the broker should do about it.
type Verdict struct {
	State State
	// Enforced is false in ObserveOnly: log what State would mean, act as
	// if Normal.
	Enforced bool
	// Score is the client's trust score, 0–1000.
	Score int
	// Multiplier scales the client's rate limits (see Band). While the
	// client is Throttled it is the lowest band's.
	Multiplier float64
	// Delay is extra time to wait before handling a publish (Throttled).
	Delay time.Duration
}

// PublishAction is what to do with a PUBLISH.
type PublishAction uint8

const (
	PublishAllow      PublishAction = iota // handle normally
	PublishReject                          // refuse with the reason code (0x87)
	PublishAckAndDrop                      // acknowledge with 0x00, deliver to no one
	PublishDisconnect                      // disconnect with the reason code (0x98)
)

func (a PublishAction) String() string {
	switch a {
	case PublishAllow:
		return "allow"
	case PublishReject:
		return "reject"
	case PublishAckAndDrop:
		return "ack-and-drop"
	case PublishDisconnect:
		return "disconnect"
	}
	return "PublishAction(" + strconv.Itoa(int(a)) + ")"
}

// Publish says what a broker does with a PUBLISH from a client with this
// verdict, and the MQTT v5 reason code to send. In ObserveOnly it is
// always PublishAllow.
func (v Verdict) Publish() (PublishAction, reason.Code) {
	if !v.Enforced {
		return PublishAllow, reason.Success
	}
	switch v.State {
	case WriteDisabled:
		return PublishReject, reason.NotAuthorized
	case ShadowBanned:
		return PublishAckAndDrop, reason.Success
	case Disconnected:
		return PublishDisconnect, reason.AdministrativeAction
	}
	return PublishAllow, reason.Success
}

// Connect says whether a CONNECT is admitted and, if not, the CONNACK
// reason code (0x8A banned).
func (v Verdict) Connect() (ok bool, code reason.Code) {
	if v.Enforced && v.State == Disconnected {
		return false, reason.Banned
	}
	return true, reason.Success
}

// Band returns the rate multiplier for a trust score: 0–100 ×0.5,
// 101–300 ×0.8, 301–600 ×1.0, 601–800 ×1.5, 801–1000 ×2.0. Newcomers
// (Config.InitialScore, 300) get ×0.8; trust is earned slowly.
func Band(score int) float64 {
	switch {
	case score <= 100:
		return 0.5
	case score <= 300:
		return 0.8
	case score <= 600:
		return 1.0
	case score <= 800:
		return 1.5
	}
	return 2.0
}
