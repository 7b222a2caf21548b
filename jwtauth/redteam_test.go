package jwtauth

// The red-team round on tokens (issue 27), kept as regression tests:
// outsider attacks on token verification. Each
// test asserts the SAFE behaviour: a failure is a finding.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/acl"
)

func rtEnc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rtRaw builds header.payload from raw JSON strings (so duplicates and odd
// numbers survive) and signs it with sig (nil: empty signature).
func rtRaw(header, payload string, sig func(in []byte) []byte) string {
	in := rtEnc([]byte(header)) + "." + rtEnc([]byte(payload))
	if sig == nil {
		return in + "."
	}
	return in + "." + rtEnc(sig([]byte(in)))
}

func rtHS256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

func rtRS256(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return s
	}
}

func rtClaimsJSON(extra string) string {
	c := fmt.Sprintf(`{"sub":"dev-1","iss":"https://idp.example","aud":"mqtt","exp":%d,"iat":%d`, t0.Add(time.Hour).Unix(), t0.Unix())
	if extra != "" {
		c += "," + extra
	}
	return c + "}"
}

// alg none in every spelling, with and without a signature part.
func TestRTAlgNone(t *testing.T) {
	rk := testRSA(t)
	for _, cfg := range []Config{
		{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&rk.PublicKey}},
		{Algorithms: []string{"HS256", "RS256"}, Secret: secret, PublicKeys: []crypto.PublicKey{&rk.PublicKey}},
	} {
		a := newAuth(t, cfg)
		for _, alg := range []string{"none", "None", "NONE", "nOnE", "none ", "", "HS256\u0000"} {
			for _, sig := range []func([]byte) []byte{nil, rtHS256(secret), func([]byte) []byte { return []byte("x") }} {
				tok := rtRaw(fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, alg), rtClaimsJSON(""), sig)
				_, err := a.Verify(context.Background(), tok, "", "", t0)
				if alg == "HS256\u0000" && sig != nil && len(cfg.Secret) > 0 {
					// a real HMAC over the input: must still be refused as alg is not "HS256"
				}
				assert.Error(t, err, "alg %q", alg)
			}
		}
		// missing alg
		_, err := a.Verify(context.Background(), rtRaw(`{"typ":"JWT"}`, rtClaimsJSON(""), nil), "", "", t0)
		assert.Error(t, err)
	}
}

// HS256 "signed" with the RSA / EC public key in every encoding an
// attacker could guess, with RS256 only and with RS256+HS256 configured.
func TestRTAlgConfusion(t *testing.T) {
	rk, ek := testRSA(t), testEC(t)
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	pkcs1 := x509.MarshalPKCS1PublicKey(&rk.PublicKey)
	ecder, err := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	require.NoError(t, err)
	jwkJSON, _ := json.Marshal(jose.JSONWebKey{Key: &rk.PublicKey})
	ecJWK, _ := json.Marshal(jose.JSONWebKey{Key: &ek.PublicKey})
	candidates := map[string][]byte{
		"pkix pem":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"pkix pem trim": []byte(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))),
		"pkcs1 pem":     pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"pkix der":      der,
		"pkcs1 der":     pkcs1,
		"modulus":       rk.PublicKey.N.Bytes(),
		"jwk json":      jwkJSON,
		"ec pem":        pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecder}),
		"ec der":        ecder,
		"ec jwk":        ecJWK,
		"empty":         {},
	}
	cfgs := map[string]Config{
		"RS256 only":   {Algorithms: []string{"RS256", "ES256"}, PublicKeys: []crypto.PublicKey{&rk.PublicKey, &ek.PublicKey}},
		"RS256+HS256":  {Algorithms: []string{"RS256", "ES256", "HS256"}, Secret: secret, PublicKeys: []crypto.PublicKey{&rk.PublicKey, &ek.PublicKey}},
		"HS256 + JWKS": {Algorithms: []string{"RS256", "HS256"}, Secret: secret, PublicKeys: []crypto.PublicKey{&rk.PublicKey}},
	}
	for cn, cfg := range cfgs {
		a := newAuth(t, cfg)
		for name, key := range candidates {
			for _, hdr := range []string{
				`{"alg":"HS256","typ":"JWT"}`,
				`{"alg":"HS256","kid":"0"}`,
				`{"alg":"HS256","kid":"1"}`,
				// duplicate / case-variant alg: encoding/json (parseHeader) is
				// case-insensitive and last-wins; go-jose is exact.
				`{"alg":"RS256","ALG":"HS256"}`,
				`{"alg":"HS256","ALG":"RS256"}`,
				`{"alg":"HS256","Alg":"RS256","kid":"0"}`,
				`{"alg":"RS256","alg":"HS256"}`,
				`{"alg":"HS256","alg":"RS256"}`,
				`{"ALG":"HS256","alg":"RS256"}`,
			} {
				tok := rtRaw(hdr, rtClaimsJSON(""), rtHS256(key))
				r, err := a.Verify(context.Background(), tok, "", "", t0)
				assert.Error(t, err, "%s: %s with %s: %+v", cn, hdr, name, r)
			}
		}
	}
}

