package packets

import (
	"math/bits"
	"strconv"

	"github.com/mqttguard/mqttguard/reason"
)

// PropertyID identifies an MQTT 5.0 property (MQTT 5.0 §2.2.2.2).
type PropertyID uint8

const (
	PropPayloadFormat        PropertyID = 0x01
	PropMessageExpiry        PropertyID = 0x02
	PropContentType          PropertyID = 0x03
	PropResponseTopic        PropertyID = 0x08
	PropCorrelationData      PropertyID = 0x09
	PropSubscriptionID       PropertyID = 0x0B
	PropSessionExpiry        PropertyID = 0x11
	PropAssignedClientID     PropertyID = 0x12
	PropServerKeepAlive      PropertyID = 0x13
	PropAuthMethod           PropertyID = 0x15
	PropAuthData             PropertyID = 0x16
	PropRequestProblemInfo   PropertyID = 0x17
	PropWillDelay            PropertyID = 0x18
	PropRequestResponseInfo  PropertyID = 0x19
	PropResponseInfo         PropertyID = 0x1A
	PropServerReference      PropertyID = 0x1C
	PropReasonString         PropertyID = 0x1F
	PropReceiveMaximum       PropertyID = 0x21
	PropTopicAliasMaximum    PropertyID = 0x22
	PropTopicAlias           PropertyID = 0x23
	PropMaximumQoS           PropertyID = 0x24
	PropRetainAvailable      PropertyID = 0x25
	PropUserProperty         PropertyID = 0x26
	PropMaximumPacketSize    PropertyID = 0x27
	PropWildcardSubAvailable PropertyID = 0x28
	PropSubIDAvailable       PropertyID = 0x29
	PropSharedSubAvailable   PropertyID = 0x2A
	maxPropertyID                       = 0x2A
)

// willContext stands for the Will Properties of a CONNECT in the table of
// where properties may appear.
const willContext Type = 0

type propKind uint8

const (
	kindByte propKind = iota + 1
	kindU16
	kindU32
	kindVBI
	kindString
	kindBinary
	kindPair
)

type propSpec struct {
	kind propKind
	in   uint32 // bit t set: may appear in packets of type t (bit 0: will properties)
	flag bool   // a byte that must be 0 or 1
}

