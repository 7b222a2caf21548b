package acl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseError is a problem in a policy file, with the line to look at.
type ParseError struct {
	Source string // file name, "" when parsing an io.Reader
	Line   int
	Msg    string
}

func (e *ParseError) Error() string {
	src := e.Source
	if src == "" {
		src = "acl"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", src, e.Line, e.Msg)
	}
	return src + ": " + e.Msg
}

// Priorities ParseMosquitto gives its rules: mosquitto consults a
// client's own list (its user block, or the anonymous block) before the
// pattern list, and a pattern cannot override it.
const (
	MosquittoUserPriority    = 1
	MosquittoPatternPriority = 0
)

// ParseMosquitto reads a mosquitto 2.0 acl_file. Check then answers
// Publish and Receive exactly as mosquitto 2.0 does for the same file:
//
//   - "topic [read|write|readwrite|deny] <topic>" lines before the first
//     "user" line apply only to clients without a username; after a
//     "user <name>" line they apply to that user only.
//   - "pattern [access] <topic>" lines apply to every client, with "%u"
//     and "%c" standing for the username and client ID, and only after the
//     client's own list found nothing (priority MosquittoPatternPriority
//     against MosquittoUserPriority).
//   - The access word is optional and defaults to readwrite; read means
//     Subscribe and Receive, write means Publish, deny denies all three.
//     Within a list a matching deny wins over any allow.
//   - A topic may contain spaces; '#' starts a comment only as the first
//     character of a line; words are separated by single spaces (a tab
//     is not a separator, as in mosquitto). No rule matches: deny.
//
// Where mosquitto 2.0 is unsafe this parser is not compatible, on
// purpose: a placeholder matches only a whole level and only an identity
// free of '/', '+', '#' and U+0000, so user "a/b" never reaches user
// "a"'s "pattern readwrite data/%u/#" subtree (mosquitto substitutes the
// string and lets it in), and a placeholder inside a level ("data/%u-in")
// is an error rather than a substitution. mosquitto never checks
// SUBSCRIBE against acl_file; Check does, with read rules (see the
// package doc).
//
// A file with no rules is an error, never an empty policy: a truncated
// or mistaken file must not silently change what clients may do
// (CVE-2018-12550).
func ParseMosquitto(r io.Reader) (*Policy, error) {
	return parseMosquitto(r, "")
}

func parseMosquitto(r io.Reader, source string) (*Policy, error) {
	var rules []Rule
	fail := func(line int, format string, args ...any) (*Policy, error) {
		return nil, &ParseError{Source: source, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var user string
	inUserBlock := false
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r\n\v\f")
		if text == "" || text[0] == '#' {
			continue
		}
		keyword, rest := nextWord(text)
		switch keyword {
		case "":
			continue
		case "user":
			name := strings.Trim(rest, " \t")
			if name == "" {
				return fail(line, "\"user\" needs a username")
			}
			user, inUserBlock = name, true
		case "topic", "pattern":
			access, effect, filter, err := parseAccessAndTopic(rest)
			if err != nil {
				return fail(line, "%s", err)
			}
			rule := Rule{Effect: effect, Access: access, Filter: filter, Source: source, Line: line, Text: text}
			if keyword == "topic" {
				rule.Literal = true // mosquitto substitutes only in pattern lines
				rule.Priority = MosquittoUserPriority
				if inUserBlock {
					rule.Subject = User(user)
				} else {
					rule.Subject = Anonymous()
				}
			} else {
				if err := checkPatternLevels(filter); err != nil {
					return fail(line, "%s", err)
				}
				rule.Subject = Anyone()
				rule.Priority = MosquittoPatternPriority
				rule.SafeIdentityOnly = true
			}
			if err := rule.validate(); err != nil {
				return fail(line, "%s", err)
			}
			rules = append(rules, rule)
		default:
			hint := ""
			if strings.ContainsAny(keyword, "\t") {
				hint = " (words must be separated by spaces; mosquitto does not accept tabs)"
			}
			return fail(line, "unknown keyword %q: a line starts with topic, pattern, user or '#'%s", keyword, hint)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fail(line+1, "line longer than 1 MiB")
		}
		return nil, &ParseError{Source: source, Msg: "reading: " + err.Error()}
	}
	if len(rules) == 0 {
		return fail(0, "no rules: an empty ACL file is refused rather than treated as \"deny all\" or \"allow all\"; write the rules you mean")
	}
	return NewPolicy(rules, Options{})
}

// nextWord splits off the first space-separated word, skipping leading
// spaces as strtok does.
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// parseAccessAndTopic reads "[access] topic" the way mosquitto does: with
// one word it is the topic and access is readwrite; with more, the first
// word is the access and the rest of the line, trimmed, the topic.
func parseAccessAndTopic(rest string) (Access, Effect, string, error) {
	word, topic := nextWord(rest)
	if word == "" {
		return 0, 0, "", fmt.Errorf("missing topic")
	}
	if topic == "" {
		return All, Allow, word, nil
	}
	topic = strings.Trim(topic, " \t")
	switch word {
	case "read":
		return Read, Allow, topic, nil
	case "write":
		return Write, Allow, topic, nil
	case "readwrite":
		return All, Allow, topic, nil
	case "deny":
		return All, Deny, topic, nil
	}
	return 0, 0, "", fmt.Errorf("access %q: want read, write, readwrite or deny", word)
}

// checkPatternLevels refuses "%u"/"%c" inside a level: mosquitto 2.0
// substitutes them anywhere, this engine only as a whole level.
func checkPatternLevels(filter string) error {
	var it levels
	it.s = filter
	for {
		l, more := it.next()
		if (strings.Contains(l, "%u") || strings.Contains(l, "%c")) && l != "%u" && l != "%c" {
			return fmt.Errorf("placeholder inside the level %q: %%u and %%c must be a whole level (e.g. \"devices/%%u/in\", not \"devices/%%u-in\")", l)
		}
		if !more {
			return nil
		}
	}
}
