package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Config configures an Authenticator. Algorithms and at least one source
// of keys (Secret, PublicKeys or JWKSURL) are required; every other zero
// field means its documented default.
type Config struct {
	// Algorithms are the signature algorithms a token may use: "HS256",
	// "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
	// "PS512", "ES256", "ES384", "ES512", "EdDSA". "none" is never one.
	Algorithms []string
	// FromUsername takes the token from the CONNECT's username instead
	// of its password (the default).
	FromUsername bool

	// Secret is the HMAC key for the HS algorithms (at least 32 bytes).
	Secret []byte
	// PublicKeys verify the RS, PS, ES and EdDSA algorithms: *rsa.PublicKey,
	// *ecdsa.PublicKey or ed25519.PublicKey (ParsePublicKeys reads PEM).
	// A token names one with "kid" as the key's index ("0", "1", …) or
	// not at all: then each key of the right type is tried.
	PublicKeys []crypto.PublicKey
	// JWKSURL is the identity provider's JSON Web Key Set (https, or
	// http on loopback for tests). Its keys are chosen by "kid".
	JWKSURL string
	// JWKSRefresh is how often the set is fetched again (default 1 h).
	JWKSRefresh time.Duration
	// UnknownKIDRefreshes bounds the extra fetches that tokens with an
	// unknown "kid" may cause, per minute (default 6).
	UnknownKIDRefreshes int
	// FetchTimeout bounds one fetch of the set (default 5 s).
	FetchTimeout time.Duration
	// FetchWait bounds how long a CONNECT waits for a fetch its token's
	// unknown kid started (default 1 s; negative: never waits, the fetch
	// goes on and the CONNECT is answered busy). The caller's context
	// bounds it too.
	FetchWait time.Duration
	// HTTPClient fetches the set (default: a client with FetchTimeout).
	HTTPClient *http.Client

	// Issuer and Audience, when set, must be the token's "iss" and one of
	// its "aud".
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on "exp", "nbf" and "iat"
	// (default 0; at most 5 minutes).
	Leeway time.Duration
	// AllowNoExpiry admits tokens without "exp", which never end. The
	// default refuses them.
	AllowNoExpiry bool
	// IdentityClaim names the claim that is the client's identity
	// (default "sub"); it must be a non-empty string.
	IdentityClaim string
	// Claims are further claims the token must carry, each equal to its
	// value after %u (the CONNECT's username) and %c (its client ID) are
	// replaced; a claim that is a list must contain the value.
	Claims map[string]string
	// ACLClaim names the claim with the session's own ACL (default
	// "acl"); "-" ignores any.
	ACLClaim string

	// Logger hears about the JWKS: fetched, unreachable, rotated.
	Logger *slog.Logger
}

// The algorithms by key type: a key is only used with its own.
var (
	hmacAlgs  = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}
	rsaAlgs   = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	ecdsaAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512}
	edAlgs    = []jose.SignatureAlgorithm{jose.EdDSA}
)

// minRSABits is the smallest RSA modulus a key may have (NIST SP
// 800-131A): a smaller one can be factored, and its tokens forged.
const minRSABits = 2048

func algsFor(key any) []jose.SignatureAlgorithm {
	switch k := key.(type) {
	case []byte:
		return hmacAlgs
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return nil
		}
		return rsaAlgs
	case *ecdsa.PublicKey:
		return ecdsaAlgs
	case ed25519.PublicKey:
		return edAlgs
	}
	return nil
}

func (c *Config) validate() error {
	if len(c.Algorithms) == 0 {
		return errors.New("jwtauth: Config.Algorithms is empty: name the algorithms your identity provider signs with (e.g. RS256)")
	}
	known := slices.Concat(hmacAlgs, rsaAlgs, ecdsaAlgs, edAlgs)
	for _, a := range c.Algorithms {
		if !slices.Contains(known, jose.SignatureAlgorithm(a)) {
			return fmt.Errorf("jwtauth: Config.Algorithms: %q is not a signature algorithm this package accepts (HS256…512, RS256…512, PS256…512, ES256…512, EdDSA)", a)
		}
		if slices.Contains(hmacAlgs, jose.SignatureAlgorithm(a)) && len(c.Secret) == 0 {
			return fmt.Errorf("jwtauth: Config.Algorithms: %s needs Config.Secret", a)
		}
	}
	if len(c.Secret) > 0 && len(c.Secret) < 32 {
		return fmt.Errorf("jwtauth: Config.Secret has %d bytes: an HMAC secret needs at least 32", len(c.Secret))
	}
	for i, k := range c.PublicKeys {
		if algsFor(k) == nil {
			return fmt.Errorf("jwtauth: Config.PublicKeys[%d]: %s", i, unusable(k))
		}
	}
	if len(c.Secret) == 0 && len(c.PublicKeys) == 0 && c.JWKSURL == "" {
		return errors.New("jwtauth: no keys: set Config.Secret, Config.PublicKeys or Config.JWKSURL")
	}
	switch {
	case c.Leeway < 0 || c.Leeway > 5*time.Minute:
		return fmt.Errorf("jwtauth: Config.Leeway %v: want 0 to 5m", c.Leeway)
	case c.JWKSRefresh < 0 || c.FetchTimeout < 0 || c.UnknownKIDRefreshes < 0:
		return errors.New("jwtauth: Config.JWKSRefresh, FetchTimeout and UnknownKIDRefreshes must not be negative")
	}
	return nil
}

func (c *Config) defaults() {
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = time.Hour
	}
	if c.UnknownKIDRefreshes == 0 {
		c.UnknownKIDRefreshes = 6
	}
	if c.FetchWait == 0 {
		c.FetchWait = time.Second
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 5 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.FetchTimeout, CheckRedirect: sameScheme}
	}
	if c.IdentityClaim == "" {
		c.IdentityClaim = "sub"
	}
	if c.ACLClaim == "" {
		c.ACLClaim = "acl"
	}
}

// ParsePublicKeys reads the PEM public keys in data ("PUBLIC KEY", PKIX;
// "RSA PUBLIC KEY", PKCS #1; or a "CERTIFICATE", whose key is taken).
// Anything else is an error naming the block.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("jwtauth: PEM block %d is a %q: want a PUBLIC KEY (never a private key)", n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("jwtauth: PEM block %d (%s): %w", n, b.Type, err)
		}
		if algsFor(k) == nil {
			return nil, fmt.Errorf("jwtauth: PEM block %d: %s", n, unusable(k))
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("jwtauth: no PEM public key found")
	}
	return keys, nil
}

// unusable says why k cannot verify tokens.
func unusable(k any) string {
	if r, ok := k.(*rsa.PublicKey); ok {
		bits := 0
		if r.N != nil {
			bits = r.N.BitLen()
		}
		return fmt.Sprintf("an RSA key of %d bits: at least %d are needed", bits, minRSABits)
	}
	return fmt.Sprintf("%T is not an RSA, ECDSA or Ed25519 public key", k)
}

// sameScheme follows at most 3 redirects and none to another scheme: an
// https key set must not be taken over plain http.
func sameScheme(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("more than 3 redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("a redirect from %s to %s", via[0].URL.Scheme, req.URL.Scheme)
	}
	return nil
}
