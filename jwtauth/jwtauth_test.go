package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/acl"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSA is one 2048-bit key for the package's tests (generating one
// takes a while).
func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
	})
	return rsaKey
}

func testEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// sign makes a compact token of claims with key under alg, naming kid
// ("" for none).
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// claims are a valid token's for device "dev-1" at t0.
func claims(extra ...any) map[string]any {
	c := map[string]any{"sub": "dev-1", "iss": "https://idp.example", "aud": "mqtt", "exp": t0.Add(time.Hour).Unix(), "iat": t0.Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
		} else {
			c[extra[i].(string)] = extra[i+1]
		}
	}
	return c
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newAuth(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a
}

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// Every way a token is refused names its reason.
func TestRefusals(t *testing.T) {
	rk, ek := testRSA(t), testEC(t)
	a := newAuth(t, Config{Algorithms: []string{"RS256", "ES256"}, PublicKeys: []crypto.PublicKey{&rk.PublicKey, &ek.PublicKey},
		Issuer: "https://idp.example", Audience: "mqtt", Leeway: 30 * time.Second})
	pubPEM, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	confused := func() string {
		// HS256 "signed" with the RSA public key (PEM) as the HMAC secret:
		// the classic algorithm confusion.
		head := b64(map[string]any{"alg": "HS256", "typ": "JWT"}) + "." + b64(claims())
		m := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubPEM}))
		m.Write([]byte(head))
		return head + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	other, _ := rsa.GenerateKey(rand.Reader, 1024)

	for _, tc := range []struct {
		name, token, want string
	}{
		{"alg none", b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".", `"alg": "none"`},
		{"alg None", b64(map[string]any{"alg": "None"}) + "." + b64(claims()) + ".", `"alg": "none"`},
		{"HS256 with the RSA public key", confused, `algorithm "HS256" is not one of`},
		{"expired", sign(t, jose.RS256, rk, "", claims("exp", t0.Add(-time.Minute).Unix())), "expired at 2026-12-02T11:59:00Z"},
		{"expired within the leeway", sign(t, jose.RS256, rk, "", claims("exp", t0.Add(-10*time.Second).Unix())), ""},
		{"not yet valid", sign(t, jose.RS256, rk, "", claims("nbf", t0.Add(time.Minute).Unix())), "not valid before"},
		{"issued in the future", sign(t, jose.RS256, rk, "", claims("iat", t0.Add(time.Hour).Unix())), "issued in the future"},
		{"wrong audience", sign(t, jose.RS256, rk, "", claims("aud", "other")), `audience [other] does not include "mqtt"`},
		{"wrong issuer", sign(t, jose.RS256, rk, "", claims("iss", "https://evil.example")), `issuer "https://evil.example" is not`},
		{"no exp", sign(t, jose.RS256, rk, "", claims("exp", nil)), `no "exp"`},
		{"no sub", sign(t, jose.RS256, rk, "", claims("sub", nil)), `identity claim "sub" is missing`},
		{"another key", sign(t, jose.RS256, other, "", claims()), "signature does not verify"},
		{"a kid nobody has", sign(t, jose.RS256, rk, "7", claims()), `key id "7" is not one`},
		{"an ECDSA key named for RS256", sign(t, jose.RS256, rk, "1", claims()), `key "1" is a ECDSA key; it does not verify RS256`},
		{"an algorithm not configured", sign(t, jose.ES384, mustEC384(t), "", claims()), `algorithm "ES384" is not one of`},
		{"valid RS256", sign(t, jose.RS256, rk, "0", claims()), ""},
		{"valid ES256 without kid", sign(t, jose.ES256, ek, "", claims()), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := a.Verify(context.Background(), tc.token, "", "dev-1", t0)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "dev-1", r.Identity)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, r.Identity)
		})
	}
	// With HS256 configured, the HMAC key is the secret, never a public key.
	h := newAuth(t, Config{Algorithms: []string{"RS256", "HS256"}, Secret: secret, PublicKeys: []crypto.PublicKey{&rk.PublicKey}})
	_, err = h.Verify(context.Background(), confused, "", "", t0)
	assert.ErrorContains(t, err, "signature does not verify")
	_, err = h.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims()), "", "", t0)
	assert.NoError(t, err)
}

func mustEC384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	return k
}

