package packets

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	"github.com/mqttguard/mqttguard/internal/topic"
	"github.com/mqttguard/mqttguard/reason"
)

// Packet is one decoded MQTT control packet. Every byte slice in it is a
// view into Raw; from a Reader they are valid until its next Read, so
// copy what must outlive that.
type Packet struct {
	Type      Type
	Flags     byte // the low four bits of the first byte
	Remaining int  // the remaining length
	Raw       []byte
	Version   Version

	// PacketID is set for PUBLISH with QoS > 0, PUBACK, PUBREC, PUBREL,
	// PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.
	PacketID uint16
	// ReasonCode is set for CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP,
	// DISCONNECT and AUTH (MQTT 3.1.1 CONNACK: the return code).
	ReasonCode ReasonCode
	// Props are the packet's MQTT 5.0 properties.
	Props Properties

	Connect Connect
	Publish Publish
	// Subscriptions are the filters of a SUBSCRIBE or UNSUBSCRIBE.
	Subscriptions []Subscription
	// SessionPresent is CONNACK's flag.
	SessionPresent bool
	// ReasonCodes are a SUBACK's or UNSUBACK's per-filter codes.
	ReasonCodes []byte

	// limits are kept in the packet so that decoding reaches them through
	// the packet, which is where it is anyway, instead of through a
	// pointer the escape analysis would move to the heap.
	limits     Limits
	hadConnect bool // Connect holds fields from an earlier packet
}

// Connect holds a CONNECT's fields.
type Connect struct {
	ProtocolName []byte
	Level        Version
	CleanStart   bool
	KeepAlive    uint16
	ClientID     []byte
	WillFlag     bool
	WillQoS      byte
	WillRetain   bool
	WillProps    Properties
	WillTopic    []byte
	WillPayload  []byte
	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

// Publish holds a PUBLISH's fields. Topic is empty when an MQTT 5.0
// client uses only a Topic Alias (Props.TopicAlias); Session resolves it.
type Publish struct {
	Topic   []byte
	QoS     byte
	Retain  bool
	Dup     bool
	Payload []byte
	// TopicOffset is where the topic's length prefix starts in Raw, so a
	// proxy can rewrite the packet.
	TopicOffset int
}

// Subscription is one filter of a SUBSCRIBE (options set) or UNSUBSCRIBE
// (options zero).
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	// Offset is where the filter's length prefix starts in Raw.
	Offset int
}

