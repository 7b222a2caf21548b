package wasmguard

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mqttguard/mqttguard/reason"
)

// Action is what a plugin decides.
type Action uint8

const (
	Allow Action = 0 // go on
	Deny  Action = 1 // refuse, with the verdict's reason code
	Drop  Action = 2 // accept silently, deliver nothing
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Verdict is a plugin's decision. Reason is the MQTT v5 reason code to
// send with a Deny (0x87 not authorized unless the plugin says
// otherwise).
type Verdict struct {
	Action Action
	Reason reason.Code
	// Failed is true when the plugin did not decide (it trapped, ran out
	// of fuel, was quarantined, …) and the failure policy did.
	Failed bool
}

// The i32 a hook returns: low byte the action, next byte the reason code
// (0 means the default, 0x87).
func decodeVerdict(v uint32) (Verdict, bool) {
	a := Action(v & 0xff)
	if a > Drop || v>>16 != 0 {
		return Verdict{}, false
	}
	if a != Deny {
		return Verdict{Action: a}, true // a reason means nothing without a deny
	}
	code := reason.Code(v >> 8)
	switch {
	case code == 0:
		code = reason.NotAuthorized
	case !code.IsError():
		return Verdict{}, false // a deny must carry a failure code
	}
	return Verdict{Action: a, Reason: code}, true
}

// FailurePolicy decides for a plugin that could not.
type FailurePolicy uint8

const (
	// FailClosed denies (the default): a security plugin that fails must
	// not let traffic through.
	FailClosed FailurePolicy = iota
	// FailOpen allows: for plugins whose absence is better than an outage.
	FailOpen
)

func (p FailurePolicy) verdict() Verdict {
	if p == FailOpen {
		return Verdict{Action: Allow, Failed: true}
	}
	return Verdict{Action: Deny, Reason: reason.UnspecifiedError, Failed: true}
}

// Kinds of call failure, for errors.Is.
var (
	ErrTrap        = errors.New("the plugin trapped")
	ErrFuel        = errors.New("the plugin ran out of fuel")
	ErrCallDepth   = errors.New("the plugin nested calls too deeply")
	ErrTimeout     = errors.New("the plugin ran past its timeout")
	ErrMemoryLimit = errors.New("the plugin reached its memory limit")
	ErrBadVerdict  = errors.New("the plugin returned a malformed verdict")
	ErrBadBuffer   = errors.New("the plugin's event buffer lies outside its memory")
	ErrTooLarge    = errors.New("the event is larger than MaxEventBytes")
	ErrQuarantined = errors.New("the plugin is quarantined after repeated failures")
	ErrInstantiate = errors.New("a plugin instance could not be created")
	ErrBusy        = errors.New("the call's context ended before the plugin ran")
	ErrClosed      = errors.New("the plugin is closed")
)

// CallError is a failed call: which plugin, which hook, what kind of
// failure (one of the Err values) and the underlying error.
type CallError struct {
	Plugin string
	Hook   string
	Kind   error
	Err    error
}

// Error is one line: wazero's stack trace, which Err keeps, is left out.
func (e *CallError) Error() string {
	s := "wasmguard: plugin " + e.Plugin + " " + e.Hook + ": " + e.Kind.Error()
	if e.Err != nil && e.Err != e.Kind {
		msg := e.Err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		s += ": " + msg
	}
	return s
}

func (e *CallError) Unwrap() []error { return []error{e.Kind, e.Err} }