// A kid that names a key of another type, an index spelt oddly, or an
// HMAC "key".
func TestRTKidTricks(t *testing.T) {
	rk, ek := testRSA(t), testEC(t)
	a := newAuth(t, Config{Algorithms: []string{"RS256", "ES256", "HS256"}, Secret: secret,
		PublicKeys: []crypto.PublicKey{&rk.PublicKey, &ek.PublicKey}})
	other := testEC(t)
	for _, kid := range []string{"0", "1", "00", "+1", "-0", " 1", "1 ", "01", "2", "-1", "9999999999999999999999", "../0", "secret"} {
		// ES256 by an attacker key, naming each kid
		_, err := a.Verify(context.Background(), sign(t, jose.ES256, other, kid, claims()), "", "", t0)
		assert.Error(t, err, "kid %q", kid)
	}
	// An HS256 token naming the RSA key's kid is verified with the secret only.
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	tok := rtRaw(`{"alg":"HS256","kid":"0"}`, rtClaimsJSON(""), rtHS256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	_, err := a.Verify(context.Background(), tok, "", "", t0)
	assert.Error(t, err)
	// The legit ones still work.
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, ek, "1", claims()), "", "", t0)
	assert.NoError(t, err)
}

// jku / x5u / jwk / x5c header injection: nothing is fetched or trusted.
func TestRTHeaderKeyInjection(t *testing.T) {
	rk := testRSA(t)
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(404)
	}))
	defer evil.Close()
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	attJWK, _ := json.Marshal(jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: "att", Algorithm: "RS256", Use: "sig"})
	// self-signed cert for x5c
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &attacker.PublicKey, attacker)
	require.NoError(t, err)

	jwksSrv := newJWKSServer(t, jwk("k1", rk, jose.RS256))
	for cn, cfg := range map[string]Config{
		"keys": {Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&rk.PublicKey}},
		"jwks": {Algorithms: []string{"RS256"}, JWKSURL: jwksSrv.URL},
	} {
		a := newAuth(t, cfg)
		if cfg.JWKSURL != "" {
			waitLoaded(t, a)
		}
		for _, hdr := range []string{
			`{"alg":"RS256","jku":"` + evil.URL + `/jwks.json","kid":"att"}`,
			`{"alg":"RS256","x5u":"` + evil.URL + `/cert.pem"}`,
			`{"alg":"RS256","jwk":` + string(attJWK) + `}`,
			`{"alg":"RS256","jwk":` + string(attJWK) + `,"kid":"att"}`,
			`{"alg":"RS256","x5c":["` + base64.StdEncoding.EncodeToString(certDER) + `"]}`,
			`{"alg":"RS256","kid":"` + evil.URL + `"}`,
		} {
			tok := rtRaw(hdr, rtClaimsJSON(""), rtRS256(attacker))
			r, err := a.Verify(context.Background(), tok, "", "", t0)
			assert.Error(t, err, "%s %s → %+v", cn, hdr, r)
		}
	}
	assert.Zero(t, hits.Load(), "nothing fetched from a token-named URL")
}

// crit: the legitimate key signs a token with critical extensions; it
// must be refused. Case-variant "CRIT" must not hide "crit".
func TestRTCrit(t *testing.T) {
	rk := testRSA(t)
	a := newAuth(t, Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&rk.PublicKey}})
	for _, hdr := range []string{
		`{"alg":"RS256","crit":["exp"],"exp":1}`,
		`{"alg":"RS256","crit":["b64"],"b64":true}`,
		`{"alg":"RS256","crit":["x"],"CRIT":[]}`,
		`{"alg":"RS256","crit":["x"],"Crit":null}`,
		`{"alg":"RS256","crit":"x"}`,
		`{"alg":"RS256","crit":[]}`,
	} {
		tok := rtRaw(hdr, rtClaimsJSON(""), rtRS256(rk))
		_, err := a.Verify(context.Background(), tok, "", "", t0)
		t.Logf("%s → %v", hdr, err)
		if hdr != `{"alg":"RS256","crit":[]}` {
			assert.Error(t, err, hdr)
		}
	}
}

