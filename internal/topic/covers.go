package topic

// A filter is a sequence of levels, each a literal or '+', optionally
// followed by a final '#'. Write it r1/…/rk[/#]. Without '#' it matches
// topics of exactly k levels; with '#' it matches topics of at least
// max(k,1) levels (a topic always has one level, and "a/#" matches "a").
// On top of that, a filter whose first level is a wildcard excludes every
// topic whose first level starts with '$'. Covers and Intersects are exact
// decisions over those sets, not approximations.

// Covers reports whether every topic that filter can match is also matched
// by rule: the question a SUBSCRIBE check asks of an allow rule. '+' never
// covers '#' at the same level, and a leading wildcard never covers a
// '$' topic. Shared-subscription filters are compared by their inner
// filter; a shared rule covers only shared filters of the same share name.
// Malformed input covers nothing.
func Covers(rule, filter string) bool {
	r, f, ok := unshare(rule, filter)
	if !ok {
		return false
	}
	r, f = normalize(r), normalize(f)
	rl, rHash := shape(r)
	fl, fHash := shape(f)
	if rl < 0 || fl < 0 {
		return false
	}
	// A '$' topic set is covered only by a literal first level.
	if fl > 0 && f[0] == '$' && (rl == 0 || r[0] == '+') {
		return false
	}
	if !rHash {
		// rule matches exactly rl levels: filter must too.
		if fHash || fl != rl {
			return false
		}
		return levelsCover(r, f, rl, fl)
	}
	// rule = r1..rk/#: matches topics of >= max(rl,1) levels.
	if !fHash {
		// filter matches exactly fl (>= 1) levels.
		if rl > fl {
			return false
		}
		return levelsCover(r, f, rl, fl)
	}
	// Both end in '#': filter matches topics of >= max(fl,1) levels, with
	// free levels after fl. rl may exceed fl by one only when fl == 0
	// (a topic has at least one level), and every rule level beyond fl
	// must then be '+'.
	if rl > fl && !(fl == 0 && rl == 1) {
		return false
	}
	return levelsCover(r, f, rl, fl)
}

// levelsCover compares the first rl levels of rule against the filter's
// levels: a rule level covers a filter level when it is '+' or the same
// literal. Rule levels beyond the filter's fl levels must be '+'.
func levelsCover(r, f string, rl, fl int) bool {
	var ri, fi levelIter
	ri.s, fi.s = r, f
	for i := 0; i < rl; i++ {
		rlev := ri.next()
		if i >= fl {
			if rlev != "+" {
				return false
			}
			continue
		}
		flev := fi.next()
		if rlev == "+" {
			continue
		}
		if flev == "+" || rlev != flev {
			return false
		}
	}
	return true
}

// Intersects reports whether some topic matches both filters: the
// question a SUBSCRIBE check asks of a deny rule. Shared-subscription
// filters are compared by their inner filter. Malformed input intersects
// nothing.
func Intersects(a, b string) bool {
	a, aok := innerFilter(a)
	b, bok := innerFilter(b)
	if !aok || !bok {
		return false
	}
	a, b = normalize(a), normalize(b)
	al, aHash := shape(a)
	bl, bHash := shape(b)
	if al < 0 || bl < 0 {
		return false
	}
	// '$' topics: a leading wildcard on one side excludes them, a '$'
	// literal on the other side admits nothing else.
	if dollarLiteral(a, al) && leadingWildcard(b, bl) || dollarLiteral(b, bl) && leadingWildcard(a, al) {
		return false
	}
	switch {
	case !aHash && !bHash:
		if al != bl {
			return false
		}
	case aHash && !bHash:
		if bl < al {
			return false
		}
	case !aHash && bHash:
		if al < bl {
			return false
		}
	}
	n := al
	if bl < n {
		n = bl
	}
	var ai, bi levelIter
	ai.s, bi.s = a, b
	for i := 0; i < n; i++ {
		x, y := ai.next(), bi.next()
		if x != "+" && y != "+" && x != y {
			return false
		}
	}
	return true
}

func dollarLiteral(f string, levels int) bool { return levels > 0 && f[0] == '$' }

func leadingWildcard(f string, levels int) bool { return levels == 0 || f[0] == '+' }

// unshare strips "$share/<name>/" from both sides. A shared rule applies
// only to shared filters of the same name.
func unshare(rule, filter string) (string, string, bool) {
	rn, rInner, rShared := SplitShared(rule)
	fn, fInner, fShared := SplitShared(filter)
	if rShared {
		if !fShared || rn != fn {
			return "", "", false
		}
		return rInner, fInner, true
	}
	if !fShared && isSharePrefixed(filter) || isSharePrefixed(rule) {
		return "", "", false // "$share/" without a name or filter
	}
	return rule, fInner, true
}

// innerFilter strips "$share/<name>/"; ok is false for a malformed share.
func innerFilter(f string) (string, bool) {
	if _, inner, ok := SplitShared(f); ok {
		return inner, true
	}
	return f, !isSharePrefixed(f)
}

func isSharePrefixed(f string) bool {
	return len(f) >= len(SharePrefix) && f[:len(SharePrefix)] == SharePrefix
}

// normalize rewrites "/#" as "/+/#". The two match the same topics:
// "/#" would also match the one-level topic "", but the empty string is
// not a topic [MQTT-4.7.3-1]. Every other filter's set is unaffected by
// that exclusion, so the level arithmetic of Covers and Intersects stays
// exact after this one rewrite.
func normalize(f string) string {
	if f == "/#" {
		return "/+/#"
	}
	return f
}

// shape validates a filter and returns its number of non-'#' levels and
// whether it ends in '#'. levels is -1 for a malformed filter.
func shape(f string) (levels int, hash bool) {
	if len(f) == 0 || len(f) > MaxLen {
		return -1, false
	}
	levels = 1
	start := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '/':
			levels++
			start = i + 1
		case '+':
			if i != start || (i+1 < len(f) && f[i+1] != '/') {
				return -1, false
			}
		case '#':
			if i != start || i != len(f)-1 {
				return -1, false
			}
			return levels - 1, true
		}
	}
	return levels, false
}

// levelIter yields the levels of a string split on '/' without allocating.
type levelIter struct {
	s   string
	pos int
}

func (it *levelIter) next() string {
	s := it.s[it.pos:]
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			it.pos += i + 1
			return s[:i]
		}
	}
	it.pos = len(it.s)
	return s
}