// Parse decodes and validates buf, which must hold exactly one packet,
// for a connection of the given version (a CONNECT says its own). Zero
// fields of limits take their defaults. The returned packet's slices are
// views into buf.
func Parse(buf []byte, v Version, limits Limits) (*Packet, error) {
	p := &Packet{limits: limits.withDefaults()}
	if err := p.decode(buf, v); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseInto is Parse into a Packet the caller reuses: after the first
// packets have grown its Subscriptions, parsing allocates nothing.
func ParseInto(p *Packet, buf []byte, v Version, limits Limits) error {
	if !limits.complete {
		limits = limits.withDefaults()
	}
	p.limits = limits
	return p.decode(buf, v)
}

// reset clears what an earlier packet left in p, keeping the
// Subscriptions array. Only the parts that were used are cleared: a
// Packet is large, and a Reader reuses one for every packet.
func (p *Packet) reset() {
	p.PacketID, p.ReasonCode, p.SessionPresent, p.ReasonCodes = 0, 0, false, nil
	p.Subscriptions = p.Subscriptions[:0]
	p.Publish = Publish{}
	p.Props.clear()
	if p.hadConnect {
		cn := &p.Connect
		cn.WillProps.clear()
		cn.ProtocolName, cn.ClientID, cn.WillTopic, cn.WillPayload, cn.Username, cn.Password = nil, nil, nil, nil, nil, nil
		cn.Level, cn.CleanStart, cn.KeepAlive, cn.WillFlag, cn.WillQoS, cn.WillRetain = 0, false, 0, false, 0, false
		cn.UsernameFlag, cn.PasswordFlag = false, false
		p.hadConnect = false
	}
}

// decode fills p from buf (one complete packet) with p.limits.
func (p *Packet) decode(buf []byte, v Version) error {
	p.reset()
	if len(buf) < 2 {
		return malformed(0, 0, "§2.1", "a packet has at least 2 bytes, got %d", len(buf))
	}
	p.Type, p.Flags = Type(buf[0]>>4), buf[0]&0x0f
	rem, n, err := decodeVBI(buf[1:])
	if err != nil {
		err.Type, err.Offset = p.Type, 1
		err.Msg = "remaining length: " + err.Msg
		return err
	}
	if 1+n+rem != len(buf) {
		return malformed(p.Type, 1, "§2.1.4", "remaining length says %d bytes, the packet has %d", rem, len(buf)-1-n)
	}
	p.Remaining, p.Raw, p.Version = rem, buf, v
	if err := p.checkFlags(v); err != nil {
		return err
	}
	c := cursor{b: buf, pos: 1 + n, end: len(buf), t: p.Type, lim: &p.limits}
	switch p.Type {
	case CONNECT:
		return p.decodeConnect(&c)
	case PUBLISH:
		return p.decodePublish(&c)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return p.decodeAck(&c)
	case SUBSCRIBE:
		return p.decodeSubscribe(&c)
	case UNSUBSCRIBE:
		return p.decodeUnsubscribe(&c)
	case PINGREQ, PINGRESP:
		return c.done(p.Type.String())
	case DISCONNECT:
		return p.decodeDisconnect(&c)
	case AUTH:
		return p.decodeAuth(&c)
	case CONNACK:
		return p.decodeConnack(&c)
	case SUBACK, UNSUBACK:
		return p.decodeSubUnsuback(&c)
	}
	return malformed(p.Type, 0, "§2.1.2", "reserved packet type 0")
}

// checkFlags applies the fixed header's reserved flag bits [MQTT-2.1.3-1]
// and the per-type rules of PUBLISH's flags.
func (p *Packet) checkFlags(v Version) error {
	switch p.Type {
	case 0:
		return malformed(p.Type, 0, "§2.1.2", "reserved packet type 0")
	case AUTH:
		if v != V5 {
			return malformed(p.Type, 0, "§2.1.2", "AUTH exists only in MQTT 5.0")
		}
	case PUBLISH:
		qos := p.Flags >> 1 & 3
		if qos == 3 {
			return malformed(p.Type, 0, "[MQTT-3.3.1-4]", "QoS 3 is not allowed")
		}
		if qos == 0 && p.Flags&0x08 != 0 {
			return malformed(p.Type, 0, "[MQTT-3.3.1-2]", "DUP set on a QoS 0 message")
		}
		return nil
	case CONNECT:
		return nil // they depend on the protocol level: decodeConnect
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if p.Flags != 0x02 {
			return malformed(p.Type, 0, "[MQTT-2.1.3-1]", "fixed header flags must be 0010, are %04b", p.Flags)
		}
		return nil
	}
	if p.Flags != 0 {
		return malformed(p.Type, 0, "[MQTT-2.1.3-1]", "fixed header flags must be 0000, are %04b", p.Flags)
	}
	return nil
}

func (p *Packet) decodeConnect(c *cursor) error {
	p.hadConnect = true
	cn := &p.Connect
	name, err := c.binary("protocol name")
	if err != nil {
		return err
	}
	cn.ProtocolName = name
	level, err := c.byte1("protocol level")
	if err != nil {
		return err
	}
	cn.Level = Version(level)
	switch {
	case string(name) == "MQTT" && (cn.Level == V311 || cn.Level == V5):
	case string(name) == "MQIsdp" && cn.Level == V31:
	case string(name) != "MQTT" && string(name) != "MQIsdp":
		return &Error{Code: reason.UnsupportedProtocolVersion, Rule: "[MQTT-3.1.2-1]", Type: CONNECT, Offset: 2, Msg: "protocol name is not \"MQTT\""}
	default:
		return &Error{Code: reason.UnsupportedProtocolVersion, Rule: "[MQTT-3.1.2-2]", Type: CONNECT, Offset: c.pos - 1,
			Msg: "protocol " + string(name) + " level " + itoa(int(level)) + " is not 3.1 (MQIsdp 3), 3.1.1 (MQTT 4) or 5.0 (MQTT 5)"}
	}
	p.Version = cn.Level
	flagsAt := c.pos
	flags, err := c.byte1("connect flags")
	if err != nil {
		return err
	}
	// MQTT 3.1 reserved neither bit (clients of the time set them, and
	// mosquitto accepts them): ignored there, refused from 3.1.1 on.
	if cn.Level != V31 {
		if p.Flags != 0 {
			return malformed(CONNECT, 0, "[MQTT-2.1.3-1]", "fixed header flags must be 0000, are %04b", p.Flags)
		}
		if flags&0x01 != 0 {
			return malformed(CONNECT, flagsAt, "[MQTT-3.1.2-3]", "reserved connect flag is set")
		}
	}
	cn.CleanStart = flags&0x02 != 0
	cn.WillFlag = flags&0x04 != 0
	cn.WillQoS = flags >> 3 & 3
	cn.WillRetain = flags&0x20 != 0
	cn.PasswordFlag = flags&0x40 != 0
	cn.UsernameFlag = flags&0x80 != 0
	switch {
	case cn.WillFlag && cn.WillQoS == 3:
		return malformed(CONNECT, flagsAt, "[MQTT-3.1.2-12]", "will QoS 3 is not allowed")
	case !cn.WillFlag && cn.WillQoS != 0:
		return malformed(CONNECT, flagsAt, "[MQTT-3.1.2-11]", "will QoS set without the will flag")
	case !cn.WillFlag && cn.WillRetain:
		return malformed(CONNECT, flagsAt, "[MQTT-3.1.2-13]", "will retain set without the will flag")
	case cn.PasswordFlag && !cn.UsernameFlag && cn.Level != V5:
		return malformed(CONNECT, flagsAt, "[MQTT-3.1.2-22]", "password flag set without the username flag (MQTT 3.1.1)")
	}
	if cn.KeepAlive, err = c.u16("keep alive"); err != nil {
		return err
	}
	if cn.Level == V5 {
		if err := c.properties(&p.Props, CONNECT); err != nil {
			return err
		}
		if p.Props.Has(PropAuthData) && !p.Props.Has(PropAuthMethod) {
			return protocolErr(CONNECT, -1, "§3.1.2.11.10", "Authentication Data without an Authentication Method")
		}
	}
	idAt := c.pos
	if cn.ClientID, err = c.str("client identifier"); err != nil {
		return err
	}
	switch {
	case len(cn.ClientID) > c.lim.MaxClientIDLength:
		return &Error{Code: reason.ClientIdentifierNotValid, Type: CONNECT, Offset: idAt,
			Msg: "client identifier of " + itoa(len(cn.ClientID)) + " bytes is longer than the limit of " + itoa(c.lim.MaxClientIDLength)}
	case len(cn.ClientID) == 0 && cn.Level == V31:
		return &Error{Code: reason.ClientIdentifierNotValid, Rule: "MQTT 3.1 §3.1", Type: CONNECT, Offset: idAt, Msg: "MQTT 3.1 requires a client identifier"}
	case len(cn.ClientID) == 0 && cn.Level == V311 && !cn.CleanStart:
		return &Error{Code: reason.ClientIdentifierNotValid, Rule: "[MQTT-3.1.3-8]", Type: CONNECT, Offset: idAt,
			Msg: "an empty client identifier needs a clean session (MQTT 3.1.1)"}
	}
	if cn.WillFlag {
		if cn.Level == V5 {
			if err := c.properties(&cn.WillProps, willContext); err != nil {
				return err
			}
		}
		at := c.pos + 2
		if cn.WillTopic, err = c.binary("will topic"); err != nil {
			return err
		}
		if err := c.topicName(cn.WillTopic, at, "will topic"); err != nil {
			return err
		}
		if cn.WillPayload, err = c.binary("will payload"); err != nil {
			return err
		}
		if err := checkMessageProps(c, &cn.WillProps, cn.WillPayload); err != nil {
			return err
		}
	}
	if cn.UsernameFlag {
		if cn.Username, err = c.str("user name"); err != nil {
			return err
		}
	}
	if cn.PasswordFlag {
		if cn.Password, err = c.binary("password"); err != nil {
			return err
		}
	}
	return c.done("CONNECT payload")
}

// checkMessageProps applies the rules PUBLISH and will properties share:
// a valid Response Topic, and a UTF-8 payload when it says it is one.
func checkMessageProps(c *cursor, props *Properties, payload []byte) error {
	if props.Has(PropResponseTopic) {
		if err := c.topicName(props.ResponseTopic, -1, "Response Topic"); err != nil {
			err.(*Error).Rule = "[MQTT-3.3.2-14]"
			return err
		}
	}
	if props.PayloadFormat == 1 && !utf8.Valid(payload) {
		return &Error{Code: reason.PayloadFormatInvalid, Rule: "§3.3.2.3.2", Type: c.t, Offset: -1,
			Msg: "Payload Format Indicator says UTF-8, the payload is not"}
	}
	return nil
}

// topicName applies the topic-name rules (internal/topic's, the same acl
// uses) in one pass over b — UTF-8, no U+0000, no wildcards, control
// characters unless allowed — and this package's length and level
// limits.
func (c *cursor) topicName(b []byte, at int, what string) error {
	if len(b) > c.lim.MaxTopicLength {
		return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: at,
			Msg: what + " of " + itoa(len(b)) + " bytes is longer than the limit of " + itoa(c.lim.MaxTopicLength)}
	}
	levels, err := topic.ScanName(view(b), c.lim.AllowControlChars)
	if err != nil {
		return topicError(c.t, at, what, err)
	}
	if levels > c.lim.MaxTopicLevels {
		return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: at,
			Msg: what + " has " + itoa(levels) + " levels, more than the limit of " + itoa(c.lim.MaxTopicLevels)}
	}
	return nil
}

