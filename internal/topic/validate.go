package topic

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest topic name or filter MQTT can carry: its length
// prefix is a 16-bit integer [MQTT-4.7.3-3].
const MaxLen = 65535

// SharePrefix starts a shared-subscription filter (MQTT 5.0 §4.8.2). It is
// case-sensitive: "$SHARE/g/a" is an ordinary filter.
const SharePrefix = "$share/"

// Error says which rule a topic name or filter breaks and where. The
// statement uses MQTT 5.0 numbering.
type Error struct {
	Kind      string // "topic name" or "topic filter"
	Value     string // the offending input, truncated to 64 bytes
	Offset    int    // byte offset of the problem, -1 for the whole input
	Reason    string // what is wrong, in plain words
	Statement string // the conformance statement, e.g. "[MQTT-4.7.1-1]"
}

func (e *Error) Error() string {
	s := "invalid " + e.Kind + " " + strconv.Quote(e.Value) + ": " + e.Reason
	if e.Offset >= 0 {
		s += " at byte " + strconv.Itoa(e.Offset)
	}
	if e.Statement != "" {
		s += " " + e.Statement
	}
	return s
}

func newError(kind, value string, off int, reason, stmt string) *Error {
	if len(value) > 64 {
		value = value[:64] + "…"
	}
	return &Error{Kind: kind, Value: value, Offset: off, Reason: reason, Statement: stmt}
}

const (
	kindName   = "topic name"
	kindFilter = "topic filter"
)

// ValidName checks a PUBLISH topic name: 1 to 65535 bytes of UTF-8
// without U+0000 and without the wildcards '+' and '#'. A zero-length
// topic name is legal in MQTT 5.0 only together with a Topic Alias; that
// is the packet reader's business, so here it is an error.
func ValidName(name string) error {
	if err := validString(kindName, name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '+', '#':
			return newError(kindName, name, i, "wildcard '"+name[i:i+1]+"' is not allowed in a topic name", "[MQTT-4.7.0-1]")
		}
	}
	return nil
}

// ValidFilter checks a SUBSCRIBE topic filter: the string rules of
// ValidName, '#' only alone at the last level, '+' only alone at its
// level, and for "$share/<name>/<filter>" a non-empty share name free of
// '/', '+' and '#' followed by a non-empty valid filter.
func ValidFilter(filter string) error {
	if err := validString(kindFilter, filter); err != nil {
		return err
	}
	inner, base := filter, 0
	if len(filter) >= len(SharePrefix) && filter[:len(SharePrefix)] == SharePrefix {
		rest := filter[len(SharePrefix):]
		end := -1
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			if c == '/' {
				end = i
				break
			}
			if c == '+' || c == '#' {
				return newError(kindFilter, filter, len(SharePrefix)+i, "share name must not contain '+' or '#'", "[MQTT-4.8.2-2]")
			}
		}
		switch {
		case end < 0:
			return newError(kindFilter, filter, -1, "shared subscription needs \"$share/<name>/<filter>\"", "[MQTT-4.8.2-2]")
		case end == 0:
			return newError(kindFilter, filter, len(SharePrefix), "share name must be at least one character", "[MQTT-4.8.2-1]")
		case end == len(rest)-1:
			return newError(kindFilter, filter, len(filter), "shared subscription has an empty topic filter after the share name", "[MQTT-4.7.3-1]")
		}
		base = len(SharePrefix) + end + 1
		inner = filter[base:]
	}
	levelStart := 0
	for i := 0; i < len(inner); i++ {
		switch inner[i] {
		case '/':
			levelStart = i + 1
		case '+':
			if i != levelStart || (i+1 < len(inner) && inner[i+1] != '/') {
				return newError(kindFilter, filter, base+i, "'+' must occupy a whole level", "[MQTT-4.7.1-2]")
			}
		case '#':
			if i != levelStart || i != len(inner)-1 {
				return newError(kindFilter, filter, base+i, "'#' must be alone in the last level", "[MQTT-4.7.1-1]")
			}
		}
	}
	return nil
}

// validString applies the rules topic names and filters share.
func validString(kind, s string) error {
	switch {
	case len(s) == 0:
		return newError(kind, s, -1, "must be at least one character long", "[MQTT-4.7.3-1]")
	case len(s) > MaxLen:
		return newError(kind, s[:64], -1, "longer than 65535 bytes", "[MQTT-4.7.3-3]")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return newError(kind, s, i, "must not contain U+0000", "[MQTT-4.7.3-2]")
	}
	if !utf8.ValidString(s) {
		return newError(kind, s, invalidUTF8At(s, 0), "is not valid UTF-8", "[MQTT-1.5.4-1]")
	}
	return nil
}

func invalidUTF8At(s string, from int) int {
	for i := from; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return from
}

// SplitShared splits "$share/<name>/<filter>" into its share name and
// inner filter. ok is false when filter is not a shared subscription or
// its share name is empty or has no filter after it; it does not validate
// the inner filter.
func SplitShared(filter string) (name, inner string, ok bool) {
	if len(filter) < len(SharePrefix) || filter[:len(SharePrefix)] != SharePrefix {
		return "", filter, false
	}
	rest := filter[len(SharePrefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			if i == 0 || i == len(rest)-1 {
				return "", filter, false
			}
			return rest[:i], rest[i+1:], true
		}
	}
	return "", filter, false
}
