package acl

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nativePolicy = `{
  "default": "deny",
  "rules": [
    {"subject": "user:dashboard", "effect": "allow", "access": "read", "filter": "sensors/#"},
    {"subject": "anyone", "effect": "allow", "access": "publish", "filter": "sensors/%u/#", "qos": [0, 1]},
    {"subject": "ip:10.0.0.0/8", "effect": "deny", "access": "all", "filter": "admin/#", "priority": 10},
    {"subject": "anyone", "effect": "deny", "access": ["publish"], "filter": "#", "retain": true}
  ]
}`

func TestParseJSON(t *testing.T) {
	p, err := ParseJSON(strings.NewReader(nativePolicy))
	require.NoError(t, err)
	require.Equal(t, 4, p.Len())
	dash := Client{ID: "d", Username: "dashboard"}
	s1 := Client{ID: "s", Username: "s1", Addr: netip.MustParseAddr("10.0.0.5")}
	assert.True(t, p.Check(dash, Subscribe, "sensors/+/temp").Allowed)
	assert.True(t, p.CheckMessage(s1, Publish, "sensors/s1/temp", 1, false).Allowed)
	assert.False(t, p.CheckMessage(s1, Publish, "sensors/s1/temp", 1, true).Allowed, "retained is denied")
	assert.False(t, p.CheckMessage(s1, Publish, "sensors/s1/temp", 2, false).Allowed, "QoS 2 is not allowed")
	d := p.Check(s1, Receive, "admin/x")
	assert.False(t, d.Allowed)
	require.NotNil(t, d.Rule)
	assert.Equal(t, 6, d.Rule.Line)
	assert.Contains(t, d.String(), `"subject": "ip:10.0.0.0/8"`)
}

func TestParseJSONErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, "acl:1: unexpected end of input"},
		{`[]`, "want a JSON object"},
		{`{"rules": []}`, "no rules"},
		{`{"default": "maybe", "rules": []}`, `"default" is "maybe"`},
		{"{\"rules\": [\n {\"subject\": \"anyone\", \"effect\": \"allow\", \"access\": \"read\", \"filter\": \"a\"},\n {\"subject\": \"anyone\", \"effect\": \"permit\", \"access\": \"read\", \"filter\": \"a\"}\n]}", `acl:3: rule 2: effect "permit"`},
		{"{\"rules\": [\n\n {\"subject\": \"who\", \"effect\": \"allow\", \"access\": \"read\", \"filter\": \"a\"}]}", `acl:3: rule 1: subject "who"`},
		{`{"rules": [{"subject": "anyone", "effect": "allow", "access": "fly", "filter": "a"}]}`, `access "fly"`},
		{`{"rules": [{"subject": "anyone", "effect": "allow", "access": "read", "filter": "a/#/b"}]}`, `invalid topic filter`},
		{`{"rules": [{"subject": "anyone", "effect": "allow", "access": "read", "filter": "a", "colour": 1}]}`, `unknown field "colour"`},
		{`{"rules": [{"subject": "anyone", "effect": "allow", "access": "read", "filter": "a", "qos": [3]}]}`, `qos 3`},
		{"{\"rules\": [\n{\"subject\": 7}]}", `acl:2: field "subject"`},
		{"{\n\"rules\": [,]}", "acl:2: JSON syntax"},
		{`{"extra": 1}`, `unknown field "extra"`},
	}
	for _, c := range cases {
		_, err := ParseJSON(strings.NewReader(c.in))
		require.Error(t, err, c.in)
		assert.Contains(t, err.Error(), c.want, c.in)
		var pe *ParseError
		assert.True(t, errors.As(err, &pe), "%T", err)
	}
}

func TestLoadFileAndHolder(t *testing.T) {
	dir := t.TempDir()
	mosq := filepath.Join(dir, "acl.conf")
	native := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(mosq, []byte("topic readwrite a/#\n"), 0o600))
	require.NoError(t, os.WriteFile(native, []byte(nativePolicy), 0o600))

	p, err := LoadFile(mosq)
	require.NoError(t, err)
	h := NewHolder(p)
	anon := Client{ID: "x"}
	assert.True(t, h.Check(anon, Publish, "a/b").Allowed)
	assert.Equal(t, mosq+":1: topic readwrite a/#", h.Check(anon, Publish, "a/b").Rule.String())

	// A broken file keeps the old policy.
	require.NoError(t, os.WriteFile(mosq, []byte("topic readwrite a/#\nnonsense\n"), 0o600))
	_, err = h.Reload(mosq)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kept the previous policy")
	assert.Contains(t, err.Error(), mosq+":2:")
	assert.Same(t, p, h.Policy())

	// An emptied file too.
	require.NoError(t, os.WriteFile(mosq, nil, 0o600))
	_, err = h.Reload(mosq)
	require.Error(t, err)
	assert.True(t, h.Check(anon, Publish, "a/b").Allowed)

	// A missing file names itself.
	_, err = h.Reload(filepath.Join(dir, "gone.conf"))
	assert.ErrorContains(t, err, "gone.conf")

	// A good reload swaps and returns the old policy.
	old, err := h.Reload(native)
	require.NoError(t, err)
	assert.Same(t, p, old)
	assert.False(t, h.Check(anon, Publish, "a/b").Allowed)
	assert.Same(t, h.Policy(), h.Swap(nil), "Swap(nil) changes nothing")
}

func FuzzParseJSON(f *testing.F) {
	f.Add(nativePolicy)
	f.Add(`{"default":"allow","rules":[{"subject":"cn:x","effect":"deny","access":["subscribe","receive"],"filter":"$share/g/#","literal":true}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParseJSON(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %T %v", err, err)
			}
			return
		}
		if p.Len() == 0 {
			t.Fatal("a parsed policy must have rules")
		}
		p.Check(Client{ID: "c", Username: "u", Addr: netip.MustParseAddr("10.0.0.1")}, Subscribe, "a/#")
	})
}
