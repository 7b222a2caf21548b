package guest

import (
	"fmt"

	"github.com/mqttguard/mqttguard/reason"
)

// Verdict is a hook's answer, the i32 the ABI defines: the low byte is
// the action, the next byte the MQTT v5 reason code sent with a deny.
type Verdict int32

// Allow lets the event through.
func Allow() Verdict { return 0 }

// Deny refuses the event with an MQTT v5 reason code (package reason's
// constants: reason.QuotaExceeded, …; 0 means reason.NotAuthorized).
// Codes below 0x80 are not failures; Deny turns them into the default
// rather than send a client a success code on a refusal.
func Deny(code reason.Code) Verdict {
	if !code.IsError() {
		code = 0
	}
	return Verdict(1 | int32(code)<<8)
}

// Drop accepts a PUBLISH and delivers it to no one.
func Drop() Verdict { return 2 }

// Action is 0 (allow), 1 (deny) or 2 (drop).
func (v Verdict) Action() byte { return byte(v) }

// Reason is the reason code of a deny (0x87 when Deny was given 0).
func (v Verdict) Reason() reason.Code {
	if v.Action() == 1 && byte(v>>8) == 0 {
		return reason.NotAuthorized
	}
	return reason.Code(v >> 8)
}

func (v Verdict) String() string {
	switch v.Action() {
	case 0:
		return "allow"
	case 1:
		return fmt.Sprintf("deny(0x%02X)", v.Reason())
	case 2:
		return "drop"
	}
	return fmt.Sprintf("Verdict(0x%x)", int32(v))
}
