package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseJSON reads the native policy format, which says everything the
// engine can do: priorities, subjects by client ID, prefix, CIDR and TLS
// identity, QoS and retain conditions.
//
//	{
//	  "default": "deny",
//	  "rules": [
//	    {"subject": "user:dashboard", "effect": "allow", "access": "read", "filter": "sensors/#"},
//	    {"subject": "anyone", "effect": "allow", "access": "publish", "filter": "sensors/%u/#", "qos": [0, 1]},
//	    {"subject": "ip:10.0.0.0/8", "effect": "deny", "access": "all", "filter": "admin/#", "priority": 10},
//	    {"subject": "anyone", "effect": "deny", "access": "publish", "filter": "#", "retain": true}
//	  ]
//	}
//
// "default" is "deny" (the default) or "allow". Each rule has a subject
// (see ParseSubject), an effect ("allow" or "deny"), an access (a name or
// a list of names: publish, subscribe, receive, read, write, readwrite,
// all), a filter, and optionally "priority" (an integer, default 0),
// "qos" (a list of levels), "retain" (true: retained messages only;
// false: non-retained only) and "literal" (true turns placeholders off).
// Unknown fields are errors. Errors carry the line of the rule.
func ParseJSON(r io.Reader) (*Policy, error) {
	return parseJSON(r, "")
}

type jsonRule struct {
	Subject  string          `json:"subject"`
	Effect   string          `json:"effect"`
	Access   json.RawMessage `json:"access"`
	Filter   string          `json:"filter"`
	Priority int             `json:"priority"`
	QoS      []byte          `json:"qos"`
	Retain   *bool           `json:"retain"`
	Literal  bool            `json:"literal"`
}

func parseJSON(r io.Reader, source string) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, 256<<20))
	if err != nil {
		return nil, &ParseError{Source: source, Msg: "reading: " + err.Error()}
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}) }
	fail := func(off int64, format string, args ...any) (*Policy, error) {
		return nil, &ParseError{Source: source, Line: lineAt(off), Msg: fmt.Sprintf(format, args...)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	syntax := func(err error) (*Policy, error) {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fail(se.Offset, "JSON syntax: %s", se.Error())
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fail(te.Offset, "field %q: %s", te.Field, te.Error())
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(int64(len(data)), "unexpected end of input")
		}
		return fail(dec.InputOffset(), "%s", err)
	}
	if tok, err := dec.Token(); err != nil {
		return syntax(err)
	} else if tok != json.Delim('{') {
		return fail(dec.InputOffset(), "want a JSON object with \"default\" and \"rules\"")
	}
	var opts Options
	var rules []Rule
	sawRules := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		key, _ := tok.(string)
		switch key {
		case "default":
			var d string
			if err := dec.Decode(&d); err != nil {
				return syntax(err)
			}
			switch d {
			case "deny":
			case "allow":
				opts.DefaultAllow = true
			default:
				return fail(dec.InputOffset(), "\"default\" is %q; want \"deny\" or \"allow\"", d)
			}
		case "rules":
			sawRules = true
			if tok, err := dec.Token(); err != nil {
				return syntax(err)
			} else if tok != json.Delim('[') {
				return fail(dec.InputOffset(), "\"rules\" must be a list")
			}
			for dec.More() {
				start := skipSpace(data, dec.InputOffset())
				var jr jsonRule
				if err := dec.Decode(&jr); err != nil {
					return syntax(err)
				}
				rule, err := jr.rule()
				if err != nil {
					return fail(start, "rule %d: %s", len(rules)+1, err)
				}
				rule.Source, rule.Line = source, lineAt(start)
				rule.Text = string(bytes.TrimSpace(data[start:dec.InputOffset()]))
				if err := rule.validate(); err != nil {
					return fail(start, "rule %d: %s", len(rules)+1, err)
				}
				rules = append(rules, rule)
			}
			if _, err := dec.Token(); err != nil {
				return syntax(err)
			}
		default:
			return fail(dec.InputOffset(), "unknown field %q; want \"default\" or \"rules\"", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	if !sawRules || len(rules) == 0 {
		return fail(0, "no rules: an empty policy is refused; write the rules you mean")
	}
	return NewPolicy(rules, opts)
}

// skipSpace moves past whitespace and the comma between list elements.
func skipSpace(data []byte, off int64) int64 {
	for int(off) < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
			continue
		}
		break
	}
	return off
}

func (jr *jsonRule) rule() (Rule, error) {
	var r Rule
	var err error
	if r.Subject, err = ParseSubject(jr.Subject); err != nil {
		return r, err
	}
	switch jr.Effect {
	case "allow":
		r.Effect = Allow
	case "deny":
		r.Effect = Deny
	default:
		return r, fmt.Errorf("effect %q: want \"allow\" or \"deny\"", jr.Effect)
	}
	if r.Access, err = parseAccessJSON(jr.Access); err != nil {
		return r, err
	}
	if jr.Filter == "" {
		return r, fmt.Errorf("missing \"filter\"")
	}
	r.Filter, r.Priority, r.Literal = jr.Filter, jr.Priority, jr.Literal
	for _, q := range jr.QoS {
		if q > 2 {
			return r, fmt.Errorf("qos %d: levels are 0, 1 and 2", q)
		}
		r.QoS |= QoS(q)
	}
	if jr.Retain != nil {
		r.Retain = NotRetained
		if *jr.Retain {
			r.Retain = RetainedOnly
		}
	}
	return r, nil
}

func parseAccessJSON(raw json.RawMessage) (Access, error) {
	if len(raw) == 0 {
		return 0, fmt.Errorf("missing \"access\"")
	}
	var names []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		names = []string{one}
	} else if err := json.Unmarshal(raw, &names); err != nil {
		return 0, fmt.Errorf("\"access\" must be a name or a list of names")
	}
	var a Access
	for _, n := range names {
		switch strings.ToLower(n) {
		case "publish", "write":
			a |= Publish
		case "subscribe":
			a |= Subscribe
		case "receive":
			a |= Receive
		case "read":
			a |= Read
		case "readwrite", "all":
			a |= All
		default:
			return 0, fmt.Errorf("access %q: want publish, subscribe, receive, read, write, readwrite or all", n)
		}
	}
	if a == 0 {
		return 0, fmt.Errorf("\"access\" is empty")
	}
	return a, nil
}
