// Command token mints a JWT for a device from an HMAC secret file: the
// development side of the example broker's [security.jwt] (production
// tokens come from your identity provider, signed with RS256 or ES256
// and published as a JWKS).
//
//	head -c 48 /dev/urandom | base64 > mqttguard-data/jwt.secret
//	go run ./examples/token -secret mqttguard-data/jwt.secret -sub sensor-42 -ttl 1h \
//	    -acl '{"pub": ["sensors/${clientid}/#"], "sub": ["cmd/${clientid}"]}'
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mqttguard/mqttguard/jwtauth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	secretFile := fs.String("secret", "", "the HMAC secret file (the broker's [security.jwt] secret_file)")
	sub := fs.String("sub", "", "the device's identity: its username, and its client ID if the broker's claims say sub = \"%c\"")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid: the broker disconnects the device then")
	aud := fs.String("aud", "mqtt", "the audience (the broker's [security.jwt] audience)")
	aclClaim := fs.String("acl", "", `the session's own ACL, EMQX format, e.g. '{"pub": ["sensors/${clientid}/#"]}'`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *secretFile == "":
		return errors.New("-secret is required: the file the broker's secret_file names")
	case *sub == "":
		return errors.New("-sub is required: the device's identity")
	case *ttl <= 0:
		return fmt.Errorf("-ttl %v: want a positive duration", *ttl)
	}
	b, err := os.ReadFile(*secretFile)
	if err != nil {
		return err
	}
	secret := []byte(strings.TrimSpace(string(b)))
	claims := map[string]any{"sub": *sub, "aud": *aud, "iat": now.Unix(), "exp": now.Add(*ttl).Unix()}
	if *aclClaim != "" {
		var v any
		if err := json.Unmarshal([]byte(*aclClaim), &v); err != nil {
			return fmt.Errorf("-acl: %v", err)
		}
		if _, err := jwtauth.CompileACL(v); err != nil {
			return fmt.Errorf("-acl: %v", err) // the broker would refuse the token
		}
		claims["acl"] = v
	}
	if len(secret) < 32 {
		return fmt.Errorf("%s holds %d bytes: an HMAC secret needs at least 32", *secretFile, len(secret))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return err
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
