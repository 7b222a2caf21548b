package acl

import (
	"strings"

	"github.com/mqttguard/mqttguard/internal/topic"
)

// The compiled index: per subject, two level tries (allow rules and deny
// rules). A rule sits at the node its filter's levels lead to, in `end`
// when the filter stops there and in `hash` when it ends with '#' there.
// Placeholders are edges of their own, compared in place against the
// client's identity, so one pattern rule serves every client. The cost of
// a lookup follows the topic's levels and the wildcard edges that exist,
// not the number of rules.

type node struct {
	lit    map[string]*node
	plus   *node
	user   *node // %u
	client *node // %c
	end    []*compiled
	hash   []*compiled
}

// compiled is a rule as the index keeps it.
type compiled struct {
	rule     *Rule
	index    int // position in the policy: earlier wins a tie
	priority int
	access   Access
	deny     bool
	qos      QoSSet
	retain   RetainCond
	safeOnly bool
}

// subjectIndex holds the rules of one subject. Rules whose filter is a
// shared subscription ("$share/<name>/<filter>") live in shared[name],
// keyed by their inner filter: they take part only in SUBSCRIBE checks of
// shared filters with the same share name.
type subjectIndex struct {
	allow, deny *node
	shared      map[string]*subjectIndex
}

func (s *subjectIndex) add(c *compiled, filter string, literal bool) {
	if name, inner, ok := topic.SplitShared(filter); ok {
		if s.shared == nil {
			s.shared = map[string]*subjectIndex{}
		}
		sub := s.shared[name]
		if sub == nil {
			sub = &subjectIndex{}
			s.shared[strings.Clone(name)] = sub
		}
		sub.add(c, inner, literal)
		return
	}
	root := &s.allow
	if c.deny {
		root = &s.deny
	}
	if *root == nil {
		*root = &node{}
	}
	n := *root
	// "/#" and "/+/#" match the same topics (the one-level empty topic
	// does not exist); storing the second keeps subscribe checks exact.
	if filter == "/#" {
		filter = "/+/#"
	}
	var it levels
	it.s = filter
	for {
		level, more := it.next()
		if level == "#" && !more {
			n.hash = append(n.hash, c)
			return
		}
		n = n.child(level, literal)
		if !more {
			n.end = append(n.end, c)
			return
		}
	}
}

func (n *node) child(level string, literal bool) *node {
	next := func(p **node) *node {
		if *p == nil {
			*p = &node{}
		}
		return *p
	}
	if level == "+" {
		return next(&n.plus)
	}
	if !literal {
		if u, c := placeholder(level); u {
			return next(&n.user)
		} else if c {
			return next(&n.client)
		}
	}
	if n.lit == nil {
		n.lit = map[string]*node{}
	}
	if c := n.lit[level]; c != nil {
		return c
	}
	c := &node{}
	n.lit[strings.Clone(level)] = c
	return c
}

// levels iterates over the levels of a topic or filter without
// allocating. next reports whether another level follows.
type levels struct {
	s   string
	pos int
}

func (it *levels) next() (level string, more bool) {
	s := it.s[it.pos:]
	if i := strings.IndexByte(s, '/'); i >= 0 {
		it.pos += i + 1
		return s[:i], true
	}
	it.pos = len(it.s)
	return s, false
}

// conditions says what a query knows of the message's QoS and retain
// flag.
type conditions uint8

const (
	unknownFailClosed conditions = iota // Check: conditional allows do not grant, conditional denies apply
	exact                               // CheckMessage
	unknownFavourable                   // CheckAnyMessage: conditional allows grant, conditional denies do not apply
)

// query is one check in progress: who asks, for what, and the best allow
// and deny rules found so far.
type query struct {
	access     Access
	qos        byte
	retain     bool
	conditions conditions
	user       string
	client     string
	userOK     bool // user may satisfy %u
	clientOK   bool // client may satisfy %c
	unsafe     bool // username or client ID contains '+' or '#'
	dollar     bool // the topic's or filter's first level starts with '$'

	allow, deny *compiled
}

// consider folds one matching rule into the verdict: highest priority
// first, then the earliest rule.
func (q *query) consider(list []*compiled) {
	for _, c := range list {
		if c.access&q.access == 0 || (c.safeOnly && q.unsafe) {
			continue
		}
		if c.qos != 0 || c.retain != AnyRetain {
			switch q.conditions {
			case unknownFailClosed:
				// Without the message's attributes a conditional rule
				// cannot be proven to apply: an allow is not granted, a
				// deny is assumed (fail closed).
				if !c.deny {
					continue
				}
			case unknownFavourable:
				// Some message could meet an allow's conditions and miss
				// a deny's.
				if c.deny {
					continue
				}
			default:
				if !c.qos.has(q.qos) || (c.retain == RetainedOnly && !q.retain) || (c.retain == NotRetained && q.retain) {
					continue
				}
			}
		}
		best := &q.allow
		if c.deny {
			best = &q.deny
		}
		if b := *best; b == nil || c.priority > b.priority || (c.priority == b.priority && c.index < b.index) {
			*best = c
		}
	}
}

