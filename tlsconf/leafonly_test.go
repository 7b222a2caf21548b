package tlsconf

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server certificate signed directly by a self-signed root that the
// configured CA file holds (the development PKI) has no intermediate to
// lose: no warning. Without that root in the CA file, or with a root
// that did not sign it, the warning stays.
func TestLeafSignedByTheConfiguredRootIsQuiet(t *testing.T) {
	dev, err := GenerateDev(t.TempDir())
	require.NoError(t, err)
	other, err := GenerateDev(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t)

	for _, tc := range []struct {
		name, cert, key, ca string
		warns               bool
	}{
		{"development PKI, its CA configured", dev.ServerCert, dev.ServerKey, dev.CACert, false},
		{"no CA file", dev.ServerCert, dev.ServerKey, "", true},
		{"another root in the CA file", dev.ServerCert, dev.ServerKey, other.CACert, true},
		{"signed by an intermediate, the root configured", f.writeCerts("leaf.pem", f.leaf), f.key, f.rootFile, true},
	} {
		var log strings.Builder
		cfg := Config{CertFile: tc.cert, KeyFile: tc.key, Logger: newTestLogger(&log)}
		if tc.ca != "" {
			cfg.ClientCAFile, cfg.ClientAuth = tc.ca, RequestClientCert
		}
		_, err := Load(cfg)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.warns, strings.Contains(log.String(), "holds no intermediate certificate"), "%s: %s", tc.name, log.String())
	}
}

// The enums print as the names their Parse functions read.
func TestEnumNamesRoundTrip(t *testing.T) {
	for _, a := range []ClientAuth{NoClientCert, RequestClientCert, RequireClientCert} {
		got, err := ParseClientAuth(a.String())
		require.NoError(t, err, a.String())
		assert.Equal(t, a, got)
	}
	for _, s := range []IdentitySource{IdentityCN, IdentitySubject, IdentityURISAN, IdentityDNSSAN, IdentityFingerprint} {
		got, err := ParseIdentitySource(s.String())
		require.NoError(t, err, s.String())
		assert.Equal(t, s, got)
	}
	assert.Equal(t, "ClientAuth(7)", ClientAuth(7).String())
}
