package acl

import "github.com/mqttguard/mqttguard/internal/topic"

// TopicError says which topic rule an input breaks, at which byte offset,
// and the conformance statement (MQTT 5.0 numbering). ValidTopic and
// ValidFilter return it.
type TopicError = topic.Error

// ValidTopic checks a topic name as PUBLISH carries it: 1 to 65535 bytes
// of UTF-8, no U+0000, no '+' or '#'. MQTT 5.0 allows a zero-length topic
// name when the PUBLISH carries a Topic Alias; resolving the alias is the
// broker's business, so hand ValidTopic the resolved name.
func ValidTopic(name string) error { return topic.ValidName(name) }

// ValidFilter checks a topic filter as SUBSCRIBE carries it: the rules of
// ValidTopic except that wildcards are allowed where the specification
// allows them ('#' alone in the last level, '+' alone in any level), and
// "$share/<name>/<filter>" needs a non-empty share name without '/', '+'
// or '#' and a non-empty valid filter.
func ValidFilter(filter string) error { return topic.ValidFilter(filter) }

// Match reports whether a topic name matches a filter with the
// specification's semantics: "sport/#" matches "sport", "sport/+" matches
// "sport/", empty levels are levels, and a filter that starts with a
// wildcard never matches a topic that starts with '$' (only the first
// level counts: "a/#" matches "a/$x"). A shared-subscription filter
// "$share/<name>/<filter>" matches by its inner filter.
//
// Match rejects malformed wildcards and wildcard topics in the same single
// pass and does not allocate. It does not re-check UTF-8 or U+0000: call
// ValidTopic and ValidFilter at the boundary where input arrives.
func Match(filter, topicName string) bool { return topic.Match(filter, topicName) }

// Covers reports whether every topic that filter can match is also
// matched by rule. This is the question to ask of an allow rule when a
// client subscribes: "a/#" covers "a/+", but "a/+" does not cover "a/#"
// (EMQX's authorizer gets this wrong), '+' never covers '#', and a rule
// that starts with a wildcard never covers a '$' filter. Covers is exact,
// not an approximation: "+/#" covers "#" because both match every topic.
//
// A shared-subscription filter is covered by its inner filter; a rule
// that is itself "$share/<name>/…" covers only shared filters of the same
// share name.
func Covers(rule, filter string) bool { return topic.Covers(rule, filter) }

// Intersects reports whether some topic matches both filters. This is the
// question to ask of a deny rule when a client subscribes: "deny
// a/secret/#" intersects "SUBSCRIBE a/#".
func Intersects(a, b string) bool { return topic.Intersects(a, b) }
