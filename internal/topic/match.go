package topic

import "strings"

// Match reports whether topic name matches filter.
//
// The semantics are the specification's: '#' matches the parent level and
// any number of levels below it ("sport/#" matches "sport"), '+' matches
// exactly one level including an empty one ("sport/+" matches "sport/"),
// empty levels are levels, and a filter whose first character is a
// wildcard never matches a topic whose first character is '$'
// [MQTT-4.7.2-1]; only the first level counts, so "a/#" matches "a/$x".
// A shared-subscription filter matches by its inner filter.
//
// Match validates the wildcard structure of both arguments in the same
// pass: a malformed filter, a topic containing a wildcard and empty input
// never match. It does not check UTF-8 or U+0000 (see ValidName and
// ValidFilter): the comparison is byte-exact, so such bytes can only ever
// match themselves. It does not allocate.
func Match(filter, topic string) bool {
	if len(filter) == 0 || len(topic) == 0 {
		return false
	}
	if filter[0] == '$' {
		var ok bool
		if filter, ok = innerFilter(filter); !ok {
			return false // "$share/" without a name or inner filter
		}
	}
	if topic[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	return matchLevels(filter, topic)
}

// matchLevels walks filter and topic byte by byte, one level at a time.
// At the top of the loop both indexes stand at the start of a level.
func matchLevels(f, t string) bool {
	fi, ti := 0, 0
	for fi < len(f) {
		switch f[fi] {
		case '#':
			// '#' must be the whole last level; it takes the rest of the
			// topic, which must itself be free of wildcards.
			return fi+1 == len(f) && noWildcards(t[ti:])
		case '+':
			if fi+1 < len(f) && f[fi+1] != '/' {
				return false
			}
			fi++
			for ti < len(t) && t[ti] != '/' {
				if c := t[ti]; c == '+' || c == '#' {
					return false
				}
				ti++
			}
		default:
			for fi < len(f) && f[fi] != '/' {
				c := f[fi]
				if c == '+' || c == '#' || ti >= len(t) || t[ti] != c {
					return false
				}
				fi++
				ti++
			}
			if ti < len(t) && t[ti] != '/' {
				return false // the topic's level is longer
			}
		}
		// Both stand at the end of a level.
		if fi == len(f) {
			return ti == len(t)
		}
		fi++ // skip '/'
		if ti == len(t) {
			// The topic has no more levels: only a final "#" matches
			// the parent level.
			return len(f)-fi == 1 && f[fi] == '#'
		}
		ti++
	}
	// The filter ended with '/': its last level is empty and matches only
	// an empty last topic level.
	return ti == len(t)
}

func noWildcards(s string) bool {
	return strings.IndexByte(s, '+') < 0 && strings.IndexByte(s, '#') < 0
}
