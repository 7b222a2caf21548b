package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mqttguard/mqttguard/acl"
)

// maxTokenBytes bounds what is parsed as a token; MQTT passwords are up
// to 64 KiB, a real JWT a few hundred bytes to a few KiB.
const maxTokenBytes = 16 << 10

// ErrKeysUnavailable is Verify's answer when the key a token needs
// cannot be known yet (the JWKS was never fetched, or a refresh did not
// end before ctx): the broker is busy, the token is not refused. It
// errors.Is context.DeadlineExceeded, so the Guard answers "server busy"
// and counts nothing against the client.
var ErrKeysUnavailable = fmt.Errorf("jwtauth: the identity provider's keys are not available yet: %w", context.DeadlineExceeded)

// Result is what a valid token says.
type Result struct {
	// Identity is the claim Config.IdentityClaim: the client's username
	// for the ACL and the rate limits.
	Identity string
	// Expires is "exp" (zero when Config.AllowNoExpiry admitted a token
	// without one).
	Expires time.Time
	// ACL is the session's own ACL from Config.ACLClaim, nil without one.
	ACL *acl.Policy
}

// Authenticator verifies tokens. It is safe for concurrent use; Close
// stops its JWKS refreshes.
type Authenticator struct {
	cfg  Config
	algs []jose.SignatureAlgorithm
	jwks *jwks // nil without Config.JWKSURL
	// bindsClientID: a claim must equal the client ID (Config.Claims
	// with %c), so an acl claim may name topics by it.
	bindsClientID bool
	stats         struct{ verified, refused, busy atomic.Uint64 }
}

// New checks cfg and returns an Authenticator; with a JWKSURL it starts
// fetching the key set (Close stops it). It does not wait for the first
// fetch: tokens that need those keys are answered ErrKeysUnavailable
// until it lands.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	a := &Authenticator{cfg: cfg}
	for _, v := range cfg.Claims {
		if strings.Contains(v, "%c") {
			a.bindsClientID = true
		}
	}
	for _, x := range cfg.Algorithms {
		a.algs = append(a.algs, jose.SignatureAlgorithm(x))
	}
	if cfg.JWKSURL != "" {
		a.jwks = newJWKS(&a.cfg)
	}
	return a, nil
}

// Close stops the JWKS refreshes and waits for a fetch in flight.
func (a *Authenticator) Close() {
	if a.jwks != nil {
		a.jwks.close()
	}
}

// IsToken reports whether s has a JWS compact token's form (three
// base64url parts, the first a JSON object): what Authenticate decides
// instead of passing on to the next authenticator.
func IsToken(s string) bool {
	if len(s) > maxTokenBytes || strings.Count(s, ".") != 2 {
		return false
	}
	h, _, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	return err == nil && len(b) > 1 && b[0] == '{'
}

// Authenticate is the Guard's Authenticator: the token from the password
// (or, with Config.FromUsername, the username). Credentials that are not
// a token get no opinion; see AuthenticateSession for the ACL.
func (a *Authenticator) Authenticate(ctx context.Context, username string, password []byte, method string, data []byte, cert *x509.Certificate) (identity string, expires time.Time, cont []byte, err error) {
	identity, expires, _, err = a.AuthenticateSession(ctx, "", username, password, method, data, cert)
	return identity, expires, nil, err
}

// AuthenticateSession is Authenticate with the client ID (for %c in
// Config.Claims) and the session's ACL from the token's claim (nil
// without one). The Guard calls it when an authenticator has it.
func (a *Authenticator) AuthenticateSession(ctx context.Context, clientID, username string, password []byte, method string, _ []byte, _ *x509.Certificate) (identity string, expires time.Time, rules *acl.Policy, err error) {
	if method != "" {
		return "", time.Time{}, nil, nil // an MQTT 5 method's authenticator decides
	}
	tok, user := string(password), username
	if a.cfg.FromUsername {
		tok, user = username, ""
	}
	if !IsToken(tok) {
		return "", time.Time{}, nil, nil
	}
	r, err := a.Verify(ctx, tok, user, clientID, time.Now())
	if err != nil {
		return "", time.Time{}, nil, err
	}
	return r.Identity, r.Expires, r.ACL, nil
}

// Signed reports whether the credentials are a token this Authenticator
// decides (the Guard's signedCredentials): a forged one is no guess at
// a secret, so it counts against the client's address alone.
func (a *Authenticator) Signed(username string, password []byte, method string) bool {
	if method != "" {
		return false
	}
	if a.cfg.FromUsername {
		return IsToken(username)
	}
	return IsToken(string(password))
}