func in(ts ...Type) uint32 {
	var m uint32
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

var acksAndMore = in(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)

var propSpecs = [maxPropertyID + 1]propSpec{
	PropPayloadFormat:        {kindByte, in(PUBLISH, willContext), true},
	PropMessageExpiry:        {kindU32, in(PUBLISH, willContext), false},
	PropContentType:          {kindString, in(PUBLISH, willContext), false},
	PropResponseTopic:        {kindString, in(PUBLISH, willContext), false},
	PropCorrelationData:      {kindBinary, in(PUBLISH, willContext), false},
	PropSubscriptionID:       {kindVBI, in(PUBLISH, SUBSCRIBE), false},
	PropSessionExpiry:        {kindU32, in(CONNECT, CONNACK, DISCONNECT), false},
	PropAssignedClientID:     {kindString, in(CONNACK), false},
	PropServerKeepAlive:      {kindU16, in(CONNACK), false},
	PropAuthMethod:           {kindString, in(CONNECT, CONNACK, AUTH), false},
	PropAuthData:             {kindBinary, in(CONNECT, CONNACK, AUTH), false},
	PropRequestProblemInfo:   {kindByte, in(CONNECT), true},
	PropWillDelay:            {kindU32, in(willContext), false},
	PropRequestResponseInfo:  {kindByte, in(CONNECT), true},
	PropResponseInfo:         {kindString, in(CONNACK), false},
	PropServerReference:      {kindString, in(CONNACK, DISCONNECT), false},
	PropReasonString:         {kindString, acksAndMore, false},
	PropReceiveMaximum:       {kindU16, in(CONNECT, CONNACK), false},
	PropTopicAliasMaximum:    {kindU16, in(CONNECT, CONNACK), false},
	PropTopicAlias:           {kindU16, in(PUBLISH), false},
	PropMaximumQoS:           {kindByte, in(CONNACK), true},
	PropRetainAvailable:      {kindByte, in(CONNACK), true},
	PropUserProperty:         {kindPair, in(CONNECT, CONNACK, PUBLISH, willContext, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, DISCONNECT, AUTH), false},
	PropMaximumPacketSize:    {kindU32, in(CONNECT, CONNACK), false},
	PropWildcardSubAvailable: {kindByte, in(CONNACK), true},
	PropSubIDAvailable:       {kindByte, in(CONNACK), true},
	PropSharedSubAvailable:   {kindByte, in(CONNACK), true},
}

// Properties are the decoded MQTT 5.0 properties of a packet or of a
// CONNECT's will. Byte slices are views into the packet.
type Properties struct {
	// Raw is the property section without its length prefix.
	Raw     []byte
	present uint64

	PayloadFormat       byte
	MessageExpiry       uint32
	ContentType         []byte
	ResponseTopic       []byte
	CorrelationData     []byte
	SubscriptionID      int // the first one
	SubscriptionIDs     int // how many (a server may send several in a PUBLISH)
	SessionExpiry       uint32
	AssignedClientID    []byte
	ServerKeepAlive     uint16
	AuthMethod          []byte
	AuthData            []byte
	RequestProblemInfo  byte
	WillDelay           uint32
	RequestResponseInfo byte
	ResponseInfo        []byte
	ServerReference     []byte
	ReasonString        []byte
	ReceiveMaximum      uint16
	TopicAliasMaximum   uint16
	TopicAlias          uint16
	MaximumQoS          byte
	RetainAvailable     byte
	MaximumPacketSize   uint32
	WildcardSubAvail    byte
	SubIDAvail          byte
	SharedSubAvail      byte
	UserProperties      int // how many; see EachUserProperty
}

// Has reports whether the property was present.
func (p *Properties) Has(id PropertyID) bool { return id <= maxPropertyID && p.present&(1<<id) != 0 }

// EachUserProperty calls f for every user property in order until f
// returns false. The slices are views into the packet.
func (p *Properties) EachUserProperty(f func(key, value []byte) bool) {
	c := cursor{b: p.Raw, end: len(p.Raw), lim: &lenient}
	for c.pos < c.end {
		id, _ := c.vbi("")
		spec := propSpecs[id]
		if PropertyID(id) == PropUserProperty {
			k, _ := c.binary("")
			v, _ := c.binary("")
			if !f(k, v) {
				return
			}
			continue
		}
		skip(&c, spec.kind)
	}
}

// lenient is for re-reading properties decode has already validated.
var lenient = Limits{AllowControlChars: true}

// clear zeroes p, touching only what the last decode set: most packets
// carry few properties, and the struct is large.
func (p *Properties) clear() {
	if p.present == 0 && p.Raw == nil {
		return
	}
	for m := p.present; m != 0; m &= m - 1 {
		switch PropertyID(bits.TrailingZeros64(m)) {
		case PropPayloadFormat:
			p.PayloadFormat = 0
		case PropMessageExpiry:
			p.MessageExpiry = 0
		case PropContentType:
			p.ContentType = nil
		case PropResponseTopic:
			p.ResponseTopic = nil
		case PropCorrelationData:
			p.CorrelationData = nil
		case PropSubscriptionID:
			p.SubscriptionID, p.SubscriptionIDs = 0, 0
		case PropSessionExpiry:
			p.SessionExpiry = 0
		case PropAssignedClientID:
			p.AssignedClientID = nil
		case PropServerKeepAlive:
			p.ServerKeepAlive = 0
		case PropAuthMethod:
			p.AuthMethod = nil
		case PropAuthData:
			p.AuthData = nil
		case PropRequestProblemInfo:
			p.RequestProblemInfo = 0
		case PropWillDelay:
			p.WillDelay = 0
		case PropRequestResponseInfo:
			p.RequestResponseInfo = 0
		case PropResponseInfo:
			p.ResponseInfo = nil
		case PropServerReference:
			p.ServerReference = nil
		case PropReasonString:
			p.ReasonString = nil
		case PropReceiveMaximum:
			p.ReceiveMaximum = 0
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = 0
		case PropTopicAlias:
			p.TopicAlias = 0
		case PropMaximumQoS:
			p.MaximumQoS = 0
		case PropRetainAvailable:
			p.RetainAvailable = 0
		case PropUserProperty:
			p.UserProperties = 0
		case PropMaximumPacketSize:
			p.MaximumPacketSize = 0
		case PropWildcardSubAvailable:
			p.WildcardSubAvail = 0
		case PropSubIDAvailable:
			p.SubIDAvail = 0
		case PropSharedSubAvailable:
			p.SharedSubAvail = 0
		}
	}
	p.present, p.Raw = 0, nil
}

// skip moves past a property value already validated by decode.
func skip(c *cursor, k propKind) {
	switch k {
	case kindByte:
		c.pos++
	case kindU16:
		c.pos += 2
	case kindU32:
		c.pos += 4
	case kindVBI:
		c.vbi("")
	case kindString, kindBinary:
		c.binary("")
	case kindPair:
		c.binary("")
		c.binary("")
	}
}

// decodeProperties reads a property section (its length, then the
// properties) for packets of type ctx, validating identifiers, where
// they may appear, duplicates, values and every length.
func (c *cursor) properties(p *Properties, ctx Type) error {
	p.clear()
	what, lengthWhat := "properties", "properties length"
	if ctx == willContext {
		what, lengthWhat = "will properties", "will properties length"
	}
	n, err := c.vbi(lengthWhat)
	if err != nil {
		return err
	}
	if n > c.left() {
		return malformed(c.t, c.pos, "[MQTT-2.2.2-1]", "%s length %d runs past the end of the packet (%d left)", what, n, c.left())
	}
	outerEnd := c.end
	c.end = c.pos + n
	defer func() { c.end = outerEnd }()
	p.Raw = c.b[c.pos:c.end:c.end]
	count := 0
	for c.pos < c.end {
		start := c.pos
		id, err := c.vbi("property identifier")
		if err != nil {
			return err
		}
		if id > maxPropertyID || propSpecs[id].kind == 0 {
			return malformed(c.t, start, "§2.2.2.2", "unknown property identifier 0x%02x", id)
		}
		spec := propSpecs[id]
		pid := PropertyID(id)
		if spec.in&(1<<ctx) == 0 {
			return protocolErr(c.t, start, "§2.2.2.2", "property %s is not allowed in %s", propName[id], contextName(ctx))
		}
		if count++; count > c.lim.MaxProperties {
			return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: start, Msg: "more than the limit of " + strconv.Itoa(c.lim.MaxProperties) + " properties"}
		}
		repeatable := pid == PropUserProperty || (pid == PropSubscriptionID && ctx == PUBLISH)
		if p.present&(1<<pid) != 0 && !repeatable {
			return protocolErr(c.t, start, "§2.2.2.2", "property %s appears more than once", propName[id])
		}
		p.present |= 1 << pid
		if err := c.propertyValue(p, pid, spec, start); err != nil {
			return err
		}
	}
	return nil
}

