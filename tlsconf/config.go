package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ClientAuth says whether the server asks for client certificates.
type ClientAuth uint8

const (
	// NoClientCert: the server asks for none.
	NoClientCert ClientAuth = iota
	// RequestClientCert: a client may present a certificate; if it does,
	// the certificate is verified against the client CAs (Go's
	// VerifyClientCertIfGiven). An unverified certificate is never
	// trusted: crypto/tls's RequestClientCert, which accepts anything, is
	// not offered.
	RequestClientCert
	// RequireClientCert: every client must present a certificate that
	// verifies.
	RequireClientCert
)

// String is the name ParseClientAuth reads: "none", "request" or
// "require".
func (a ClientAuth) String() string {
	switch a {
	case NoClientCert:
		return "none"
	case RequestClientCert:
		return "request"
	case RequireClientCert:
		return "require"
	}
	return fmt.Sprintf("ClientAuth(%d)", uint8(a))
}

// ParseClientAuth reads "none", "request" or "require" (the example
// broker's tls_client_auth values; "optional" and "required" too).
func ParseClientAuth(s string) (ClientAuth, error) {
	switch strings.ToLower(s) {
	case "", "none", "no", "false":
		return NoClientCert, nil
	case "request", "optional", "verify-if-given":
		return RequestClientCert, nil
	case "require", "required", "true":
		return RequireClientCert, nil
	}
	return 0, fmt.Errorf("tls_client_auth %q: want none, request or require", s)
}

// IdentitySource says which part of a verified client certificate names
// the client.
type IdentitySource uint8

const (
	// IdentityCN is the first Common Name of the subject, as mosquitto's
	// use_identity_as_username takes it (Go's Subject.CommonName is the
	// last one).
	IdentityCN IdentitySource = iota
	// IdentitySubject is the whole subject printed as RFC 2253, as
	// mosquitto's use_subject_as_username prints it.
	IdentitySubject
	// IdentityURISAN is the first URI subject alternative name (SPIFFE IDs).
	IdentityURISAN
	// IdentityDNSSAN is the first DNS subject alternative name.
	IdentityDNSSAN
	// IdentityFingerprint is the hex SHA-256 of the certificate (EMQX
	// offers MD5; SHA-256 is the one to pin).
	IdentityFingerprint
)

// String is the name ParseIdentitySource reads: "cn", "subject", "uri",
// "dns" or "fingerprint".
func (s IdentitySource) String() string {
	switch s {
	case IdentityCN:
		return "cn"
	case IdentitySubject:
		return "subject"
	case IdentityURISAN:
		return "uri"
	case IdentityDNSSAN:
		return "dns"
	case IdentityFingerprint:
		return "fingerprint"
	}
	return fmt.Sprintf("IdentitySource(%d)", uint8(s))
}

// ParseIdentitySource reads "cn", "subject", "uri", "dns" or
// "fingerprint".
func ParseIdentitySource(s string) (IdentitySource, error) {
	switch strings.ToLower(s) {
	case "", "cn":
		return IdentityCN, nil
	case "subject", "dn":
		return IdentitySubject, nil
	case "uri", "uri-san":
		return IdentityURISAN, nil
	case "dns", "dns-san":
		return IdentityDNSSAN, nil
	case "fingerprint", "sha256":
		return IdentityFingerprint, nil
	}
	return 0, fmt.Errorf("identity source %q: want cn, subject, uri, dns or fingerprint", s)
}

