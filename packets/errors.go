package packets

import (
	"errors"
	"fmt"

	"github.com/mqttguard/mqttguard/reason"
)

// Error is a packet that breaks the specification or a Limit. Code is
// the MQTT 5.0 reason code to disconnect with (0x81 malformed, 0x82
// protocol error, 0x95 packet too large, …); Rule is the conformance
// statement the packet breaks, in MQTT 5.0 numbering where one exists.
type Error struct {
	Code   ReasonCode
	Rule   string // e.g. "[MQTT-3.3.1-4]"; "" for a Limit of this package
	Type   Type   // the packet type, when known
	Offset int    // byte offset in the packet, -1 when not meaningful
	Msg    string
}

func (e *Error) Error() string {
	s := "mqtt: "
	if e.Type != 0 {
		s += e.Type.String() + ": "
	}
	s += e.Msg
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at byte %d", e.Offset)
	}
	if e.Rule != "" {
		s += " " + e.Rule
	}
	return s + " (" + e.Code.String() + ")"
}

// Is lets errors.Is match an Error by its code: errors.Is(err,
// ErrMalformed), errors.Is(err, ErrTooLarge).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Rule == "" && t.Msg == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrMalformed     = &Error{Code: reason.MalformedPacket}
	ErrProtocol      = &Error{Code: reason.ProtocolError}
	ErrTooLarge      = &Error{Code: reason.PacketTooLarge}
	ErrTopicAlias    = &Error{Code: reason.TopicAliasInvalid}
	ErrPayloadFormat = &Error{Code: reason.PayloadFormatInvalid}
	ErrVersion       = &Error{Code: reason.UnsupportedProtocolVersion}
	ErrClientID      = &Error{Code: reason.ClientIdentifierNotValid}
)

// CodeOf returns the reason code of err (MalformedPacket for an error
// that is not an *Error, such as an I/O error in the middle of a packet).
func CodeOf(err error) ReasonCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return reason.MalformedPacket
}

func malformed(t Type, off int, rule, format string, args ...any) *Error {
	return &Error{Code: reason.MalformedPacket, Rule: rule, Type: t, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func protocolErr(t Type, off int, rule, format string, args ...any) *Error {
	return &Error{Code: reason.ProtocolError, Rule: rule, Type: t, Offset: off, Msg: fmt.Sprintf(format, args...)}
}