func contextName(t Type) string {
	if t == willContext {
		return "will properties"
	}
	return "a " + t.String()
}

func (c *cursor) propertyValue(p *Properties, id PropertyID, spec propSpec, start int) error {
	switch spec.kind {
	case kindByte:
		v, err := c.byte1("property value")
		if err != nil {
			return err
		}
		if spec.flag && v > 1 {
			return protocolErr(c.t, start, "§2.2.2.2", "property %s must be 0 or 1, is %d", propName[id], v)
		}
		switch id {
		case PropPayloadFormat:
			p.PayloadFormat = v
		case PropRequestProblemInfo:
			p.RequestProblemInfo = v
		case PropRequestResponseInfo:
			p.RequestResponseInfo = v
		case PropMaximumQoS:
			p.MaximumQoS = v
		case PropRetainAvailable:
			p.RetainAvailable = v
		case PropWildcardSubAvailable:
			p.WildcardSubAvail = v
		case PropSubIDAvailable:
			p.SubIDAvail = v
		case PropSharedSubAvailable:
			p.SharedSubAvail = v
		}
	case kindU16:
		v, err := c.u16("property value")
		if err != nil {
			return err
		}
		switch id {
		case PropServerKeepAlive:
			p.ServerKeepAlive = v
		case PropReceiveMaximum:
			if v == 0 {
				return protocolErr(c.t, start, "§3.1.2.11.3", "Receive Maximum must not be 0")
			}
			p.ReceiveMaximum = v
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = v
		case PropTopicAlias:
			if v == 0 {
				return &Error{Code: reason.TopicAliasInvalid, Rule: "[MQTT-3.3.2-8]", Type: c.t, Offset: start, Msg: "Topic Alias must not be 0"}
			}
			p.TopicAlias = v
		}
	case kindU32:
		v, err := c.u32("property value")
		if err != nil {
			return err
		}
		switch id {
		case PropMessageExpiry:
			p.MessageExpiry = v
		case PropSessionExpiry:
			p.SessionExpiry = v
		case PropWillDelay:
			p.WillDelay = v
		case PropMaximumPacketSize:
			if v == 0 {
				return protocolErr(c.t, start, "§3.1.2.11.4", "Maximum Packet Size must not be 0")
			}
			p.MaximumPacketSize = v
		}
	case kindVBI:
		v, err := c.vbi("Subscription Identifier")
		if err != nil {
			return err
		}
		if v == 0 {
			return protocolErr(c.t, start, "§3.8.2.1.2", "Subscription Identifier must not be 0")
		}
		if p.SubscriptionIDs == 0 {
			p.SubscriptionID = v
		}
		p.SubscriptionIDs++
	case kindString:
		v, err := c.str(propName[id])
		if err != nil {
			return err
		}
		switch id {
		case PropContentType:
			p.ContentType = v
		case PropResponseTopic:
			p.ResponseTopic = v
		case PropAssignedClientID:
			p.AssignedClientID = v
		case PropAuthMethod:
			p.AuthMethod = v
		case PropResponseInfo:
			p.ResponseInfo = v
		case PropServerReference:
			p.ServerReference = v
		case PropReasonString:
			p.ReasonString = v
		}
	case kindBinary:
		v, err := c.binary(propName[id])
		if err != nil {
			return err
		}
		switch id {
		case PropCorrelationData:
			p.CorrelationData = v
		case PropAuthData:
			p.AuthData = v
		}
	case kindPair:
		if _, err := c.str("user property name"); err != nil {
			return err
		}
		if _, err := c.str("user property value"); err != nil {
			return err
		}
		p.UserProperties++
		if p.UserProperties > c.lim.MaxUserProperties {
			return &Error{Code: reason.MalformedPacket, Type: c.t, Offset: start, Msg: "more than the limit of " + strconv.Itoa(c.lim.MaxUserProperties) + " user properties"}
		}
	}
	return nil
}