// header is the part of a token's header read before its signature is.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// Verify checks token at time now for a client that connects with
// username (the CONNECT's, or "" when the token is the username) and
// clientID. The error says why a token is refused, in words an operator
// reads in the log.
func (a *Authenticator) Verify(ctx context.Context, token, username, clientID string, now time.Time) (Result, error) {
	r, err := a.verify(ctx, token, username, clientID, now)
	switch {
	case err == nil:
		a.stats.verified.Add(1)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		a.stats.busy.Add(1)
	default:
		a.stats.refused.Add(1)
	}
	return r, err
}

func (a *Authenticator) verify(ctx context.Context, token, username, clientID string, now time.Time) (Result, error) {
	if !IsToken(token) {
		return Result{}, errors.New("token: not a signed JWT (three base64url parts)")
	}
	h, err := parseHeader(token)
	if err != nil {
		return Result{}, err
	}
	switch alg := jose.SignatureAlgorithm(h.Alg); {
	case strings.EqualFold(h.Alg, "none"):
		return Result{}, errors.New(`token: "alg": "none" (unsigned) is never accepted`)
	case !slices.Contains(a.algs, alg):
		return Result{}, fmt.Errorf("token: algorithm %q is not one of the configured %v", h.Alg, a.cfg.Algorithms)
	case len(h.Crit) > 0:
		return Result{}, fmt.Errorf("token: critical header extensions %v are not understood", h.Crit)
	}
	tok, err := jwt.ParseSigned(token, a.algs)
	if err != nil {
		return Result{}, fmt.Errorf("token: %w", err)
	}
	keys, err := a.keysFor(ctx, h, now)
	if err != nil {
		return Result{}, err
	}
	var std jwt.Claims
	var all map[string]any
	err = jose.ErrCryptoFailure
	for _, k := range keys {
		if err = tok.Claims(k, &std, &all); err == nil {
			break
		}
	}
	switch {
	case errors.Is(err, jose.ErrCryptoFailure):
		return Result{}, errors.New("token: the signature does not verify with the key it names")
	case err != nil:
		return Result{}, fmt.Errorf("token: the claims cannot be read: %v", err)
	}
	return a.claims(std, all, username, clientID, now)
}

func parseHeader(token string) (header, error) {
	var h header
	seg, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return h, errors.New("token: the header is not base64url")
	}
	// Exact keys, as go-jose reads them: encoding/json's match ignores
	// case, and "CRIT" must not hide from the check below.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return h, fmt.Errorf("token: the header is not a JSON object: %v", err)
	}
	for key, dst := range map[string]any{"alg": &h.Alg, "kid": &h.Kid, "crit": &h.Crit} {
		if v, ok := m[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return h, fmt.Errorf("token: header %q: %v", key, err)
			}
		}
	}
	return h, nil
}

// keysFor returns the keys that may verify a token with header h: the
// secret for an HMAC algorithm, else the key "kid" names (fetching the
// JWKS again if it is unknown and the minute's allowance has room), or,
// without a kid, every configured public key of the algorithm's type.
func (a *Authenticator) keysFor(ctx context.Context, h header, now time.Time) ([]any, error) {
	alg := jose.SignatureAlgorithm(h.Alg)
	if slices.Contains(hmacAlgs, alg) {
		return []any{a.cfg.Secret}, nil
	}
	fits := func(k any) bool { return k != nil && slices.Contains(algsFor(k), alg) }
	if h.Kid == "" {
		var keys []any
		for _, k := range a.cfg.PublicKeys {
			if fits(k) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("token: no kid, and no configured public key verifies %s", alg)
		}
		return keys, nil
	}
	k := a.keyByID(h.Kid)
	if k == nil && a.jwks != nil {
		if ch := a.jwks.refreshForUnknown(now); ch != nil {
			if a.cfg.FetchWait < 0 {
				return nil, ErrKeysUnavailable
			}
			t := time.NewTimer(a.cfg.FetchWait)
			select {
			case <-ch:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return nil, ErrKeysUnavailable
			case <-t.C:
				return nil, ErrKeysUnavailable
			}
			k = a.keyByID(h.Kid)
		}
		if k == nil && !a.jwks.loaded() {
			return nil, ErrKeysUnavailable
		}
	}
	switch {
	case k == nil:
		return nil, fmt.Errorf("token: key id %q is not one of the identity provider's keys", h.Kid)
	case !fits(k):
		return nil, fmt.Errorf("token: key %q is a %s key; it does not verify %s", h.Kid, keyType(k), alg)
	}
	return []any{k}, nil
}

func (a *Authenticator) keyByID(kid string) any {
	if i, err := strconv.Atoi(kid); err == nil && i >= 0 && i < len(a.cfg.PublicKeys) && strconv.Itoa(i) == kid {
		return a.cfg.PublicKeys[i]
	}
	if a.jwks != nil {
		return a.jwks.key(kid)
	}
	return nil
}

