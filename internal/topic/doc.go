// Package topic holds the MQTT topic-name and topic-filter rules that both
// acl and packets enforce (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7 and §4.8.2). The
// public faces are acl.ValidTopic, acl.ValidFilter, acl.Match, acl.Covers
// and acl.Intersects; packets uses the same functions so that a topic the
// packet reader admits is exactly a topic the ACL engine understands.
//
// Everything here works on strings as they arrive on the wire: byte-exact,
// case-sensitive, never normalised ([MQTT-4.7.3-4]), and without
// allocation.
package topic