// Duplicate claims: whichever wins, exp/sub must be read consistently by
// the checks and the Result.
func TestRTDuplicateClaims(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret, Audience: "mqtt"})
	past, fut := t0.Add(-time.Hour).Unix(), t0.Add(time.Hour).Unix()
	for _, p := range []string{
		fmt.Sprintf(`{"sub":"dev-1","aud":"mqtt","exp":%d,"exp":%d}`, fut, past),
		fmt.Sprintf(`{"sub":"dev-1","aud":"mqtt","exp":%d,"EXP":%d}`, past, fut),
		fmt.Sprintf(`{"sub":"dev-1","aud":"mqtt","Exp":%d,"exp":%d}`, fut, past),
		fmt.Sprintf(`{"sub":"dev-1","aud":"mqtt","exp":%d,"nbf":%d,"NBF":%d}`, fut, fut, past),
		fmt.Sprintf(`{"sub":"dev-1","aud":"other","AUD":"mqtt","exp":%d}`, fut),
	} {
		tok := rtRaw(`{"alg":"HS256"}`, p, rtHS256(secret))
		r, err := a.Verify(context.Background(), tok, "", "", t0)
		t.Logf("%s → %v", p, err)
		assert.Error(t, err, "%s → %+v", p, r)
	}
	// two subs / case-variant subs
	tok := rtRaw(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"admin","sub":"dev-1","aud":"mqtt","exp":%d}`, fut), rtHS256(secret))
	_, err := a.Verify(context.Background(), tok, "", "", t0)
	assert.Error(t, err, "duplicate sub refused")
	tok = rtRaw(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"dev-1","SUB":"admin","aud":"mqtt","exp":%d}`, fut), rtHS256(secret))
	r, err := a.Verify(context.Background(), tok, "", "", t0)
	require.NoError(t, err)
	assert.Equal(t, "dev-1", r.Identity)
	// duplicate header keys
	tok = rtRaw(`{"alg":"HS256","kid":"a","kid":"b"}`, rtClaimsJSON(""), rtHS256(secret))
	_, err = a.Verify(context.Background(), tok, "", "", t0)
	t.Logf("duplicate kid in header: %v", err)
}

// Odd numbers and types in the time claims.
func TestRTNumericClaims(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret})
	for _, exp := range []string{`1e309`, `-1e309`, `-1`, `0`, `"9999999999"`, `null`, `true`, `[9999999999]`, `{"a":1}`,
		`9.3e18`, `4.7e18`, `1e400`, `NaN`, `9999999999999999999999999`, `-9223372036854775808`} {
		tok := rtRaw(`{"alg":"HS256"}`, `{"sub":"dev-1","exp":`+exp+`}`, rtHS256(secret))
		r, err := a.Verify(context.Background(), tok, "", "", t0)
		assert.Error(t, err, "exp %s → %+v", exp, r)
	}
	// Very far future is a valid (if silly) choice of the issuer: it must
	// come out as a real future time, not wrap to the past or to zero.
	tok := rtRaw(`{"alg":"HS256"}`, `{"sub":"dev-1","exp":4e18}`, rtHS256(secret))
	r, err := a.Verify(context.Background(), tok, "", "", t0)
	if err == nil {
		assert.True(t, r.Expires.After(t0), "far-future exp %v", r.Expires)
		assert.False(t, r.Expires.IsZero())
	}
	for _, nbf := range []string{`1e309`, `"0"`, `4.7e18`, `9.3e18`} {
		tok := rtRaw(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"dev-1","exp":%d,"nbf":%s}`, t0.Add(time.Hour).Unix(), nbf), rtHS256(secret))
		_, err := a.Verify(context.Background(), tok, "", "", t0)
		assert.Error(t, err, "nbf %s", nbf)
	}
	// iat a string / huge
	for _, iat := range []string{`"x"`, `9.3e18`} {
		tok := rtRaw(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"dev-1","exp":%d,"iat":%s}`, t0.Add(time.Hour).Unix(), iat), rtHS256(secret))
		_, err := a.Verify(context.Background(), tok, "", "", t0)
		assert.Error(t, err, "iat %s", iat)
	}
}