func keyType(k any) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// claims checks the verified claims and builds the Result.
func (a *Authenticator) claims(std jwt.Claims, all map[string]any, username, clientID string, now time.Time) (Result, error) {
	if std.Expiry == nil && !a.cfg.AllowNoExpiry {
		return Result{}, errors.New(`token: no "exp": a token without an expiry is refused`)
	}
	exp := expected{Issuer: a.cfg.Issuer, Audience: a.cfg.Audience}
	if err := exp.validate(std, now, a.cfg.Leeway); err != nil {
		return Result{}, err
	}
	id, _ := all[a.cfg.IdentityClaim].(string)
	if id == "" {
		return Result{}, fmt.Errorf("token: the identity claim %q is missing or not a string", a.cfg.IdentityClaim)
	}
	if err := validIdentity(id); err != nil {
		return Result{}, fmt.Errorf("token: the identity claim %q: %v", a.cfg.IdentityClaim, err)
	}
	if username != "" && username != id {
		return Result{}, fmt.Errorf("token: it is %s's, not the username %q's", strconv.Quote(id), username)
	}
	for name, want := range a.cfg.Claims {
		want = strings.NewReplacer("%u", username, "%c", clientID).Replace(want)
		if !claimHas(all[name], want) {
			return Result{}, fmt.Errorf("token: claim %q is not %q", name, want)
		}
	}
	r := Result{Identity: id}
	if std.Expiry != nil {
		// Valid until the leeway the check allowed runs out: the session
		// it admits must not start already over.
		r.Expires = std.Expiry.Time().UTC().Add(a.cfg.Leeway)
	}
	if a.cfg.ACLClaim != "-" {
		if raw, ok := all[a.cfg.ACLClaim]; ok {
			p, byClientID, err := compileACL(raw)
			if err != nil {
				return Result{}, fmt.Errorf("token: claim %q: %w", a.cfg.ACLClaim, err)
			}
			if byClientID && !a.bindsClientID {
				// The client chooses its client ID: without a claim tied
				// to it, the holder of this token would choose which
				// device's topics ${clientid} opens.
				return Result{}, fmt.Errorf("token: claim %q names topics by client ID, and no claim ties the token to one (configure a claim = \"%%c\", e.g. sub)", a.cfg.ACLClaim)
			}
			r.ACL = p
		}
	}
	return r, nil
}

// claimHas reports whether claim v is want, or a list that holds it.
// An empty want never matches (a placeholder for a missing identity).
func claimHas(v any, want string) bool {
	if want == "" {
		return false
	}
	switch x := v.(type) {
	case string:
		return x == want
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// expected is what the registered claims must say.
type expected struct{ Issuer, Audience string }

func (e expected) validate(c jwt.Claims, now time.Time, leeway time.Duration) error {
	want := jwt.Expected{Issuer: e.Issuer, Time: now}
	if e.Audience != "" {
		want.AnyAudience = jwt.Audience{e.Audience}
	}
	switch err := c.ValidateWithLeeway(want, leeway); {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("token: expired at %v", c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return fmt.Errorf("token: not valid before %v", c.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Errorf("token: issued in the future (%v)", c.IssuedAt.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return fmt.Errorf("token: issuer %q is not %q", c.Issuer, e.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("token: audience %v does not include %q", []string(c.Audience), e.Audience)
	default:
		return fmt.Errorf("token: %w", err)
	}
}

// Stats count an Authenticator's work.
type Stats struct {
	Verified, Refused, Busy uint64 // tokens by outcome
	// JWKSFetches and JWKSFetchErrors count fetches of the key set;
	// UnknownKIDFetches those a token with an unknown kid caused, and
	// UnknownKIDLimited the unknown kids that found the minute's
	// allowance spent.
	JWKSFetches, JWKSFetchErrors, UnknownKIDFetches, UnknownKIDLimited uint64
	JWKSKeys                                                           int
}

// Stats returns the counters.
func (a *Authenticator) Stats() Stats {
	s := Stats{Verified: a.stats.verified.Load(), Refused: a.stats.refused.Load(), Busy: a.stats.busy.Load()}
	if j := a.jwks; j != nil {
		s.JWKSFetches, s.JWKSFetchErrors = j.fetches.Load(), j.fetchErrors.Load()
		s.UnknownKIDFetches, s.UnknownKIDLimited = j.unknownFetches.Load(), j.unknownLimited.Load()
		s.JWKSKeys = len(*j.set.Load())
	}
	return s
}

// validIdentity refuses what no MQTT username may be (a NUL, invalid
// UTF-8, more than 65,535 bytes) and control characters, which the
// spec advises against and which other parts of a broker keep
// identities apart with.
func validIdentity(id string) error {
	if len(id) > 65535 {
		return errors.New("longer than an MQTT string")
	}
	if !utf8.ValidString(id) {
		return errors.New("not UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("holds the control character %U", r)
		}
	}
	return nil
}
