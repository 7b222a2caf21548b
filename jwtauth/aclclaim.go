package jwtauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mqttguard/mqttguard/acl"
)

// maxACLRules bounds the rules one token may carry.
const maxACLRules = 256

// CompileACL compiles an "acl" claim (as encoding/json decoded it) in
// either of EMQX's formats into a policy that denies what it does not
// allow:
//
//   - {"pub": [filters], "sub": [filters], "all": [filters]}: publish,
//     subscribe (and receive) or both are allowed on those filters;
//   - [{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all",
//     "topic": filter, "qos": [levels], "retain": true|false|"all"}, …]:
//     decided in order, the first rule that matches winning.
//
// A filter may use %u, %c, ${username} and ${clientid} as whole levels
// (package acl never lets an identity with '/', '+' or '#' satisfy
// them); "eq " before a filter without wildcards turns its placeholders
// off. Unknown fields,
// values and invalid filters are errors: a token whose permissions
// cannot be read is refused, never half-applied.
func CompileACL(claim any) (*acl.Policy, error) {
	p, _, err := compileACL(claim)
	return p, err
}

// compileACL is CompileACL that also says whether a rule names topics
// by the client ID, which only a token tied to one may do.
func compileACL(claim any) (_ *acl.Policy, byClientID bool, _ error) {
	var rules []acl.Rule
	switch c := claim.(type) {
	case map[string]any:
		for key, v := range c {
			access, ok := map[string]acl.Access{"pub": acl.Publish, "sub": acl.Read, "all": acl.All}[key]
			if !ok {
				return nil, false, fmt.Errorf("unknown key %q: want pub, sub or all", key)
			}
			filters, err := stringList(v, key)
			if err != nil {
				return nil, false, err
			}
			for _, f := range filters {
				r, err := rule(acl.Allow, access, f)
				if err != nil {
					return nil, false, err
				}
				rules = append(rules, r)
			}
		}
	case []any:
		for i, v := range c {
			r, err := listRule(v, len(c)-i)
			if err != nil {
				return nil, false, fmt.Errorf("rule %d: %w", i, err)
			}
			rules = append(rules, r)
		}
	default:
		return nil, false, errors.New("want an object of pub/sub/all lists or a list of rules")
	}
	if len(rules) > maxACLRules {
		return nil, false, fmt.Errorf("%d rules: at most %d", len(rules), maxACLRules)
	}
	for _, r := range rules {
		if !r.Literal && namesClientID(r.Filter) {
			byClientID = true
		}
	}
	p, err := acl.NewPolicy(rules, acl.Options{})
	return p, byClientID, err
}

// namesClientID reports whether a filter has a client-ID placeholder
// level.
func namesClientID(filter string) bool {
	for _, level := range strings.Split(filter, "/") {
		if level == "%c" || level == "${clientid}" {
			return true
		}
	}
	return false
}

// listRule reads one rule of the list format; prio makes the earlier
// rules win.
func listRule(v any, prio int) (acl.Rule, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return acl.Rule{}, errors.New("not an object")
	}
	var effect acl.Effect
	var access acl.Access
	var topic string
	var r acl.Rule
	for key, val := range m {
		s, isString := val.(string)
		switch key {
		case "permission":
			switch s {
			case "allow":
				effect = acl.Allow
			case "deny":
				effect = acl.Deny
			default:
				return r, fmt.Errorf("permission %v: want allow or deny", val)
			}
		case "action":
			a, ok := map[string]acl.Access{"publish": acl.Publish, "subscribe": acl.Read, "all": acl.All}[s]
			if !ok || !isString {
				return r, fmt.Errorf("action %v: want publish, subscribe or all", val)
			}
			access = a
		case "topic":
			if !isString {
				return r, fmt.Errorf("topic %v: want a string", val)
			}
			topic = s
		case "qos":
			levels, ok := val.([]any)
			if !ok {
				return r, fmt.Errorf("qos %v: want a list of 0, 1 and 2", val)
			}
			if len(levels) == 0 {
				return r, errors.New("qos []: list the levels allowed (an empty list would mean any)")
			}
			var qs []byte
			for _, l := range levels {
				f, ok := l.(float64)
				if !ok || (f != 0 && f != 1 && f != 2) {
					return r, fmt.Errorf("qos %v: want a list of 0, 1 and 2", val)
				}
				qs = append(qs, byte(f))
			}
			r.QoS = acl.QoS(qs...)
		case "retain":
			switch val {
			case true:
				r.Retain = acl.RetainedOnly
			case false:
				r.Retain = acl.NotRetained
			case "all":
			default:
				return r, fmt.Errorf("retain %v: want true, false or \"all\"", val)
			}
		default:
			return r, fmt.Errorf("unknown field %q", key)
		}
	}
	if effect == 0 || access == 0 || topic == "" {
		return r, errors.New("permission, action and topic are required")
	}
	base, err := rule(effect, access, topic)
	if err != nil {
		return r, err
	}
	base.QoS, base.Retain, base.Priority = r.QoS, r.Retain, prio
	return base, nil
}

// rule is a rule for the session's client, with EMQX's "eq " prefix.
func rule(effect acl.Effect, access acl.Access, filter string) (acl.Rule, error) {
	r := acl.Rule{Subject: acl.Anyone(), Effect: effect, Access: access, Filter: filter}
	if lit, ok := strings.CutPrefix(filter, "eq "); ok {
		// EMQX compares an "eq" filter as a string: a wildcard in it
		// would match only itself there, and everything here.
		if strings.ContainsAny(lit, "+#") {
			return r, fmt.Errorf("topic %q: an \"eq\" filter with a wildcard is not supported (it would match more here than in EMQX)", filter)
		}
		r.Filter, r.Literal = lit, true
	}
	if err := acl.ValidFilter(r.Filter); err != nil {
		return r, fmt.Errorf("topic %q: %w", filter, err)
	}
	return r, nil
}

func stringList(v any, key string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of topic filters", key)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: %v is not a topic filter", key, e)
		}
		out = append(out, s)
	}
	return out, nil
}
