package topic

import (
	"strings"
	"unicode/utf8"
)

// The reference implementations below are deliberately naive: split on
// '/', recurse, enumerate. The real functions are checked against them.

// refStructural reports whether f has a valid wildcard structure.
func refStructural(f string) bool {
	if f == "" {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "+":
		case l == "#":
			if i != len(levels)-1 {
				return false
			}
		case strings.ContainsAny(l, "+#"):
			return false
		}
	}
	return true
}

// refUnshare strips "$share/<name>/"; ok is false for a malformed share.
func refUnshare(f string) (name, inner string, shared, ok bool) {
	if !strings.HasPrefix(f, "$share/") {
		return "", f, false, true
	}
	rest := f[len("$share/"):]
	i := strings.Index(rest, "/")
	if i <= 0 || i == len(rest)-1 {
		return "", "", true, false
	}
	return rest[:i], rest[i+1:], true, true
}

func refValidFilter(f string) bool {
	if f == "" || len(f) > 65535 || !utf8.ValidString(f) || strings.ContainsRune(f, 0) {
		return false
	}
	name, inner, shared, ok := refUnshare(f)
	if !ok || (shared && strings.ContainsAny(name, "+#")) {
		return false
	}
	return refStructural(inner)
}

func refValidName(t string) bool {
	return t != "" && len(t) <= 65535 && utf8.ValidString(t) && !strings.ContainsRune(t, 0) && !strings.ContainsAny(t, "+#")
}

func refMatch(filter, topic string) bool {
	if filter == "" || topic == "" || strings.ContainsAny(topic, "+#") {
		return false
	}
	_, inner, _, ok := refUnshare(filter)
	if !ok || !refStructural(inner) {
		return false
	}
	f, t := strings.Split(inner, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(t[0], "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	return refMatchLevels(f, t)
}

func refMatchLevels(f, t []string) bool {
	if len(f) == 0 {
		return len(t) == 0
	}
	if f[0] == "#" {
		return true
	}
	if len(t) == 0 {
		return false
	}
	if f[0] == "+" || f[0] == t[0] {
		return refMatchLevels(f[1:], t[1:])
	}
	return false
}

// universe returns every topic of 1..maxLevels levels whose levels are
// literals of the given filters, a fresh name and a fresh '$' name. A
// topic that separates two filters can always be rewritten into this
// universe (see the package comment in covers.go).
func universe(maxLevels int, filters ...string) []string {
	seen := map[string]bool{"fresh": true, "$fresh": true}
	alphabet := []string{"fresh", "$fresh"}
	for _, f := range filters {
		for _, l := range strings.Split(f, "/") {
			if l != "+" && l != "#" && !seen[l] {
				seen[l] = true
				alphabet = append(alphabet, l)
			}
		}
	}
	var out []string
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		for _, l := range alphabet {
			t := l
			if depth > 0 {
				t = prefix + "/" + l
			}
			if t != "" {
				out = append(out, t)
			}
			if depth+1 < maxLevels {
				grow(t, depth+1)
			}
		}
	}
	grow("", 0)
	return out
}

func levelCount(f string) int { return strings.Count(f, "/") + 1 }

func refCovers(rule, filter string) bool {
	rn, r, rShared, rok := refUnshare(rule)
	fn, f, fShared, fok := refUnshare(filter)
	if !rok || !fok || (rShared && (!fShared || rn != fn)) {
		return false
	}
	if !refStructural(r) || !refStructural(f) {
		return false
	}
	for _, t := range universe(max(levelCount(r), levelCount(f))+1, r, f) {
		if refMatch(f, t) && !refMatch(r, t) {
			return false
		}
	}
	return true
}

func refIntersects(a, b string) bool {
	_, a, _, aok := refUnshare(a)
	_, b, _, bok := refUnshare(b)
	if !aok || !bok || !refStructural(a) || !refStructural(b) {
		return false
	}
	for _, t := range universe(max(levelCount(a), levelCount(b))+1, a, b) {
		if refMatch(a, t) && refMatch(b, t) {
			return true
		}
	}
	return false
}
