package acl

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/mqttguard/mqttguard/internal/topic"
)

// Client is who asks. Username "" means an anonymous client. CommonName
// is the identity of a verified TLS client certificate (see tlsconf);
// leave it empty when there is none.
type Client struct {
	ID         string
	Username   string
	Addr       netip.Addr
	CommonName string
}

// Reason says how a Decision was reached.
type Reason uint8

const (
	// ReasonRule: a rule decided; Decision.Rule says which.
	ReasonRule Reason = iota + 1
	// ReasonDefault: no rule applied and the policy's default decided.
	ReasonDefault
	// ReasonInvalid: the topic name or filter is malformed.
	ReasonInvalid
	// ReasonReserved: clients may not publish under "$SYS" nor publish
	// or receive under "$share" (mosquitto refuses them before any ACL).
	ReasonReserved
	// ReasonNoPolicy: the policy is nil (a Holder that was never loaded).
	ReasonNoPolicy
)

func (r Reason) String() string {
	switch r {
	case ReasonRule:
		return "rule"
	case ReasonDefault:
		return "no rule matched"
	case ReasonInvalid:
		return "invalid topic"
	case ReasonReserved:
		return "reserved topic"
	case ReasonNoPolicy:
		return "no policy loaded"
	}
	return "unknown"
}

// Decision is the answer to a check. Rule points into the policy and
// must not be modified.
type Decision struct {
	Allowed bool
	Reason  Reason
	Rule    *Rule // the deciding rule when Reason is ReasonRule
}

// String explains the decision for an operator, e.g.
// `denied by acl.conf:12: topic deny secret/#`.
func (d Decision) String() string {
	verb := "denied"
	if d.Allowed {
		verb = "allowed"
	}
	if d.Reason == ReasonRule && d.Rule != nil {
		return verb + " by " + d.Rule.String()
	}
	return verb + ": " + d.Reason.String()
}

// Options tune a Policy. The zero value is the secure default.
type Options struct {
	// DefaultAllow makes a check with no applicable rule succeed. The
	// default denies, as mosquitto does: a broker that allows by default
	// (mochi-mqtt's ledger) turns every gap in the policy into a hole.
	DefaultAllow bool
}

// Policy is a compiled, immutable rule set, safe for concurrent use. A
// nil *Policy denies everything.
type Policy struct {
	rules []Rule
	opts  Options

	anyone    subjectIndex
	anonymous subjectIndex
	users     map[string]*subjectIndex
	clients   map[string]*subjectIndex
	cns       map[string]*subjectIndex
	prefixes  []prefixGroup // client-ID prefixes, grouped by length
	nets      []netGroup    // CIDR blocks, grouped by family and bits

	placeholders bool // some rule uses %u or %c
	safeOnly     bool // some rule is SafeIdentityOnly
}

type prefixGroup struct {
	n int
	m map[string]*subjectIndex
}

type netGroup struct {
	bits int
	v6   bool
	m    map[netip.Prefix]*subjectIndex
}

// NewPolicy validates and compiles rules. The error names the first bad
// rule by its position, source and line. An empty rule list is allowed
// and denies everything (unless opts.DefaultAllow).
func NewPolicy(rules []Rule, opts Options) (*Policy, error) {
	p := &Policy{rules: append([]Rule(nil), rules...), opts: opts}
	for i := range p.rules {
		r := &p.rules[i]
		if err := r.validate(); err != nil {
			where := r.location()
			if where == "" {
				where = fmt.Sprintf("rule %d", i+1)
			}
			return nil, fmt.Errorf("acl: %s: %w", where, err)
		}
		c := &compiled{
			rule: r, index: i, priority: r.Priority, access: r.Access, deny: r.Effect == Deny,
			qos: r.QoS, retain: r.Retain, safeOnly: r.SafeIdentityOnly,
		}
		p.subjectIndexFor(r.Subject).add(c, r.Filter, r.Literal)
		if !r.Literal && hasPlaceholder(r.Filter) {
			p.placeholders = true
		}
		if r.SafeIdentityOnly {
			p.safeOnly = true
		}
	}
	sort.Slice(p.prefixes, func(i, j int) bool { return p.prefixes[i].n < p.prefixes[j].n })
	return p, nil
}