// topicFilter is topicName for filters.
func (c *cursor) topicFilter(b []byte, at int) error {
	if len(b) > c.lim.MaxTopicLength {
		return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: at,
			Msg: "topic filter of " + itoa(len(b)) + " bytes is longer than the limit of " + itoa(c.lim.MaxTopicLength)}
	}
	levels, err := topic.ScanFilter(view(b), c.lim.AllowControlChars)
	if err != nil {
		return topicError(c.t, at, "topic filter", err)
	}
	if levels > c.lim.MaxTopicLevels {
		return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: at,
			Msg: "topic filter has " + itoa(levels) + " levels, more than the limit of " + itoa(c.lim.MaxTopicLevels)}
	}
	return nil
}

// view reads b as a string without copying, for validation only: the
// topic rules do not keep their argument, and topicError copies what it
// reports.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func topicError(t Type, at int, what string, te *topic.Error) *Error {
	off := at
	if at >= 0 && te.Offset >= 0 {
		off = at + te.Offset
	}
	return &Error{Code: reason.MalformedPacket, Rule: te.Statement, Type: t, Offset: off, Msg: what + ": " + te.Reason}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func (p *Packet) decodePublish(c *cursor) error {
	pub := &p.Publish
	pub.QoS = p.Flags >> 1 & 3
	pub.Dup = p.Flags&0x08 != 0
	pub.Retain = p.Flags&0x01 != 0
	pub.TopicOffset = c.pos
	topicAt := c.pos + 2
	var err error
	// The topic's UTF-8 is checked with the topic rules, in one pass.
	if pub.Topic, err = c.binary("topic name"); err != nil {
		return err
	}
	if pub.QoS > 0 {
		at := c.pos
		if p.PacketID, err = c.u16("packet identifier"); err != nil {
			return err
		}
		if p.PacketID == 0 {
			return malformed(PUBLISH, at, "[MQTT-2.2.1-3]", "packet identifier 0 on a QoS %d message", pub.QoS)
		}
	}
	if p.Version == V5 {
		if err := c.properties(&p.Props, PUBLISH); err != nil {
			return err
		}
	}
	if len(pub.Topic) == 0 {
		if p.Version != V5 {
			return malformed(PUBLISH, topicAt, "[MQTT-4.7.3-1]", "empty topic name")
		}
		if !p.Props.Has(PropTopicAlias) {
			return protocolErr(PUBLISH, topicAt, "§3.3.2.1", "empty topic name without a Topic Alias")
		}
	} else if err := c.topicName(pub.Topic, topicAt, "topic name"); err != nil {
		return err
	}
	pub.Payload = c.b[c.pos:c.end:c.end]
	c.pos = c.end
	return checkMessageProps(c, &p.Props, pub.Payload)
}

