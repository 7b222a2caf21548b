package guardstack

import (
	"log/slog"
	"os"
	"strings"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/jwtauth"
)

// newTokens builds the token authenticator [security.jwt] describes,
// reading its key files; an error names the key and the file.
func newTokens(cfg *guardconf.Config, log *slog.Logger) (*jwtauth.Authenticator, error) {
	j := cfg.Security.JWT
	jc := jwtauth.Config{Algorithms: j.Algorithms, FromUsername: j.From == "username", JWKSURL: j.JWKSURL,
		JWKSRefresh: j.JWKSRefresh, UnknownKIDRefreshes: j.UnknownKIDRefreshes, FetchWait: j.FetchWait, Issuer: j.Issuer, Audience: j.Audience,
		Leeway: j.Leeway, AllowNoExpiry: j.AllowNoExpiry, IdentityClaim: j.IdentityClaim, ACLClaim: j.ACLClaim,
		Claims: j.Claims, Logger: log}
	if j.SecretFile != "" {
		b, err := os.ReadFile(cfg.Path(j.SecretFile))
		if err != nil {
			return nil, cfg.Errorf("security.jwt.secret_file", "%v", err)
		}
		jc.Secret = []byte(strings.TrimSpace(string(b)))
	}
	for i, f := range j.PublicKeyFiles {
		b, err := os.ReadFile(cfg.Path(f))
		if err != nil {
			return nil, cfg.Errorf("security.jwt.public_key_files", "%v", err)
		}
		keys, err := jwtauth.ParsePublicKeys(b)
		if err != nil {
			return nil, cfg.Errorf("security.jwt.public_key_files", "%s (the %d. file): %v", f, i+1, err)
		}
		jc.PublicKeys = append(jc.PublicKeys, keys...)
	}
	a, err := jwtauth.New(jc)
	if err != nil {
		return nil, cfg.Errorf("security.jwt", "%v", strings.TrimPrefix(err.Error(), "jwtauth: "))
	}
	return a, nil
}