func hasPlaceholder(filter string) bool {
	var it levels
	it.s = filter
	for {
		l, more := it.next()
		if u, c := placeholder(l); u || c {
			return true
		}
		if !more {
			return false
		}
	}
}

func (p *Policy) subjectIndexFor(s Subject) *subjectIndex {
	get := func(m *map[string]*subjectIndex, k string) *subjectIndex {
		if *m == nil {
			*m = map[string]*subjectIndex{}
		}
		if x := (*m)[k]; x != nil {
			return x
		}
		x := &subjectIndex{}
		(*m)[k] = x
		return x
	}
	switch s.Kind {
	case KindAnonymous:
		return &p.anonymous
	case KindUsername:
		return get(&p.users, s.Name)
	case KindClientID:
		return get(&p.clients, s.Name)
	case KindCommonName:
		return get(&p.cns, s.Name)
	case KindClientIDPrefix:
		for i := range p.prefixes {
			if p.prefixes[i].n == len(s.Name) {
				return get(&p.prefixes[i].m, s.Name)
			}
		}
		p.prefixes = append(p.prefixes, prefixGroup{n: len(s.Name)})
		return get(&p.prefixes[len(p.prefixes)-1].m, s.Name)
	case KindNetwork:
		pfx := s.Network.Masked()
		v6 := pfx.Addr().Is6()
		for i := range p.nets {
			g := &p.nets[i]
			if g.bits == pfx.Bits() && g.v6 == v6 {
				if g.m[pfx] == nil {
					g.m[pfx] = &subjectIndex{}
				}
				return g.m[pfx]
			}
		}
		x := &subjectIndex{}
		p.nets = append(p.nets, netGroup{bits: pfx.Bits(), v6: v6, m: map[netip.Prefix]*subjectIndex{pfx: x}})
		return x
	}
	return &p.anyone
}

// Rules returns a copy of the policy's rules in evaluation order.
func (p *Policy) Rules() []Rule {
	if p == nil {
		return nil
	}
	return append([]Rule(nil), p.rules...)
}

// Len is the number of rules.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// Check decides whether client c may have access a on a topic: a topic
// name for Publish and Receive, a topic filter for Subscribe.
//
// Check knows nothing of the message's QoS or retain flag: rules with
// those conditions are treated fail-closed (a conditional allow does not
// grant, a conditional deny applies). Use CheckMessage when the message
// is at hand. Check does not allocate.
func (p *Policy) Check(c Client, a Access, topic string) Decision {
	return p.check(c, a, topic, 0, false, unknownFailClosed)
}

// CheckMessage is Check with the message's QoS and retain flag, so that
// rules with QoS or retain conditions are evaluated exactly. For
// Subscribe, qos is the requested maximum QoS and retain is ignored.
func (p *Policy) CheckMessage(c Client, a Access, topic string, qos byte, retain bool) Decision {
	return p.check(c, a, topic, qos, retain, exact)
}

// CheckAnyMessage is Check for a message whose QoS and retain flag are
// not known yet, answered the other way round: allowed when some
// message on topic could be (a conditional allow grants, a conditional
// deny does not apply). A broker that must filter deliveries before it
// knows them (mochi-mqtt asks before it settles the QoS) drops what
// CheckAnyMessage refuses and checks the rest with CheckMessage once it
// knows them. Without conditional rules it answers as Check does.
func (p *Policy) CheckAnyMessage(c Client, a Access, topic string) Decision {
	return p.check(c, a, topic, 0, false, unknownFavourable)
}