// decodeAck reads PUBACK, PUBREC, PUBREL and PUBCOMP.
func (p *Packet) decodeAck(c *cursor) error {
	at := c.pos
	var err error
	if p.PacketID, err = c.u16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return malformed(p.Type, at, "[MQTT-2.2.1-3]", "packet identifier 0")
	}
	if p.Version != V5 {
		return c.done("packet identifier")
	}
	return p.reasonAndProps(c)
}

// reasonAndProps reads an optional reason code and optional properties,
// as MQTT 5.0 acknowledgements, DISCONNECT and AUTH carry them.
func (p *Packet) reasonAndProps(c *cursor) error {
	if c.left() == 0 {
		p.ReasonCode = reason.Success
		return nil
	}
	at := c.pos
	rc, _ := c.byte1("reason code")
	p.ReasonCode = ReasonCode(rc)
	if !validFor(p.ReasonCode, p.Type) {
		return malformed(p.Type, at, "§2.4", "reason code 0x%02x is not valid in %s", rc, p.Type)
	}
	if c.left() == 0 {
		return nil
	}
	if err := c.properties(&p.Props, p.Type); err != nil {
		return err
	}
	return c.done("properties")
}

func (p *Packet) decodeSubscribe(c *cursor) error {
	return p.decodeFilters(c, SUBSCRIBE, "[MQTT-3.8.3-2]")
}