func TestIdentityAndClaims(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret, Claims: map[string]string{"sub": "%c", "scope": "mqtt"}})
	tok := sign(t, jose.HS256, secret, "", claims("scope", []any{"read", "mqtt"}))
	r, err := a.Verify(context.Background(), tok, "dev-1", "dev-1", t0)
	require.NoError(t, err)
	assert.Equal(t, Result{Identity: "dev-1", Expires: t0.Add(time.Hour)}, r)

	_, err = a.Verify(context.Background(), tok, "admin", "dev-1", t0)
	assert.ErrorContains(t, err, `it is "dev-1"'s, not the username "admin"'s`, "a token never claims another username")
	_, err = a.Verify(context.Background(), tok, "", "dev-2", t0)
	assert.ErrorContains(t, err, `claim "sub" is not "dev-2"`, "tied to one client ID")
	_, err = a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("scope", "read")), "", "dev-1", t0)
	assert.ErrorContains(t, err, `claim "scope" is not "mqtt"`)

	// Authenticate: what is not a token has no opinion; a token is decided.
	id, _, _, err := a.Authenticate(context.Background(), "dev-1", []byte("hunter2"), "", nil, nil)
	assert.Empty(t, id)
	assert.NoError(t, err, "a plain password is the next authenticator's")
	_, _, _, err = a.Authenticate(context.Background(), "dev-1", []byte(b64(map[string]string{"alg": "HS256"})+".e30.AAAA"), "", nil, nil)
	assert.Error(t, err, "anything shaped like a token is decided here, never tried as a password")
}

// jwksServer serves a JWK Set that a test can change, counting requests.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	set   jose.JSONWebKeySet
	fail  bool
	calls atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	s := &jwksServer{set: jose.JSONWebKeySet{Keys: keys}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(s.set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(fail bool, keys ...jose.JSONWebKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
	if keys != nil {
		s.set.Keys = keys
	}
}

func jwk(kid string, priv crypto.Signer, alg jose.SignatureAlgorithm) jose.JSONWebKey {
	return jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

func waitLoaded(t *testing.T, a *Authenticator) {
	require.Eventually(t, func() bool { return a.Stats().JWKSKeys > 0 }, 5*time.Second, 5*time.Millisecond)
}

// Rotation: a token signed with a key the provider added since the last
// fetch is verified at once (its unknown kid fetches the set again).
func TestJWKSRotation(t *testing.T) {
	k1, k2 := testEC(t), testEC(t)
	srv := newJWKSServer(t, jwk("k1", k1, jose.ES256))
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: srv.URL})
	waitLoaded(t, a)
	_, err := a.Verify(context.Background(), sign(t, jose.ES256, k1, "k1", claims()), "", "", t0)
	require.NoError(t, err)

	srv.setKeys(false, jwk("k1", k1, jose.ES256), jwk("k2", k2, jose.ES256))
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, k2, "k2", claims()), "", "", t0)
	require.NoError(t, err, "the new kid is picked up")
	assert.Equal(t, uint64(1), a.Stats().UnknownKIDFetches)

	// The provider goes down: the keys fetched last stay in force.
	srv.setKeys(true)
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, k2, "k3", claims()), "", "", t0)
	assert.ErrorContains(t, err, `key id "k3" is not one`)
	_, err = a.Verify(context.Background(), sign(t, jose.ES256, k1, "k1", claims()), "", "", t0)
	assert.NoError(t, err, "the last good keys")
	assert.Positive(t, a.Stats().JWKSFetchErrors)
}