// aud as list / string / odd types, and skew on nbf/iat with leeway.
func TestRTAudienceAndSkew(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret, Audience: "mqtt", Leeway: 30 * time.Second})
	ok := func(aud any) error {
		_, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("aud", aud)), "", "", t0)
		return err
	}
	assert.NoError(t, ok("mqtt"))
	assert.NoError(t, ok([]any{"x", "mqtt"}))
	for _, bad := range []any{"MQTT", "mqtt ", []any{}, []any{"mqttx"}, "", []any{[]any{"mqtt"}}, 1} {
		assert.Error(t, ok(bad), "%v", bad)
	}
	// nbf within leeway ok, beyond refused; iat likewise.
	for _, tc := range []struct {
		k    string
		d    time.Duration
		want bool
	}{{"nbf", 29 * time.Second, true}, {"nbf", 31 * time.Second, false}, {"iat", 29 * time.Second, true}, {"iat", 31 * time.Second, false},
		{"exp", -29 * time.Second, true}, {"exp", -31 * time.Second, false}} {
		_, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims(tc.k, t0.Add(tc.d).Unix())), "", "", t0)
		assert.Equal(t, tc.want, err == nil, "%s %v: %v", tc.k, tc.d, err)
	}
	// A token accepted inside the leeway: what Expires does it report?
	r, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("exp", t0.Add(-20*time.Second).Unix())), "", "", t0)
	require.NoError(t, err)
	t.Logf("token expired 20s ago accepted (leeway 30s), Result.Expires = %v (now %v): already past", r.Expires, t0)
	assert.True(t, r.Expires.After(t0), "an accepted token reports an Expires that is already in the past: the session is 'expired' at CONNACK")
}

// Identity claims an outsider would love: wildcards, separators, NUL,
// control characters, invalid UTF-8, huge.
func TestRTIdentityShapes(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret})
	for _, sub := range []any{"", nil, 1, []any{"dev-1"}, map[string]any{"a": 1}, true} {
		_, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("sub", sub)), "", "", t0)
		assert.Error(t, err, "sub %#v", sub)
	}
	for _, sub := range []string{"a/b", "+", "#", "a\x00b", "admin\x00", "\x01\x7f", strings.Repeat("x", 70000)} {
		_, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("sub", sub)), "", "", t0)
		// MQTT usernames are UTF-8 without U+0000 and at most 65535 bytes;
		// other components key maps by username+"\x00"+clientID.
		if strings.ContainsRune(sub, 0) || len(sub) > 65535 {
			assert.Error(t, err, "identity %q is not an MQTT string (NUL / too long), yet Verify admits it", trunc(sub))
		} else {
			t.Logf("sub %q: %v", trunc(sub), err)
		}
	}
	// invalid UTF-8 in the raw payload
	tok := rtRaw(`{"alg":"HS256"}`, fmt.Sprintf("{\"sub\":\"adm\xffin\",\"exp\":%d}", t0.Add(time.Hour).Unix()), rtHS256(secret))
	r, err := a.Verify(context.Background(), tok, "", "", t0)
	t.Logf("invalid UTF-8 sub → %q, %v", r.Identity, err)
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// The acl claim's placeholders against identities and client IDs with
// '/', '+', '#', NUL or nothing: no other subtree.
func TestRTACLPlaceholders(t *testing.T) {
	p, err := CompileACL(map[string]any{"pub": []any{"devices/${clientid}/#", "users/%u/#"}, "sub": []any{"cmd/${clientid}", "cmd/%u/#"}})
	require.NoError(t, err)
	for _, c := range []acl.Client{{ID: "a/b", Username: "x/y"}, {ID: "+", Username: "#"}, {ID: "", Username: ""}, {ID: "a\x00", Username: "b\x00"}} {
		for _, topic := range []string{"devices/a/b/t", "devices/a/t", "devices/+/t", "devices//t", "users/x/y/t", "users/x/t", "users/#/t", "users//t"} {
			if acl.ValidTopic(topic) != nil {
				continue
			}
			assert.False(t, p.CheckMessage(c, acl.Publish, topic, 0, false).Allowed, "%+v %s", c, topic)
		}
		for _, f := range []string{"cmd/a/b", "cmd/+", "cmd/#", "cmd/x/y/#", "#"} {
			assert.False(t, p.Check(c, acl.Subscribe, f).Allowed, "%+v sub %s", c, f)
		}
	}
	// "$share": a claim for cmd/${clientid} does not let it join any group's "#".
	c := acl.Client{ID: "d1", Username: "dev-1"}
	for _, f := range []string{"$share/g/#", "$share/g/cmd/+", "$share/g/cmd/d1/#"} {
		assert.False(t, p.Check(c, acl.Subscribe, f).Allowed, f)
	}
	// Odd claim shapes are refused, never half-applied.
	for _, bad := range []any{
		map[string]any{"pub": []any{"a"}, "PUB": []any{"#"}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "#", "Permission": "deny"}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a", "qos": []any{1.5}}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a", "qos": 1.0}},
		[]any{map[string]any{"permission": "allow", "action": []any{"publish"}, "topic": "a"}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a\x00b"}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": ""}},
		map[string]any{"pub": []any{""}},
		map[string]any{"pub": nil},
		nil,
	} {
		_, err := CompileACL(bad)
		assert.Error(t, err, "%#v", bad)
	}
	// "qos": [] — what does an empty list mean? (EMQX: no QoS matches)
	pq, err := CompileACL([]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a", "qos": []any{}}})
	if err == nil {
		t.Logf(`"qos": [] allows QoS 2 publish: %v`, pq.CheckMessage(c, acl.Publish, "a", 2, false).Allowed)
	}
	// too many rules
	many := make([]any, 300)
	for i := range many {
		many[i] = "a/" + fmt.Sprint(i)
	}
	_, err = CompileACL(map[string]any{"pub": many})
	assert.Error(t, err)
}

