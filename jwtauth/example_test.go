package jwtauth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/jwtauth"
)

// A device's token, signed by its identity provider (here with an HMAC
// secret; RS256 or ES256 and a JWKS in production).
func deviceToken(secret []byte, exp time.Time) string {
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	tok, _ := jwt.Signed(s).Claims(map[string]any{
		"sub": "sensor-42", "aud": "mqtt", "exp": exp.Unix(),
		"acl": map[string]any{"pub": []string{"sensors/${clientid}/#"}, "sub": []string{"cmd/${clientid}"}},
	}).Serialize()
	return tok
}

func ExampleAuthenticator_Verify() {
	secret := []byte("an HMAC secret of at least 32 bytes, from a file")
	a, err := jwtauth.New(jwtauth.Config{
		Algorithms: []string{"HS256"}, // pinned: the token's header never chooses
		Secret:     secret,
		Audience:   "mqtt",
		Claims:     map[string]string{"sub": "%c"}, // the token is this client ID's
	})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tok := deviceToken(secret, now.Add(time.Hour))

	r, err := a.Verify(context.Background(), tok, "", "sensor-42", now)
	fmt.Println(r.Identity, r.Expires, err)
	me := acl.Client{ID: "sensor-42", Username: r.Identity}
	fmt.Println(r.ACL.Check(me, acl.Publish, "sensors/sensor-42/temp").Allowed, r.ACL.Check(me, acl.Publish, "sensors/other/temp").Allowed)

	_, err = a.Verify(context.Background(), tok, "", "sensor-7", now)
	fmt.Println(err)
	_, err = a.Verify(context.Background(), tok, "", "sensor-42", now.Add(2*time.Hour))
	fmt.Println(err)
	// Output:
	// sensor-42 2026-12-02 13:00:00 +0000 UTC <nil>
	// true false
	// token: claim "sub" is not "sensor-7"
	// token: expired at 2026-12-02T13:00:00Z
}

func ExampleCompileACL() {
	p, err := jwtauth.CompileACL([]any{
		map[string]any{"permission": "deny", "action": "publish", "topic": "sensors/${clientid}/config"},
		map[string]any{"permission": "allow", "action": "publish", "topic": "sensors/${clientid}/#"},
	})
	if err != nil {
		panic(err)
	}
	c := acl.Client{ID: "sensor-42", Username: "sensor-42"}
	for _, topic := range []string{"sensors/sensor-42/temp", "sensors/sensor-42/config", "sensors/sensor-7/temp"} {
		fmt.Println(topic, p.Check(c, acl.Publish, topic).Allowed)
	}
	// Output:
	// sensors/sensor-42/temp true
	// sensors/sensor-42/config false
	// sensors/sensor-7/temp false
}
