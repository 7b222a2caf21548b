package reason

// MQTT 3.1.1 CONNACK return codes (MQTT 3.1.1 §3.2.2.3; MQTT 3.1 has the
// same six).
const (
	V3Accepted            byte = 0
	V3BadProtocolVersion  byte = 1
	V3IdentifierRejected  byte = 2
	V3ServerUnavailable   byte = 3
	V3BadUsernamePassword byte = 4
	V3NotAuthorized       byte = 5
)

// V3Connack is the MQTT 3.1.1 CONNACK return code that says what c says
// as closely as that version can: success 0; 0x84 unsupported protocol
// version 1; 0x85 client identifier not valid 2; a failure of the
// server's own (0x88 unavailable, 0x89 busy, 0x8B shutting down, 0x9C
// use another server, 0x9D server moved) 3; bad credentials of any kind
// (0x86 user name or password, 0x8C authentication method, which is how
// a token is refused) 4; every other failure (0x87 not authorized, 0x8A
// banned, 0x9F connection rate exceeded, …) 5.
//
// It is the only such table in mqttguard: the packets encoders, the
// Guard's adapters and the mosquitto plugin all answer a 3.1.1 client
// with it.
func (c Code) V3Connack() byte {
	switch c {
	case Success:
		return V3Accepted
	case UnsupportedProtocolVersion:
		return V3BadProtocolVersion
	case ClientIdentifierNotValid:
		return V3IdentifierRejected
	case ServerUnavailable, ServerBusy, ServerShuttingDown, UseAnotherServer, ServerMoved:
		return V3ServerUnavailable
	case BadUsernameOrPassword, BadAuthenticationMethod:
		return V3BadUsernamePassword
	}
	return V3NotAuthorized
}

// V3Suback is what an MQTT 3.1.1 SUBACK says for c: the granted QoS
// (0–2) or 0x80, the one failure that version knows.
func (c Code) V3Suback() byte {
	if c <= GrantedQoS2 {
		return byte(c)
	}
	return 0x80
}