func (p *Packet) decodeUnsubscribe(c *cursor) error {
	return p.decodeFilters(c, UNSUBSCRIBE, "[MQTT-3.10.3-2]")
}

// decodeFilters reads what SUBSCRIBE and UNSUBSCRIBE share — a packet
// identifier, the properties (MQTT 5) and a list of at least one topic
// filter (the rule noFilter says so) — and, for SUBSCRIBE, each filter's
// options byte.
func (p *Packet) decodeFilters(c *cursor, t Type, noFilter string) error {
	at := c.pos
	var err error
	if p.PacketID, err = c.u16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return malformed(t, at, "[MQTT-2.2.1-3]", "packet identifier 0")
	}
	if p.Version == V5 {
		if err := c.properties(&p.Props, t); err != nil {
			return err
		}
	}
	if c.left() == 0 {
		return protocolErr(t, c.pos, noFilter, "no topic filter")
	}
	for c.left() > 0 {
		if len(p.Subscriptions) == c.lim.MaxSubscriptions {
			return &Error{Code: reason.MalformedPacket, Type: t, Offset: c.pos, Msg: "more than the limit of " + itoa(c.lim.MaxSubscriptions) + " filters"}
		}
		s := Subscription{Offset: c.pos}
		filterAt := c.pos + 2
		if s.Filter, err = c.binary("topic filter"); err != nil {
			return err
		}
		if len(s.Filter) == 0 {
			return malformed(t, filterAt, "[MQTT-4.7.3-1]", "empty topic filter")
		}
		if err := c.topicFilter(s.Filter, filterAt); err != nil {
			return err
		}
		if t == SUBSCRIBE {
			if err := p.subscriptionOptions(c, &s); err != nil {
				return err
			}
		}
		p.Subscriptions = append(p.Subscriptions, s)
	}
	return nil
}