// A flood of tokens with forged kids fetches the set at most
// UnknownKIDRefreshes times a minute: the broker is no amplifier
// against the identity provider.
func TestUnknownKIDFloodIsBounded(t *testing.T) {
	k := testEC(t)
	srv := newJWKSServer(t, jwk("k1", k, jose.ES256))
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: srv.URL, UnknownKIDRefreshes: 3})
	waitLoaded(t, a)
	before := srv.calls.Load()
	const forged = 1000
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range forged {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := sign(t, jose.ES256, k, "forged-"+string(rune('a'+i%26))+time.Duration(i).String(), claims())
			if _, err := a.Verify(context.Background(), tok, "", "", t0); err != nil {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	fetched := srv.calls.Load() - before
	t.Logf("%d forged kids: %d fetches of the key set, %d refused", forged, fetched, refused.Load())
	assert.LessOrEqual(t, fetched, int64(3))
	assert.Positive(t, fetched, "an unknown kid does fetch")
	assert.Equal(t, int64(forged), refused.Load())
	assert.Equal(t, uint64(forged), a.Stats().Refused)
}

// Until the first fetch lands, a token that needs the set is "busy",
// not refused; the wait is the caller's context.
func TestKeysNotFetchedYetIsBusy(t *testing.T) {
	k := testEC(t)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: srv.URL, FetchTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Verify(ctx, sign(t, jose.ES256, k, "k1", claims()), "", "", t0)
	assert.ErrorIs(t, err, ErrKeysUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the Guard answers busy and counts nothing")
	assert.Equal(t, uint64(1), a.Stats().Busy)
}

func TestACLClaim(t *testing.T) {
	c := acl.Client{ID: "dev-1", Username: "dev-1"}
	allowed := func(p *acl.Policy, a acl.Access, topic string) bool {
		return p.CheckMessage(c, a, topic, 1, false).Allowed
	}

	old, err := CompileACL(map[string]any{"pub": []any{"sensors/${clientid}/#"}, "sub": []any{"cmd/%u"}, "all": []any{"shared/x"}})
	require.NoError(t, err)
	assert.True(t, allowed(old, acl.Publish, "sensors/dev-1/temp"))
	assert.False(t, allowed(old, acl.Publish, "sensors/dev-2/temp"))
	assert.True(t, allowed(old, acl.Receive, "cmd/dev-1"))
	assert.False(t, allowed(old, acl.Publish, "cmd/dev-1"))
	assert.True(t, allowed(old, acl.Publish, "shared/x"))
	assert.False(t, allowed(old, acl.Publish, "other"), "what the claim does not allow is denied")

	list, err := CompileACL([]any{
		map[string]any{"permission": "deny", "action": "publish", "topic": "sensors/${clientid}/secret"},
		map[string]any{"permission": "allow", "action": "publish", "topic": "sensors/${clientid}/#", "qos": []any{0.0, 1.0}, "retain": false},
		map[string]any{"permission": "allow", "action": "all", "topic": "eq literal/%c"},
		map[string]any{"permission": "deny", "action": "all", "topic": "#"},
	})
	require.NoError(t, err)
	assert.False(t, allowed(list, acl.Publish, "sensors/dev-1/secret"), "the first matching rule wins")
	assert.True(t, allowed(list, acl.Publish, "sensors/dev-1/temp"))
	assert.False(t, list.CheckMessage(c, acl.Publish, "sensors/dev-1/temp", 2, false).Allowed, "QoS 2 is not listed")
	assert.False(t, list.CheckMessage(c, acl.Publish, "sensors/dev-1/temp", 1, true).Allowed, "retained is not allowed")
	assert.True(t, allowed(list, acl.Publish, "literal/%c"), `"eq": placeholders off`)
	assert.False(t, allowed(list, acl.Publish, "literal/dev-1"))

	// An identity with a wildcard or a '/' never satisfies a placeholder.
	sneaky := acl.Client{ID: "#", Username: "a/b"}
	assert.False(t, old.CheckMessage(sneaky, acl.Publish, "sensors/x/temp", 0, false).Allowed)
	assert.False(t, old.CheckMessage(sneaky, acl.Receive, "cmd/a/b", 0, false).Allowed)

	for _, bad := range []any{
		"pub", map[string]any{"pub": "a/#"}, map[string]any{"push": []any{"a"}}, map[string]any{"pub": []any{"a/#/b"}},
		[]any{map[string]any{"permission": "allow", "action": "publish"}},
		[]any{map[string]any{"permission": "maybe", "action": "publish", "topic": "a"}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a", "qos": []any{3.0}}},
		[]any{map[string]any{"permission": "allow", "action": "publish", "topic": "a", "colour": "red"}},
		[]any{map[string]any{"permission": "allow", "action": "all", "topic": "eq a/#"}},
	} {
		_, err := CompileACL(bad)
		assert.Error(t, err, "%v", bad)
	}
}

// A token's acl claim reaches Verify's Result; a broken one refuses the
// token.
func TestVerifyACL(t *testing.T) {
	a := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret})
	r, err := a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("acl", map[string]any{"pub": []any{"a/#"}})), "", "", t0)
	require.NoError(t, err)
	require.NotNil(t, r.ACL)
	assert.Equal(t, 1, r.ACL.Len())
	_, err = a.Verify(context.Background(), sign(t, jose.HS256, secret, "", claims("acl", map[string]any{"pub": "a/#"})), "", "", t0)
	assert.ErrorContains(t, err, `token: claim "acl": pub: want a list`)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Algorithms is empty"},
		{Config{Algorithms: []string{"none"}, Secret: secret}, `"none" is not a signature algorithm`},
		{Config{Algorithms: []string{"HS256"}}, "HS256 needs Config.Secret"},
		{Config{Algorithms: []string{"HS256"}, Secret: []byte("short")}, "at least 32"},
		{Config{Algorithms: []string{"RS256"}}, "no keys"},
		{Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{"x"}}, "is not an RSA, ECDSA or Ed25519"},
		{Config{Algorithms: []string{"HS256"}, Secret: secret, Leeway: time.Hour}, "Leeway"},
	} {
		_, err := New(tc.cfg)
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := ParsePublicKeys([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	assert.ErrorContains(t, err, "never a private key")
	der, _ := x509.MarshalPKIXPublicKey(&testEC(t).PublicKey)
	keys, err := ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

// A CONNECT waits for a JWKS fetch its unknown kid started at most
// FetchWait; the fetch goes on and lands for the next one.
func TestFetchWaitBoundsAConnect(t *testing.T) {
	k := testEC(t)
	slow := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			<-slow // the refresh an unknown kid causes hangs until the test lets it go
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk("k1", k, jose.ES256)}})
	}))
	defer srv.Close()
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: srv.URL, FetchWait: 30 * time.Millisecond})
	waitLoaded(t, a)
	_, err := a.Verify(context.Background(), sign(t, jose.ES256, k, "k9", claims()), "", "", t0)
	assert.ErrorIs(t, err, ErrKeysUnavailable, "busy after FetchWait, not a wait as long as the provider's")
	close(slow)
}

