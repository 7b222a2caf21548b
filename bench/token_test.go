package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mqttguard/mqttguard/jwtauth"
	"github.com/mqttguard/mqttguard/passwd"
)

// BenchmarkTokenVerify: what one CONNECT's credentials cost — a JWT with
// its key already at hand (the JWKS is fetched in the background, never
// per token), by algorithm, beside a mosquitto password file's $7$ hash
// at mosquitto 2.0's and 2.1's iteration counts. The token carries an
// acl claim of two filters, compiled each time.
func BenchmarkTokenVerify(b *testing.B) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	secret := []byte("a benchmark HMAC secret of 32 bytes or more")
	now := time.Now()
	claims := map[string]any{"sub": "sensor-42", "aud": "mqtt", "exp": now.Add(time.Hour).Unix(),
		"acl": map[string]any{"pub": []string{"sensors/${clientid}/#"}, "sub": []string{"cmd/${clientid}"}}}
	for _, tc := range []struct {
		alg  jose.SignatureAlgorithm
		sign any
		cfg  jwtauth.Config
	}{
		{jose.RS256, rk, jwtauth.Config{PublicKeys: []crypto.PublicKey{&rk.PublicKey}}},
		{jose.ES256, ek, jwtauth.Config{PublicKeys: []crypto.PublicKey{&ek.PublicKey}}},
		{jose.EdDSA, edk, jwtauth.Config{PublicKeys: []crypto.PublicKey{edk.Public()}}},
		{jose.HS256, secret, jwtauth.Config{Secret: secret}},
	} {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.sign}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "0"))
		if err != nil {
			b.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			b.Fatal(err)
		}
		cfg := tc.cfg
		cfg.Algorithms, cfg.Audience = []string{string(tc.alg)}, "mqtt"
		cfg.Claims = map[string]string{"sub": "%c"} // the example broker's default, which ${clientid} needs
		a, err := jwtauth.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("credential=jwt-"+string(tc.alg)+"/impl=mqttguard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Verify(context.Background(), tok, "", "sensor-42", now); err != nil {
					b.Fatal(err)
				}
			}
		})
		a.Close()
	}
	for _, it := range []int{101, passwd.DefaultIterations} {
		f := passwd.New()
		f.Iterations = it
		if err := f.Add("sensor-42", "secret"); err != nil {
			b.Fatal(err)
		}
		name := "credential=password-101"
		if it != 101 {
			name = "credential=password-210000"
		}
		b.Run(name+"/impl=mqttguard", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Verify("sensor-42", "secret")
			}
		})
	}
}