// matchTopic walks n with the levels of a topic name that remain in it
// (more is false once every level has been consumed).
func (q *query) matchTopic(n *node, it levels, more, root bool) {
	if !(root && q.dollar) {
		q.consider(n.hash)
	}
	if !more {
		q.consider(n.end)
		return
	}
	level, more := it.next()
	if c := n.lit[level]; c != nil {
		q.matchTopic(c, it, more, false)
	}
	if n.plus != nil && !(root && q.dollar) {
		q.matchTopic(n.plus, it, more, false)
	}
	if n.user != nil && q.userOK && level == q.user {
		q.matchTopic(n.user, it, more, false)
	}
	if n.client != nil && q.clientOK && level == q.client {
		q.matchTopic(n.client, it, more, false)
	}
}

// coverFilter walks the allow trie and considers every rule whose filter
// covers the subscription filter (see Covers). it holds the filter's
// remaining levels; more is false once they are all consumed.
func (q *query) coverFilter(n *node, it levels, more, root bool) {
	if !more {
		q.consider(n.end)
		q.consider(n.hash) // "a/#" covers "a"
		return
	}
	level, more := it.next()
	if level == "#" {
		// Only rules ending in '#' here cover a '#'; at the root, "+/#"
		// covers "#" too (both match every topic).
		q.consider(n.hash)
		if root && n.plus != nil {
			q.consider(n.plus.hash)
		}
		return
	}
	if !(root && q.dollar) {
		q.consider(n.hash)
	}
	if level == "+" {
		if n.plus != nil {
			q.coverFilter(n.plus, it, more, false)
		}
		return
	}
	if c := n.lit[level]; c != nil {
		q.coverFilter(c, it, more, false)
	}
	if n.plus != nil && !(root && q.dollar) {
		q.coverFilter(n.plus, it, more, false)
	}
	if n.user != nil && q.userOK && level == q.user {
		q.coverFilter(n.user, it, more, false)
	}
	if n.client != nil && q.clientOK && level == q.client {
		q.coverFilter(n.client, it, more, false)
	}
}

// intersectFilter walks the deny trie and considers every rule whose
// filter intersects the subscription filter (see Intersects).
func (q *query) intersectFilter(n *node, it levels, more, root bool) {
	if !more {
		// The filter matched exactly this many levels: rules ending here,
		// or ending in '#' here (parent match), share a topic with it.
		q.consider(n.end)
		q.consider(n.hash)
		return
	}
	level, more := it.next()
	if level == "#" {
		q.consider(n.end) // "a/#" matches "a"; at the root n.end is empty
		q.everyRule(n, root)
		return
	}
	if !(root && q.dollar) {
		q.consider(n.hash)
	}
	if level != "+" {
		if c := n.lit[level]; c != nil {
			q.intersectFilter(c, it, more, false)
		}
		if n.plus != nil && !(root && q.dollar) {
			q.intersectFilter(n.plus, it, more, false)
		}
		if n.user != nil && q.userOK && level == q.user {
			q.intersectFilter(n.user, it, more, false)
		}
		if n.client != nil && q.clientOK && level == q.client {
			q.intersectFilter(n.client, it, more, false)
		}
		return
	}
	// '+' meets every edge, except '$' levels at the root.
	for name, c := range n.lit {
		if root && name != "" && name[0] == '$' {
			continue
		}
		q.intersectFilter(c, it, more, false)
	}
	if n.plus != nil {
		q.intersectFilter(n.plus, it, more, false)
	}
	if n.user != nil && q.userOK && !(root && q.user[0] == '$') {
		q.intersectFilter(n.user, it, more, false)
	}
	if n.client != nil && q.clientOK && !(root && q.client[0] == '$') {
		q.intersectFilter(n.client, it, more, false)
	}
}

// everyRule considers every rule below n: a '#' in the filter meets all
// of them (at the root, none under a '$' level).
func (q *query) everyRule(n *node, root bool) {
	q.consider(n.hash)
	for name, c := range n.lit {
		if root && name != "" && name[0] == '$' {
			continue
		}
		q.consider(c.end)
		q.everyRule(c, false)
	}
	if n.plus != nil {
		q.consider(n.plus.end)
		q.everyRule(n.plus, false)
	}
	if n.user != nil && q.userOK && !(root && q.user[0] == '$') {
		q.consider(n.user.end)
		q.everyRule(n.user, false)
	}
	if n.client != nil && q.clientOK && !(root && q.client[0] == '$') {
		q.consider(n.client.end)
		q.everyRule(n.client, false)
	}
}
