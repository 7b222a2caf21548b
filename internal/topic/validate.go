package topic

import (
	"strconv"
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
	if _, err := ScanName(name, true); err != nil {
		return err
	}
	return nil
}

// ValidFilter checks a SUBSCRIBE topic filter: the string rules of
// ValidName, '#' only alone at the last level, '+' only alone at its
// level, and for "$share/<name>/<filter>" a non-empty share name free of
// '/', '+' and '#' followed by a non-empty valid filter.
func ValidFilter(filter string) error {
	if _, err := ScanFilter(filter, true); err != nil {
		return err
	}
	return nil
}

// ScanName is ValidName in one pass that also counts the levels, for a
// packet reader on its hot path. Unless allowControl, it also refuses the
// control characters U+0001–U+001F and U+007F–U+009F and Unicode
// non-characters, which the specification says SHOULD NOT be sent.
func ScanName(name string, allowControl bool) (levels int, err *Error) {
	if err := checkLength(kindName, name); err != nil {
		return 0, err
	}
	levels = 1
	for i := 0; i < len(name); {
		c := name[i]
		switch byteClass[c] {
		case plain:
			i++
			continue
		case slash:
			levels++
		case wildcard:
			return 0, newError(kindName, name, i, "wildcard '"+name[i:i+1]+"' is not allowed in a topic name", "[MQTT-4.7.0-1]")
		case control:
			if e := checkControl(kindName, name, i, allowControl); e != nil {
				return 0, e
			}
		case multibyte:
			size, e := checkRune(kindName, name, i, allowControl)
			if e != nil {
				return 0, e
			}
			i += size
			continue
		}
		i++
	}
	return levels, nil
}

// Byte classes for the scanners' fast path: most topic bytes are plain.
const (
	plain uint8 = iota
	slash
	wildcard
	control
	multibyte
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= utf8.RuneSelf:
			t[c] = multibyte
		case c == '/':
			t[c] = slash
		case c == '+' || c == '#':
			t[c] = wildcard
		case c < 0x20 || c == 0x7f:
			t[c] = control
		}
	}
	return
}()

// ScanFilter is ValidFilter in one pass that also counts the levels of
// the (inner) filter; see ScanName for allowControl.
func ScanFilter(filter string, allowControl bool) (levels int, err *Error) {
	if err := checkLength(kindFilter, filter); err != nil {
		return 0, err
	}
	base := 0
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
				return 0, newError(kindFilter, filter, len(SharePrefix)+i, "share name must not contain '+' or '#'", "[MQTT-4.8.2-2]")
			}
		}
		switch {
		case end < 0:
			return 0, newError(kindFilter, filter, -1, "shared subscription needs \"$share/<name>/<filter>\"", "[MQTT-4.8.2-2]")
		case end == 0:
			return 0, newError(kindFilter, filter, len(SharePrefix), "share name must be at least one character", "[MQTT-4.8.2-1]")
		case end == len(rest)-1:
			return 0, newError(kindFilter, filter, len(filter), "shared subscription has an empty topic filter after the share name", "[MQTT-4.7.3-1]")
		}
		base = len(SharePrefix) + end + 1
	}
	levels = 1
	levelStart := base
	for i := 0; i < len(filter); {
		c := filter[i]
		if c >= utf8.RuneSelf {
			size, e := checkRune(kindFilter, filter, i, allowControl)
			if e != nil {
				return 0, e
			}
			i += size
			continue
		}
		if i >= base {
			switch c {
			case '/':
				levels++
				levelStart = i + 1
			case '+':
				if i != levelStart || (i+1 < len(filter) && filter[i+1] != '/') {
					return 0, newError(kindFilter, filter, i, "'+' must occupy a whole level", "[MQTT-4.7.1-2]")
				}
			case '#':
				if i != levelStart || i != len(filter)-1 {
					return 0, newError(kindFilter, filter, i, "'#' must be alone in the last level", "[MQTT-4.7.1-1]")
				}
			}
		}
		if c < 0x20 || c == 0x7f {
			if e := checkControl(kindFilter, filter, i, allowControl); e != nil {
				return 0, e
			}
		}
		i++
	}
	return levels, nil
}

// checkLength applies the length rules names and filters share.
func checkLength(kind, s string) *Error {
	switch {
	case len(s) == 0:
		return newError(kind, s, -1, "must be at least one character long", "[MQTT-4.7.3-1]")
	case len(s) > MaxLen:
		return newError(kind, s[:64], -1, "longer than 65535 bytes", "[MQTT-4.7.3-3]")
	}
	return nil
}

// checkControl judges an ASCII control byte at s[i].
func checkControl(kind, s string, i int, allowControl bool) *Error {
	if s[i] == 0 {
		return newError(kind, s, i, "must not contain U+0000", "[MQTT-4.7.3-2]")
	}
	if !allowControl {
		return newError(kind, s, i, "contains a control character", "§1.5.4")
	}
	return nil
}

// checkRune judges the multi-byte sequence at s[i] and returns its size.
func checkRune(kind, s string, i int, allowControl bool) (int, *Error) {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, newError(kind, s, i, "is not valid UTF-8", "[MQTT-1.5.4-1]")
	}
	if !allowControl && (r <= 0x9f || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe) {
		return 0, newError(kind, s, i, "contains a control character or non-character", "§1.5.4")
	}
	return size, nil
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
