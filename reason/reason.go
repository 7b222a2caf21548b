// Package reason is the one vocabulary of MQTT reason codes that every
// part of mqttguard speaks: the Guard's Decision, the packets encoders,
// the trust states, the Wasm guest SDK and the broker adapters.
//
// A Code is an MQTT 5.0 reason code (MQTT 5.0 §2.4). MQTT 3.1.1 and 3.1
// have no reason codes on most packets and only six CONNACK return
// codes; V3Connack is the one table that translates, so a client refused
// over 3.1.1 hears the same thing from the example broker, the proxy and
// the mosquitto plugin.
//
// The package has no dependencies and no state: every leaf may import it
// (it is the protocol's vocabulary, not a leaf's behaviour).
package reason

import (
	"fmt"
	"strconv"
)

// Code is an MQTT 5.0 reason code. Below 0x80 it reports success (or a
// granted QoS); from 0x80 a failure.
type Code uint8

const (
	Success                     Code = 0x00 // also "normal disconnection" and "granted QoS 0"
	GrantedQoS1                 Code = 0x01
	GrantedQoS2                 Code = 0x02
	DisconnectWithWill          Code = 0x04
	NoMatchingSubscribers       Code = 0x10
	NoSubscriptionExisted       Code = 0x11
	ContinueAuthentication      Code = 0x18
	ReAuthenticate              Code = 0x19
	UnspecifiedError            Code = 0x80
	MalformedPacket             Code = 0x81
	ProtocolError               Code = 0x82
	ImplementationSpecificError Code = 0x83
	UnsupportedProtocolVersion  Code = 0x84
	ClientIdentifierNotValid    Code = 0x85
	BadUsernameOrPassword       Code = 0x86
	NotAuthorized               Code = 0x87
	ServerUnavailable           Code = 0x88
	ServerBusy                  Code = 0x89
	Banned                      Code = 0x8A
	ServerShuttingDown          Code = 0x8B
	BadAuthenticationMethod     Code = 0x8C
	KeepAliveTimeout            Code = 0x8D
	SessionTakenOver            Code = 0x8E
	TopicFilterInvalid          Code = 0x8F
	TopicNameInvalid            Code = 0x90
	PacketIdentifierInUse       Code = 0x91
	PacketIdentifierNotFound    Code = 0x92
	ReceiveMaximumExceeded      Code = 0x93
	TopicAliasInvalid           Code = 0x94
	PacketTooLarge              Code = 0x95
	MessageRateTooHigh          Code = 0x96
	QuotaExceeded               Code = 0x97
	AdministrativeAction        Code = 0x98
	PayloadFormatInvalid        Code = 0x99
	RetainNotSupported          Code = 0x9A
	QoSNotSupported             Code = 0x9B
	UseAnotherServer            Code = 0x9C
	ServerMoved                 Code = 0x9D
	SharedSubsNotSupported      Code = 0x9E
	ConnectionRateExceeded      Code = 0x9F
	MaximumConnectTime          Code = 0xA0
	SubscriptionIDsNotSupported Code = 0xA1
	WildcardSubsNotSupported    Code = 0xA2
)

var names = map[Code]string{
	0x00: "success", 0x01: "granted QoS 1", 0x02: "granted QoS 2", 0x04: "disconnect with will message",
	0x10: "no matching subscribers", 0x11: "no subscription existed", 0x18: "continue authentication",
	0x19: "re-authenticate", 0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version", 0x85: "client identifier not valid",
	0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy",
	0x8A: "banned", 0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
	0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
	0x91: "packet identifier in use", 0x92: "packet identifier not found", 0x93: "receive maximum exceeded",
	0x94: "topic alias invalid", 0x95: "packet too large", 0x96: "message rate too high", 0x97: "quota exceeded",
	0x98: "administrative action", 0x99: "payload format invalid", 0x9A: "retain not supported",
	0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
	0x9E: "shared subscriptions not supported", 0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}

// String is the code's name as MQTT 5.0 writes it, lower case ("not
// authorized"), or "reason code 0x.." for a code MQTT does not define.
func (c Code) String() string {
	if s, ok := names[c]; ok {
		return s
	}
	return "reason code 0x" + strconv.FormatUint(uint64(c), 16)
}

// IsError reports whether the code means failure (0x80 and above).
func (c Code) IsError() bool { return c >= 0x80 }

// Format prints the name for %v and %s (%q quoted) and the number for the
// integer verbs, so fmt.Sprintf("0x%02X", c) says "0x87" as it would for
// a byte.
func (c Code) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's':
		fmt.Fprint(f, c.String())
	case 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), uint8(c))
	}
}