var propName = [maxPropertyID + 1]string{
	PropPayloadFormat: "Payload Format Indicator", PropMessageExpiry: "Message Expiry Interval",
	PropContentType: "Content Type", PropResponseTopic: "Response Topic", PropCorrelationData: "Correlation Data",
	PropSubscriptionID: "Subscription Identifier", PropSessionExpiry: "Session Expiry Interval",
	PropAssignedClientID: "Assigned Client Identifier", PropServerKeepAlive: "Server Keep Alive",
	PropAuthMethod: "Authentication Method", PropAuthData: "Authentication Data",
	PropRequestProblemInfo: "Request Problem Information", PropWillDelay: "Will Delay Interval",
	PropRequestResponseInfo: "Request Response Information", PropResponseInfo: "Response Information",
	PropServerReference: "Server Reference", PropReasonString: "Reason String", PropReceiveMaximum: "Receive Maximum",
	PropTopicAliasMaximum: "Topic Alias Maximum", PropTopicAlias: "Topic Alias", PropMaximumQoS: "Maximum QoS",
	PropRetainAvailable: "Retain Available", PropUserProperty: "User Property",
	PropMaximumPacketSize: "Maximum Packet Size", PropWildcardSubAvailable: "Wildcard Subscription Available",
	PropSubIDAvailable: "Subscription Identifier Available", PropSharedSubAvailable: "Shared Subscription Available",
}