// Huge and deeply nested tokens: bounded time, no panic.
func TestRTHugeAndNested(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret})
	deep := strings.Repeat("[", 8000) + strings.Repeat("]", 8000)
	start := time.Now()
	// nested in the (unsigned) header: parsed before the signature
	tok := rtRaw(`{"alg":"HS256","x":`+deep+`}`, rtClaimsJSON(""), rtHS256([]byte("wrong key but thirty-two bytes..")))
	_, err := a.Verify(context.Background(), tok, "", "", t0)
	assert.Error(t, err)
	// nested in signed claims
	tok = rtRaw(`{"alg":"HS256"}`, rtClaimsJSON(`"x":`+deep), rtHS256(secret))
	t.Logf("nested token %d bytes, IsToken %v", len(tok), IsToken(tok))
	_, err = a.Verify(context.Background(), tok, "", "", t0)
	t.Logf("nested claims: %v", err)
	// an acl claim nested deep
	tok = rtRaw(`{"alg":"HS256"}`, rtClaimsJSON(`"acl":`+strings.Repeat(`{"pub":`, 1000)+`[]`+strings.Repeat("}", 1000)), rtHS256(secret))
	_, err = a.Verify(context.Background(), tok, "", "", t0)
	assert.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	// over the bound: not a token (no opinion), never decided here
	big := rtRaw(`{"alg":"HS256"}`, rtClaimsJSON(`"pad":"`+strings.Repeat("x", 20000)+`"`), rtHS256(secret))
	assert.False(t, IsToken(big))
	id, _, _, err := a.Authenticate(context.Background(), "", []byte(big), "", nil, nil)
	assert.Empty(t, id)
	assert.NoError(t, err)
}