func (p *Policy) check(c Client, a Access, t string, qos byte, retain bool, conditions conditions) Decision {
	if p == nil {
		return Decision{Reason: ReasonNoPolicy}
	}
	if a != Publish && a != Subscribe && a != Receive {
		// A check is for exactly one access; a combined one would let a
		// rule for one grant the others.
		return Decision{Reason: ReasonInvalid}
	}
	q := query{access: a, qos: qos, retain: retain, conditions: conditions}
	if a == Subscribe {
		if ValidFilter(t) != nil {
			return Decision{Reason: ReasonInvalid}
		}
	} else {
		if ValidTopic(t) != nil {
			return Decision{Reason: ReasonInvalid}
		}
		if t[0] == '$' && reserved(t, a) {
			return Decision{Reason: ReasonReserved}
		}
	}
	if p.placeholders {
		q.user, q.client = c.Username, c.ID
		q.userOK, q.clientOK = safeIdentity(c.Username), safeIdentity(c.ID)
	}
	if p.safeOnly {
		q.unsafe = strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ID, "+#")
	}

	p.evaluate(&q, &p.anyone, t)
	if c.Username == "" {
		p.evaluate(&q, &p.anonymous, t)
	} else if x := p.users[c.Username]; x != nil {
		p.evaluate(&q, x, t)
	}
	if x := p.clients[c.ID]; x != nil {
		p.evaluate(&q, x, t)
	}
	for i := range p.prefixes {
		g := &p.prefixes[i]
		if g.n > len(c.ID) {
			break
		}
		if x := g.m[c.ID[:g.n]]; x != nil {
			p.evaluate(&q, x, t)
		}
	}
	if c.Addr.IsValid() && len(p.nets) > 0 {
		addr := c.Addr.Unmap()
		for i := range p.nets {
			g := &p.nets[i]
			if g.v6 != addr.Is6() {
				continue
			}
			if pfx, err := addr.Prefix(g.bits); err == nil {
				if x := g.m[pfx]; x != nil {
					p.evaluate(&q, x, t)
				}
			}
		}
	}
	if c.CommonName != "" {
		if x := p.cns[c.CommonName]; x != nil {
			p.evaluate(&q, x, t)
		}
	}

	switch {
	case q.deny != nil && (q.allow == nil || q.deny.priority >= q.allow.priority):
		return Decision{Reason: ReasonRule, Rule: q.deny.rule}
	case q.allow != nil:
		return Decision{Allowed: true, Reason: ReasonRule, Rule: q.allow.rule}
	}
	return Decision{Allowed: p.opts.DefaultAllow, Reason: ReasonDefault}
}

// evaluate folds the rules of one subject into q.
func (p *Policy) evaluate(q *query, x *subjectIndex, t string) {
	if q.access != Subscribe {
		if x.allow == nil && x.deny == nil {
			return
		}
		q.dollar = t[0] == '$'
		it := levels{s: t}
		if x.allow != nil {
			q.matchTopic(x.allow, it, true, true)
		}
		if x.deny != nil {
			q.matchTopic(x.deny, it, true, true)
		}
		return
	}
	name, inner, shared := topic.SplitShared(t)
	p.evaluateFilter(q, x, inner)
	if shared && x.shared != nil {
		if s := x.shared[name]; s != nil {
			p.evaluateFilter(q, s, inner)
		}
	}
}

func (p *Policy) evaluateFilter(q *query, x *subjectIndex, f string) {
	if f == "/#" {
		f = "/+/#" // the same topics; see subjectIndex.add
	}
	q.dollar = f[0] == '$'
	it := levels{s: f}
	if x.allow != nil {
		q.coverFilter(x.allow, it, true, true)
	}
	if x.deny != nil {
		q.intersectFilter(x.deny, it, true, true)
	}
}

// reserved reports topics no client may publish to or receive, whatever
// the rules say, exactly as mosquitto 2.0 refuses them before consulting
// any ACL: publishing under "$SYS" (except the bridge state topic
// "$SYS/broker/connection/+/state"), and publishing or receiving under
// "$share", which names subscriptions, not topics. Both are prefix tests
// on the raw string, as in mosquitto.
func reserved(t string, a Access) bool {
	switch {
	case strings.HasPrefix(t, "$SYS"):
		return a == Publish && !Match("$SYS/broker/connection/+/state", t)
	case strings.HasPrefix(t, "$share"):
		return true
	}
	return false
}