// Config describes a TLS listener. The zero value of every field is its
// safe default; CertFile and KeyFile are required.
type Config struct {
	// CertFile holds the server certificate followed by its
	// intermediates (a full chain, such as Let's Encrypt's
	// fullchain.pem); KeyFile its private key, unencrypted.
	CertFile string
	KeyFile  string
	// ClientCAFile holds the CAs that client certificates must chain to.
	// Required unless ClientAuth is NoClientCert.
	ClientCAFile string
	ClientAuth   ClientAuth
	// CRLFiles are certificate revocation lists (PEM or DER) for the
	// client CAs. When set, every client certificate's issuer must have
	// one, and a CRL past its NextUpdate is refused, as mosquitto does,
	// unless AllowStaleCRL.
	CRLFiles      []string
	AllowStaleCRL bool
	// MinVersion is the lowest TLS version accepted: tls.VersionTLS12
	// (the default) or tls.VersionTLS13. Older versions cannot be
	// configured.
	MinVersion uint16
	// CipherSuites are the TLS 1.2 suites (TLS 1.3's cannot be chosen in
	// Go). The default is the six ECDHE suites with AES-GCM or
	// ChaCha20-Poly1305; Go's own default still includes CBC suites.
	// Suites from tls.InsecureCipherSuites are refused.
	CipherSuites []uint16
	// ALPN protocols to offer. None by default: a server that sets ALPN
	// aborts handshakes with clients that offer a different protocol
	// (AWS IoT devices send "x-amzn-mqtt-ca").
	ALPN []string
	// Identity is where Reloader.Identity finds the client's name.
	Identity IdentitySource
	// OnReload is called after every reload attempt of a Reloader,
	// successful or not.
	OnReload func(changed bool, err error)
	// Logger receives load-time warnings (nil: discard).
	Logger *slog.Logger
	// Now is the clock for expiry and CRL checks (nil: time.Now). Tests
	// set it.
	Now func() time.Time
}

// DefaultCipherSuites are the TLS 1.2 suites used unless
// Config.CipherSuites says otherwise: forward secrecy and AEAD only.
var DefaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuiteByName finds a TLS 1.2 suite by its IANA name
// ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") or OpenSSL name
// ("ECDHE-RSA-AES128-GCM-SHA256"); insecure suites are not found.
func CipherSuiteByName(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name == name || openSSLName(s.Name) == name {
			return s.ID, nil
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name || openSSLName(s.Name) == name {
			return 0, fmt.Errorf("cipher suite %s is insecure and cannot be enabled", name)
		}
	}
	return 0, fmt.Errorf("unknown cipher suite %q (TLS 1.3 suites cannot be chosen in Go)", name)
}

// openSSLName maps Go's IANA names to OpenSSL's for the ECDHE AEAD family.
func openSSLName(iana string) string {
	r := strings.NewReplacer(
		"TLS_ECDHE_ECDSA_WITH_", "ECDHE-ECDSA-", "TLS_ECDHE_RSA_WITH_", "ECDHE-RSA-",
		"AES_128_GCM_SHA256", "AES128-GCM-SHA256", "AES_256_GCM_SHA384", "AES256-GCM-SHA384",
		"CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
	return r.Replace(iana)
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// check validates the configuration itself, before any file is read.
func (c *Config) check() error {
	switch {
	case c.CertFile == "" || c.KeyFile == "":
		return &ConfigError{Field: "CertFile/KeyFile", Msg: "a TLS listener needs a certificate file and a key file"}
	case c.ClientAuth != NoClientCert && c.ClientCAFile == "":
		return &ConfigError{Field: "ClientCAFile", Msg: "client certificates are requested but no client CA file is set to verify them"}
	case c.ClientAuth > RequireClientCert:
		return &ConfigError{Field: "ClientAuth", Msg: fmt.Sprintf("unknown mode %d", c.ClientAuth)}
	case len(c.CRLFiles) > 0 && c.ClientCAFile == "":
		return &ConfigError{Field: "CRLFiles", Msg: "CRLs revoke client certificates; set ClientCAFile and ClientAuth too"}
	}
	switch c.MinVersion {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
	default:
		return &ConfigError{Field: "MinVersion", Msg: fmt.Sprintf("0x%04x: only TLS 1.2 (0x0303) and TLS 1.3 (0x0304) may be the minimum", c.MinVersion)}
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range c.CipherSuites {
		if insecure[id] {
			return &ConfigError{Field: "CipherSuites", Msg: fmt.Sprintf("%s is insecure", tls.CipherSuiteName(id))}
		}
		if tls.CipherSuiteName(id)[0:2] == "0x" {
			return &ConfigError{Field: "CipherSuites", Msg: fmt.Sprintf("unknown suite 0x%04x", id)}
		}
	}
	return nil
}

// ConfigError names the Config field that is wrong.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "tlsconf: " + e.Field + ": " + e.Msg }