// JWKS content an attacker-controlled or broken provider might serve.
func TestRTJWKSContents(t *testing.T) {
	rk := testRSA(t)
	ek := testEC(t)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	mk := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)

	keys := []json.RawMessage{
		mk(jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "enc", Use: "enc"}),
		mk(jose.JSONWebKey{Key: rk, KeyID: "priv", Use: "sig"}), // a leaked private key: public part kept
		mk(jose.JSONWebKey{Key: &ek.PublicKey, Use: "sig"}),     // no kid
		mk(jose.JSONWebKey{Key: secret, KeyID: "oct", Use: "sig", Algorithm: "HS256"}),
		mk(jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "dup", Use: "sig"}),
		mk(jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "dup", Use: "sig"}),
		mk(jose.JSONWebKey{Key: edPriv.Public(), KeyID: "ed", Use: "sig"}),
		mk(jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak", Use: "sig"}),
		json.RawMessage(`{"kty":"RSA","kid":"e1","n":"` + rtEnc(rk.N.Bytes()) + `","e":"AQ"}`),
		json.RawMessage(`{"kty":"EC","kid":"offcurve","crv":"P-256","x":"` + rtEnc(make([]byte, 32)) + `","y":"` + rtEnc(append(make([]byte, 31), 7)) + `"}`),
		json.RawMessage(`{"kty":"RSA","kid":"alg-mismatch","alg":"HS256","n":"` + rtEnc(rk.N.Bytes()) + `","e":"AQAB"}`),
		json.RawMessage(`{"kty":"RSA","kid":"rs","alg":"RS256","use":"sig","n":"` + rtEnc(rk.N.Bytes()) + `","e":"AQAB"}`),
	}
	body, _ := json.Marshal(map[string]any{"keys": keys})
	m, err := parseJWKS(body, []string{"RS256", "ES256", "HS256", "EdDSA"})
	require.NoError(t, err)
	for kid, k := range m {
		t.Logf("kept kid %q: %T", kid, k)
		_, isBytes := k.([]byte)
		assert.False(t, isBytes, "an oct key from the JWKS is never an HMAC key")
		_, isPriv := k.(*rsa.PrivateKey)
		assert.False(t, isPriv)
	}
	assert.NotContains(t, m, "enc")
	assert.NotContains(t, m, "oct")
	assert.NotContains(t, m, "e1")
	assert.NotContains(t, m, "offcurve")
	assert.NotContains(t, m, "alg-mismatch")
	assert.Contains(t, m, "rs")

	// Through the Authenticator: an HS256 token signed with the JWKS's oct
	// key "secret" never verifies (HS uses Config.Secret only).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	other := []byte("another secret of at least thirty-two bytes!!")
	a := newAuth(t, Config{Algorithms: []string{"RS256", "ES256", "HS256"}, Secret: other, JWKSURL: srv.URL})
	waitLoaded(t, a)
	_, err = a.Verify(context.Background(), sign(t, jose.HS256, secret, "oct", claims()), "", "", t0)
	assert.Error(t, err)
	// dup kid: ES256 token with the EC key under "dup" — which one is kept?
	_, errEC := a.Verify(context.Background(), sign(t, jose.ES256, ek, "dup", claims()), "", "", t0)
	_, errRS := a.Verify(context.Background(), sign(t, jose.RS256, rk, "dup", claims()), "", "", t0)
	t.Logf("duplicate kid: ES256 %v / RS256 %v", errEC, errRS)
	// weak 1024-bit key from the JWKS
	_, err = a.Verify(context.Background(), sign(t, jose.RS256, weak, "weak", claims()), "", "", t0)
	t.Logf("1024-bit RSA key from JWKS: %v", err)
	// priv: its public half verifies tokens (the provider's own key): fine
	_, err = a.Verify(context.Background(), sign(t, jose.RS256, rk, "priv", claims()), "", "", t0)
	t.Logf("leaked private key's public half: %v", err)
}

// PEM keys that are weak: 512-bit RSA / e=1 from a key file.
func TestRTWeakPEMKeys(t *testing.T) {
	p1, _ := rand.Prime(rand.Reader, 256)
	p2, _ := rand.Prime(rand.Reader, 256)
	k512 := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p1, p2), E: 65537}}
	var err error
	der := x509.MarshalPKCS1PublicKey(&k512.PublicKey)
	keys, err := ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der}))
	t.Logf("512-bit RSA PEM: %d keys, %v", len(keys), err)
	if err == nil {
		a := newAuth(t, Config{Algorithms: []string{"RS256"}, PublicKeys: keys})
		in := rtEnc([]byte(`{"alg":"RS256"}`)) + "." + rtEnc([]byte(rtClaimsJSON("")))
		_, verr := a.Verify(context.Background(), in+"."+rtEnc(make([]byte, 64)), "", "", t0)
		t.Logf("512-bit key verify: %v (config accepted a key that can never verify, or a weak key is used)", verr)
	}
	// e = 1: "signature" = padded hash, forgeable by anyone.
	e1 := &rsa.PublicKey{N: testRSA(t).N, E: 1}
	der = x509.MarshalPKCS1PublicKey(e1)
	keys, err = ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der}))
	t.Logf("e=1 PEM: %v", err)
	if err == nil {
		a := newAuth(t, Config{Algorithms: []string{"RS256"}, PublicKeys: keys})
		// forge: with e=1, s^1 mod n == EM, so s = EM (the PKCS#1 v1.5 encoding)
		in := rtEnc([]byte(`{"alg":"RS256"}`)) + "." + rtEnc([]byte(rtClaimsJSON("")))
		h := sha256.Sum256([]byte(in))
		prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
		k := (e1.N.BitLen() + 7) / 8
		em := make([]byte, k)
		em[1] = 1
		tl := len(prefix) + len(h)
		for i := 2; i < k-tl-1; i++ {
			em[i] = 0xff
		}
		copy(em[k-tl:], prefix)
		copy(em[k-len(h):], h[:])
		_, verr := a.Verify(context.Background(), in+"."+rtEnc(em), "", "", t0)
		assert.Error(t, verr, "e=1 key: forged signature accepted")
		t.Logf("e=1 forged: %v", verr)
	}
	// EC point not on the curve in a PEM: x509 refuses
	bad := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	_ = bad
}

