package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Access is what a client wants to do with a topic. A rule grants or
// denies a set of them.
type Access uint8

const (
	// Publish is sending a PUBLISH to a topic name (and a will message).
	Publish Access = 1 << iota
	// Subscribe is a SUBSCRIBE to a topic filter.
	Subscribe
	// Receive is the delivery of one message to a subscriber, checked per
	// message against the concrete topic name.
	Receive

	// Read is what mosquitto calls read: subscribing and receiving.
	Read = Subscribe | Receive
	// Write is what mosquitto calls write: publishing.
	Write = Publish
	// All is every access.
	All = Publish | Subscribe | Receive
)

func (a Access) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	case Receive:
		return "receive"
	case Read:
		return "read"
	case All:
		return "readwrite"
	}
	var parts []string
	for _, x := range []Access{Publish, Subscribe, Receive} {
		if a&x != 0 {
			parts = append(parts, x.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Effect is what a matching rule decides. The zero value is invalid so
// that a rule must say what it does.
type Effect uint8

const (
	Allow Effect = iota + 1
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "Effect(" + strconv.Itoa(int(e)) + ")"
}

// SubjectKind says which clients a rule applies to.
type SubjectKind uint8

const (
	// KindAnyone applies to every client.
	KindAnyone SubjectKind = iota
	// KindAnonymous applies to clients without a username.
	KindAnonymous
	// KindUsername applies to one username, compared exactly.
	KindUsername
	// KindClientID applies to one client ID, compared exactly.
	KindClientID
	// KindClientIDPrefix applies to client IDs that start with a prefix.
	KindClientIDPrefix
	// KindNetwork applies to clients whose address is in a CIDR block.
	KindNetwork
	// KindCommonName applies to clients whose verified TLS certificate
	// identity (see Client.CommonName) equals a name.
	KindCommonName
)

// Subject names the clients a rule applies to. Build it with Anyone,
// Anonymous, User, ClientID, ClientIDPrefix, Network or CommonName.
type Subject struct {
	Kind    SubjectKind
	Name    string       // username, client ID, prefix or common name
	Network netip.Prefix // for KindNetwork
}

func Anyone() Subject                      { return Subject{Kind: KindAnyone} }
func Anonymous() Subject                   { return Subject{Kind: KindAnonymous} }
func User(name string) Subject             { return Subject{Kind: KindUsername, Name: name} }
func ClientID(id string) Subject           { return Subject{Kind: KindClientID, Name: id} }
func ClientIDPrefix(prefix string) Subject { return Subject{Kind: KindClientIDPrefix, Name: prefix} }
func CommonName(cn string) Subject         { return Subject{Kind: KindCommonName, Name: cn} }

// Network applies to clients whose address lies in p. A single address
// is a /32 (IPv4) or /128 (IPv6) prefix.
func Network(p netip.Prefix) Subject { return Subject{Kind: KindNetwork, Network: p.Masked()} }

// String renders the subject in the native format's syntax.
func (s Subject) String() string {
	switch s.Kind {
	case KindAnyone:
		return "anyone"
	case KindAnonymous:
		return "anonymous"
	case KindUsername:
		return "user:" + s.Name
	case KindClientID:
		return "client:" + s.Name
	case KindClientIDPrefix:
		return "client-prefix:" + s.Name
	case KindNetwork:
		return "ip:" + s.Network.String()
	case KindCommonName:
		return "cn:" + s.Name
	}
	return "SubjectKind(" + strconv.Itoa(int(s.Kind)) + ")"
}

// ParseSubject reads the native format's subject syntax: "anyone",
// "anonymous", "user:NAME", "client:ID", "client-prefix:PREFIX",
// "ip:ADDR" or "ip:CIDR", "cn:NAME".
func ParseSubject(s string) (Subject, error) {
	switch s {
	case "anyone":
		return Anyone(), nil
	case "anonymous":
		return Anonymous(), nil
	}
	kind, value, ok := strings.Cut(s, ":")
	if !ok || value == "" {
		return Subject{}, fmt.Errorf("subject %q: want anyone, anonymous, user:NAME, client:ID, client-prefix:PREFIX, ip:CIDR or cn:NAME", s)
	}
	switch kind {
	case "user":
		return User(value), nil
	case "client":
		return ClientID(value), nil
	case "client-prefix":
		return ClientIDPrefix(value), nil
	case "cn":
		return CommonName(value), nil
	case "ip":
		if p, err := netip.ParsePrefix(value); err == nil {
			return Network(p), nil
		}
		a, err := netip.ParseAddr(value)
		if err != nil {
			return Subject{}, fmt.Errorf("subject %q: %q is neither an IP address nor a CIDR prefix", s, value)
		}
		return Network(netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())), nil
	}
	return Subject{}, fmt.Errorf("subject %q: unknown kind %q; want user, client, client-prefix, ip or cn", s, kind)
}

// QoSSet is a set of QoS levels a rule is limited to, bit n for QoS n.
// The zero value means any QoS.
type QoSSet uint8

// QoS returns the set of the given levels.
func QoS(levels ...byte) QoSSet {
	var s QoSSet
	for _, l := range levels {
		if l <= 2 {
			s |= 1 << l
		}
	}
	return s
}

func (s QoSSet) has(qos byte) bool { return s == 0 || (qos <= 2 && s&(1<<qos) != 0) }

// RetainCond limits a rule to retained or to non-retained messages.
type RetainCond uint8

const (
	AnyRetain    RetainCond = iota // the zero value: no condition
	RetainedOnly                   // only messages with the retain flag
	NotRetained                    // only messages without it
)

// Rule is one line of policy: Effect for Access on topics matching
// Filter, for the clients Subject names.
//
// Filter is a topic filter. A level that is exactly "%u" or "${username}"
// matches the client's username, "%c" or "${clientid}" its client ID: in
// place, as exactly one whole level, never by string substitution. An
// identity that is empty or contains '/', '+', '#' or U+0000 never
// satisfies a placeholder (CVE-2017-7650 and its '/' sequel, where user
// "a/b" reached user "a"'s subtree). Set Literal to treat those levels as
// plain text, as mosquitto's "topic" lines do.
type Rule struct {
	Subject  Subject
	Effect   Effect
	Access   Access
	Filter   string
	Priority int // higher wins; see the package doc for precedence

	QoS    QoSSet     // zero: any QoS
	Retain RetainCond // zero: retained or not

	// Literal turns placeholders off for this rule.
	Literal bool
	// SafeIdentityOnly skips this rule for clients whose username or
	// client ID contains '+' or '#'. ParseMosquitto sets it on pattern
	// lines, where mosquitto 2.0 refuses such clients (CVE-2017-7650).
	SafeIdentityOnly bool

	// Where the rule came from, for Decision.String.
	Source string // file name
	Line   int    // 1-based line number, 0 if unknown
	Text   string // the rule as written
}

// String renders where the rule came from and what it says.
func (r *Rule) String() string {
	var b strings.Builder
	if r.Source != "" || r.Line > 0 {
		b.WriteString(r.Source)
		if r.Line > 0 {
			b.WriteString(":" + strconv.Itoa(r.Line))
		}
		b.WriteString(": ")
	}
	if r.Text != "" {
		b.WriteString(r.Text)
	} else {
		fmt.Fprintf(&b, "%s %s %s %s", r.Effect, r.Access, r.Subject, r.Filter)
		if r.Priority != 0 {
			fmt.Fprintf(&b, " priority %d", r.Priority)
		}
	}
	return b.String()
}

func (r *Rule) location() string {
	if r.Line > 0 {
		return r.Source + ":" + strconv.Itoa(r.Line)
	}
	return ""
}

// validate checks a rule before it is compiled.
func (r *Rule) validate() error {
	if r.Effect != Allow && r.Effect != Deny {
		return fmt.Errorf("effect must be allow or deny")
	}
	if r.Access == 0 || r.Access&^All != 0 {
		return fmt.Errorf("access must be a non-empty combination of publish, subscribe and receive")
	}
	if r.QoS&^7 != 0 {
		return fmt.Errorf("QoS set has levels above 2")
	}
	if r.Retain > NotRetained {
		return fmt.Errorf("unknown retain condition %d", r.Retain)
	}
	if err := ValidFilter(r.Filter); err != nil {
		return err
	}
	switch r.Subject.Kind {
	case KindAnyone, KindAnonymous:
	case KindUsername, KindClientID, KindClientIDPrefix, KindCommonName:
		if r.Subject.Name == "" {
			return fmt.Errorf("subject %s needs a name", r.Subject)
		}
	case KindNetwork:
		if !r.Subject.Network.IsValid() {
			return fmt.Errorf("subject ip: needs a valid CIDR prefix")
		}
	default:
		return fmt.Errorf("unknown subject kind %d", r.Subject.Kind)
	}
	return nil
}

// placeholder reports which identity a filter level stands for.
func placeholder(level string) (user, client bool) {
	switch level {
	case "%u", "${username}":
		return true, false
	case "%c", "${clientid}":
		return false, true
	}
	return false, false
}

// safeIdentity reports whether an identity may satisfy a placeholder: a
// whole level, never empty, never a wildcard.
func safeIdentity(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/+#\x00")
}