// Regressions from the red-team round on tokens.
func TestTokenRedTeamRegressions(t *testing.T) {
	ctx := context.Background()
	byID := claims("acl", map[string]any{"pub": []any{"devices/${clientid}/#"}})
	unbound := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret})
	_, err := unbound.Verify(ctx, sign(t, jose.HS256, secret, "", byID), "", "victim-7", t0)
	assert.ErrorContains(t, err, "names topics by client ID, and no claim ties the token to one",
		"the holder would choose whose subtree ${clientid} opens")
	bound := newAuth(t, Config{Algorithms: []string{"HS256"}, Secret: secret, Claims: map[string]string{"sub": "%c"}, Leeway: 30 * time.Second})
	r, err := bound.Verify(ctx, sign(t, jose.HS256, secret, "", byID), "", "dev-1", t0)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Hour+30*time.Second), r.Expires, "valid until the leeway it was admitted with runs out")
	_, err = bound.Verify(ctx, sign(t, jose.HS256, secret, "", byID), "", "victim-7", t0)
	assert.ErrorContains(t, err, `claim "sub" is not "victim-7"`)

	for _, id := range []string{"admin\x00x", "\x01\x7f"} {
		_, err := unbound.Verify(ctx, sign(t, jose.HS256, secret, "", claims("sub", id)), "", "", t0)
		assert.ErrorContains(t, err, "identity claim", "%q", id)
	}
	_, err = CompileACL([]any{map[string]any{"permission": "allow", "action": "all", "topic": "a", "qos": []any{}}})
	assert.ErrorContains(t, err, "qos []", "an empty list is not 'any QoS'")

	crit := b64(map[string]any{"alg": "HS256", "CRIT": []string{"exp"}}) + "." + b64(claims()) + ".sig"
	_, err = unbound.Verify(ctx, crit, "", "", t0)
	assert.Error(t, err)
	_, err = unbound.Verify(ctx, sign(t, jose.HS256, secret, "", claims("exp", "tomorrow")), "", "", t0)
	assert.ErrorContains(t, err, "the claims cannot be read", "not a signature failure")

	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	_, err = ParsePublicKeys(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	assert.ErrorContains(t, err, "an RSA key of 1024 bits: at least 2048")

	assert.True(t, unbound.Signed("", []byte(sign(t, jose.HS256, secret, "", claims())), ""))
	assert.False(t, unbound.Signed("dev-1", []byte("hunter2"), ""))
}

// Keys asked for over https are never taken over plain http after a
// redirect, whatever HTTP client was given.
func TestJWKSRedirectToHTTPIsRefused(t *testing.T) {
	k := testEC(t)
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk("k1", k, jose.ES256)}})
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	}))
	defer tlsSrv.Close()
	a := newAuth(t, Config{Algorithms: []string{"ES256"}, JWKSURL: tlsSrv.URL, HTTPClient: tlsSrv.Client()})
	require.Eventually(t, func() bool { return a.Stats().JWKSFetchErrors > 0 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, a.Stats().JWKSKeys)
}
