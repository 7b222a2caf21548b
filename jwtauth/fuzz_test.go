package jwtauth

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/mqttguard/mqttguard/acl"
)

// FuzzVerify: whatever arrives as a password, Verify answers without
// panicking, and accepts nothing that was not signed with the secret.
func FuzzVerify(f *testing.F) {
	valid := sign(f, jose.HS256, secret, "", claims())
	f.Add(valid)
	f.Add(b64(map[string]any{"alg": "none"}) + "." + b64(claims()) + ".")
	f.Add(b64(map[string]any{"alg": "HS256", "crit": []string{"x"}}) + ".e30.")
	f.Add("a.b.c")
	f.Add("eyJ9.e30.")
	a, err := New(Config{Algorithms: []string{"HS256"}, Secret: secret, ACLClaim: "acl"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := a.Verify(context.Background(), tok, "", "dev-1", t0)
		if err == nil && tok != valid {
			t.Fatalf("accepted a token not signed here: %q → %+v", tok, r)
		}
	})
}

// FuzzCompileACL: any JSON as the acl claim compiles or is refused; what
// compiles answers checks.
func FuzzCompileACL(f *testing.F) {
	f.Add(`{"pub": ["sensors/${clientid}/#"], "sub": ["cmd/%u"], "all": []}`)
	f.Add(`[{"permission": "allow", "action": "publish", "topic": "a/+", "qos": [0, 1], "retain": "all"}]`)
	f.Add(`[{"permission": "deny", "action": "all", "topic": "eq a/%c"}]`)
	f.Add(`{"pub": [""]}`)
	f.Fuzz(func(t *testing.T, claim string) {
		var v any
		if json.Unmarshal([]byte(claim), &v) != nil {
			return
		}
		p, err := CompileACL(v)
		if err != nil {
			return
		}
		c := acl.Client{ID: "dev-1", Username: "u"}
		for _, topic := range []string{"a/b", "sensors/dev-1/x", "cmd/u", "$SYS/x"} {
			p.CheckMessage(c, acl.Publish, topic, 1, false)
			p.Check(c, acl.Subscribe, topic)
		}
	})
}