// A JWKS that hangs, or serves 10 MB, or drips: Verify is bounded by ctx,
// and a token with a known kid is never held behind a fetch.
func TestRTJWKSHangAndBig(t *testing.T) {
	k := testEC(t)
	var mode atomic.Int32 // 0 serve, 1 hang, 2 huge
	var hangs sync.WaitGroup
	stop := make(chan struct{})
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk("k1", k, jose.ES256)}})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch mode.Load() {
		case 1:
			hangs.Add(1)
			defer hangs.Done()
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case 2:
			w.Write([]byte(`{"keys":[`))
			chunk := []byte(strings.Repeat(" ", 1<<16))
			for i := 0; i < 160; i++ { // 10 MB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte(`]}`))
		default:
			w.Write(body)
		}
	}))
	defer srv.Close()
	defer close(stop)
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: srv.URL, FetchTimeout: 3 * time.Second})
	waitLoaded(t, a)

	mode.Store(1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	_, err := a.Verify(ctx, sign(t, jose.ES256, k, "unknown", claims()), "", "", t0)
	cancel()
	el := time.Since(start)
	assert.Less(t, el, time.Second, "bounded by ctx")
	t.Logf("unknown kid vs hanging JWKS: %v after %v (busy=%v)", err, el, err != nil && strings.Contains(err.Error(), "not available"))
	// while the fetch hangs, the known kid is verified at once
	start = time.Now()
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, k, "k1", claims()), "", "", t0)
	assert.NoError(t, err)
	assert.Less(t, time.Since(start), 200*time.Millisecond)
	// a flood of unknown kids while the fetch hangs: every one waits its ctx,
	// and the provider sees one request
	before := calls.Load()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			a.Verify(ctx, sign(t, jose.ES256, k, fmt.Sprint("u", i), claims()), "", "", t0)
		}()
	}
	wg.Wait()
	t.Logf("200 unknown kids during a hang: %d more requests", calls.Load()-before)
	assert.LessOrEqual(t, calls.Load()-before, int64(6))

	// wait for the hung fetch to time out, then serve 10 MB
	time.Sleep(3200 * time.Millisecond)
	mode.Store(2)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	_, err = a.Verify(ctx, sign(t, jose.ES256, k, "unknown2", claims()), "", "", t0)
	cancel()
	t.Logf("10 MB JWKS: %v", err)
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, k, "k1", claims()), "", "", t0)
	assert.NoError(t, err, "the last good keys stay")
}

// The JWKS fetch follows a redirect from https to plain http (the config
// insists on https for jwks_url; guardstack uses the default client).
func TestRTJWKSRedirectDowngrade(t *testing.T) {
	k := testEC(t)
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk("k1", k, jose.ES256)}})
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Write(body)
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	}))
	defer tlsSrv.Close()
	// the same client guardstack would get, but trusting the test CA
	hc := tlsSrv.Client()
	hc.Timeout = 5 * time.Second
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: tlsSrv.URL, HTTPClient: hc})
	require.Eventually(t, func() bool {
		return a.Stats().JWKSFetches > 0 && (a.Stats().JWKSKeys > 0 || a.Stats().JWKSFetchErrors > 0)
	}, 5*time.Second, 10*time.Millisecond)
	t.Logf("https JWKS redirected to http: %d plain-http hits, %d keys loaded", plainHits.Load(), a.Stats().JWKSKeys)
	assert.Zero(t, a.Stats().JWKSKeys, "keys that admit clients came over plain http after a redirect")
}
