package packets

import (
	"strconv"

	"github.com/mqttguard/mqttguard/reason"
)

// Session enforces the rules that span packets of one connection, for
// the packets a client sends: CONNECT first and only once
// [MQTT-3.1.0-1] [MQTT-3.1.0-2]; never a packet only a server sends
// (a client-sent CONNACK crashed mosquitto, CVE-2021-28166); no
// Subscription Identifier on a client's PUBLISH [MQTT-3.3.4-6]; Topic
// Aliases within the maximum the server advertised, and resolved, so
// every PUBLISH a Session has checked carries its topic name.
//
// A Reader keeps a Session for its connection. Use one directly with
// Parse when packets arrive some other way.
type Session struct {
	version   Version
	connected bool
	// TopicAliasMaximum is the maximum the server advertised in its
	// CONNACK (MQTT 5.0); 0, the default, means clients may not use
	// aliases.
	TopicAliasMaximum uint16
	// MaxAliasBytes bounds the topic names a connection's aliases stand
	// for, together (default 64 KiB): a client that maps every alias to
	// a long topic cannot make the server keep more. Above it: 0x97.
	MaxAliasBytes int
	aliases       [][]byte // grown to the highest alias used, not to the maximum
	aliasBytes    int
}

const defaultMaxAliasBytes = 64 << 10

// Version is the connection's protocol version, 0 before CONNECT.
func (s *Session) Version() Version { return s.version }

// Connected reports whether the CONNECT has been seen.
func (s *Session) Connected() bool { return s.connected }

// Check applies the connection rules to the next packet from the client,
// already decoded, and resolves a PUBLISH's Topic Alias.
func (s *Session) Check(p *Packet) error {
	if !s.connected {
		if p.Type != CONNECT {
			return protocolErr(p.Type, 0, "[MQTT-3.1.0-1]", "the first packet must be CONNECT")
		}
		s.connected, s.version = true, p.Connect.Level
		return nil
	}
	switch p.Type {
	case CONNECT:
		return protocolErr(CONNECT, 0, "[MQTT-3.1.0-2]", "a second CONNECT")
	case CONNACK, SUBACK, UNSUBACK, PINGRESP:
		return protocolErr(p.Type, 0, "§2.1.2", "only a server sends %s", p.Type)
	case PUBLISH:
		return s.checkPublish(p)
	}
	return nil
}

func (s *Session) checkPublish(p *Packet) error {
	if p.Version != V5 {
		return nil
	}
	if p.Props.Has(PropSubscriptionID) {
		return protocolErr(PUBLISH, -1, "[MQTT-3.3.4-6]", "a client's PUBLISH must not carry a Subscription Identifier")
	}
	if !p.Props.Has(PropTopicAlias) {
		return nil
	}
	alias := p.Props.TopicAlias
	if alias > s.TopicAliasMaximum {
		return &Error{Code: reason.TopicAliasInvalid, Rule: "§3.3.2.3.4", Type: PUBLISH, Offset: -1,
			Msg: "Topic Alias " + strconv.Itoa(int(alias)) + " is above the maximum of " + strconv.Itoa(int(s.TopicAliasMaximum))}
	}
	if alias == 0 {
		return protocolErr(PUBLISH, -1, "[MQTT-3.3.2-8]", "Topic Alias 0 is not allowed")
	}
	if len(p.Publish.Topic) > 0 {
		if int(alias) >= len(s.aliases) {
			s.aliases = append(s.aliases, make([][]byte, int(alias)+1-len(s.aliases))...)
		}
		old := s.aliases[alias]
		budget := s.MaxAliasBytes
		if budget <= 0 {
			budget = defaultMaxAliasBytes
		}
		if s.aliasBytes-len(old)+len(p.Publish.Topic) > budget {
			return &Error{Code: reason.QuotaExceeded, Rule: "", Type: PUBLISH, Offset: -1,
				Msg: "the topics of this connection's aliases would exceed " + strconv.Itoa(budget) + " bytes"}
		}
		s.aliasBytes += len(p.Publish.Topic) - len(old)
		s.aliases[alias] = append(old[:0], p.Publish.Topic...)
		return nil
	}
	if int(alias) >= len(s.aliases) || len(s.aliases[alias]) == 0 {
		return protocolErr(PUBLISH, -1, "§3.3.2.3.4", "Topic Alias %d was never set", alias)
	}
	p.Publish.Topic = s.aliases[alias]
	return nil
}