// subscriptionOptions reads the options byte after a SUBSCRIBE's filter.
func (p *Packet) subscriptionOptions(c *cursor, s *Subscription) error {
	optAt := c.pos
	opts, err := c.byte1("subscription options")
	if err != nil {
		return err
	}
	s.QoS = opts & 3
	if s.QoS == 3 {
		return malformed(SUBSCRIBE, optAt, "[MQTT-3.8.3-5]", "requested QoS 3")
	}
	if p.Version != V5 {
		if opts&0xfc != 0 {
			return malformed(SUBSCRIBE, optAt, "[MQTT-3.8.3-4]", "reserved subscription option bits are set (MQTT 3.1.1)")
		}
		return nil
	}
	if opts&0xc0 != 0 {
		return malformed(SUBSCRIBE, optAt, "[MQTT-3.8.3-5]", "reserved subscription option bits are set")
	}
	s.NoLocal = opts&0x04 != 0
	s.RetainAsPublished = opts&0x08 != 0
	s.RetainHandling = opts >> 4 & 3
	if s.RetainHandling == 3 {
		return malformed(SUBSCRIBE, optAt, "§3.8.3.1", "retain handling 3 is not allowed")
	}
	if s.NoLocal && bytes.HasPrefix(s.Filter, sharePrefix) {
		return protocolErr(SUBSCRIBE, optAt, "[MQTT-3.8.3-4]", "No Local on a shared subscription")
	}
	return nil
}

var sharePrefix = []byte(topic.SharePrefix)

func (p *Packet) decodeDisconnect(c *cursor) error {
	if p.Version != V5 {
		return c.done("DISCONNECT (MQTT 3.1.1 has no variable header)")
	}
	return p.reasonAndProps(c)
}

func (p *Packet) decodeAuth(c *cursor) error {
	return p.reasonAndProps(c)
}

func (p *Packet) decodeConnack(c *cursor) error {
	at := c.pos
	flags, err := c.byte1("acknowledge flags")
	if err != nil {
		return err
	}
	if flags&0xfe != 0 {
		return malformed(CONNACK, at, "[MQTT-3.2.2-1]", "reserved acknowledge flags are set")
	}
	p.SessionPresent = flags&1 != 0
	rcAt := c.pos
	rc, err := c.byte1("return code")
	if err != nil {
		return err
	}
	p.ReasonCode = ReasonCode(rc)
	if p.Version != V5 {
		if rc > 5 {
			return malformed(CONNACK, rcAt, "§3.2.2.3", "return code %d is not 0–5", rc)
		}
		return c.done("return code")
	}
	if !validFor(p.ReasonCode, CONNACK) {
		return malformed(CONNACK, rcAt, "§2.4", "reason code 0x%02x is not valid in CONNACK", rc)
	}
	if err := c.properties(&p.Props, CONNACK); err != nil {
		return err
	}
	return c.done("properties")
}

func (p *Packet) decodeSubUnsuback(c *cursor) error {
	at := c.pos
	var err error
	if p.PacketID, err = c.u16("packet identifier"); err != nil {
		return err
	}
	if p.PacketID == 0 {
		return malformed(p.Type, at, "[MQTT-2.2.1-3]", "packet identifier 0")
	}
	if p.Version == V5 {
		if err := c.properties(&p.Props, p.Type); err != nil {
			return err
		}
	} else if p.Type == UNSUBACK {
		return c.done("packet identifier")
	}
	p.ReasonCodes = c.b[c.pos:c.end:c.end]
	if len(p.ReasonCodes) == 0 {
		return protocolErr(p.Type, c.pos, "§3.9.3", "no reason code")
	}
	for i, rc := range p.ReasonCodes {
		ok := validFor(ReasonCode(rc), p.Type)
		if p.Version != V5 {
			ok = rc <= 2 || rc == 0x80
		}
		if !ok {
			return malformed(p.Type, c.pos+i, "§2.4", "reason code 0x%02x is not valid in %s", rc, p.Type)
		}
	}
	c.pos = c.end
	return nil
}
