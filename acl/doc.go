// Package acl decides which MQTT client may publish to, subscribe to and
// receive which topics.
//
// # Topics
//
// ValidTopic and ValidFilter apply the specification's rules for topic
// names and filters (MQTT 3.1.1 and 5.0 §4.7, §4.8.2) and say which rule
// an input breaks and where. Match answers whether a topic name matches a
// filter; Covers whether one filter matches everything another does;
// Intersects whether two filters share a topic. All three are exact and
// allocation-free, and all three apply the '$' rule: a filter that starts
// with a wildcard never matches a topic that starts with '$'.
//
// # Rules
//
// A Rule says: for these clients (Subject), allow or deny (Effect) these
// kinds of access (Access) on topics matching this filter. Three kinds of
// access are checked separately, because they need different questions:
//
//   - Publish: the topic name of a PUBLISH (or a will) must match the rule.
//   - Receive: checked for every message delivered to a subscriber, with
//     the concrete topic name. This is the complete enforcement: a client
//     may hold a subscription to "#" and still receive only what it may
//     read.
//   - Subscribe: a SUBSCRIBE filter is allowed when an allow rule Covers it
//     and no deny rule Intersects it. An allow rule "a/+" therefore does
//     not admit "SUBSCRIBE a/#" (EMQX's authorizer does), and a deny rule
//     "a/secret/#" refuses "SUBSCRIBE a/#".
//
// Read is Subscribe|Receive and Write is Publish, as in mosquitto.
//
// Filters may use the placeholders "%u"/"${username}" and
// "%c"/"${clientid}" as whole levels. They are compared in place, as one
// level, inside the matcher: never substituted into a string. An identity
// that is empty or contains '/', '+', '#' or U+0000 never satisfies a
// placeholder, which closes CVE-2017-7650 and its sequel where user "a/b"
// reached user "a"'s subtree.
//
// # Precedence
//
// Among the rules that apply to a request, the highest Priority decides;
// within one priority a deny beats any allow; among equals the earliest
// rule is the one a Decision names. When no rule applies the policy's
// default decides, and the default is deny. The outcome never depends on
// map iteration order or on the order rules happened to load in.
//
// Checks have no side channel: Policy.Check returns a Decision that names
// the deciding rule with its file and line, for the audit log.
//
// # Compiled index
//
// NewPolicy, ParseMosquitto and ParseJSON compile the rules into level
// tries, one pair (allow, deny) per subject, so the cost of a check
// follows the topic's levels and not the number of rules: at 100,000
// rules a check costs about what it costs at 100. A Policy is immutable
// and safe for concurrent use; Holder swaps policies atomically for hot
// reload and keeps the old one when a new file does not parse.
//
// # Files
//
// ParseMosquitto reads mosquitto 2.0's acl_file and answers Publish and
// Receive as mosquitto 2.0 does (see its doc for the two places where it
// is deliberately safer). ParseJSON reads the native format, which can
// say everything the engine can. LoadFile picks by file extension. An
// empty file is an error, never "allow all" (CVE-2018-12550).
//
// # Shared subscriptions and reserved topics
//
// A plain rule judges a shared subscription "$share/<name>/<filter>" by
// its inner filter. A rule whose own filter is "$share/<name>/…" applies
// only to SUBSCRIBE checks of shared filters with that share name (it can
// grant or refuse joining the group) and never to Publish or Receive.
// Like mosquitto, Check refuses publishing under "$SYS" (except a
// bridge's "$SYS/broker/connection/+/state") and publishing or receiving
// under "$share" whatever the rules say.
package acl
