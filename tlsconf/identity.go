package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrNoVerifiedCertificate: the connection has no client certificate that
// verified, so it names no one.
var ErrNoVerifiedCertificate = errors.New("tlsconf: no verified client certificate on this connection")

// IdentityFrom returns the name a verified client certificate gives its
// client. Only verified chains count: a certificate the server did not
// verify can say anything. The result is refused when empty, not UTF-8,
// or containing U+0000 (it becomes an MQTT username).
func IdentityFrom(cs tls.ConnectionState, src IdentitySource) (string, error) {
	return IdentityOf(VerifiedLeaf(cs), src)
}

// VerifiedLeaf returns the client certificate the handshake verified, or
// nil when there is none (no certificate, or one the server did not
// verify: such a certificate can say anything).
func VerifiedLeaf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

// IdentityOf is IdentityFrom for a certificate the caller has already
// verified (a broker that is not written in Go hands over its peer
// certificate this way). A nil leaf is ErrNoVerifiedCertificate.
func IdentityOf(leaf *x509.Certificate, src IdentitySource) (string, error) {
	if leaf == nil {
		return "", ErrNoVerifiedCertificate
	}
	var id, what string
	switch src {
	case IdentityCN:
		what = "Common Name"
		for _, atv := range leaf.Subject.Names {
			if atv.Type.Equal(oidCN) {
				if s, ok := atv.Value.(string); ok {
					id = s
					break // the first, as OpenSSL's use_identity_as_username takes it
				}
			}
		}
	case IdentitySubject:
		what = "subject"
		var rdns pkix.RDNSequence
		if _, err := asn1.Unmarshal(leaf.RawSubject, &rdns); err != nil {
			return "", fmt.Errorf("tlsconf: client certificate subject does not parse: %w", err)
		}
		id = rfc2253(rdns)
	case IdentityURISAN:
		what = "URI subject alternative name"
		if len(leaf.URIs) > 0 {
			id = leaf.URIs[0].String()
		}
	case IdentityDNSSAN:
		what = "DNS subject alternative name"
		if len(leaf.DNSNames) > 0 {
			id = leaf.DNSNames[0]
		}
	case IdentityFingerprint:
		sum := sha256.Sum256(leaf.Raw)
		return hex.EncodeToString(sum[:]), nil
	default:
		return "", fmt.Errorf("tlsconf: unknown identity source %d", src)
	}
	switch {
	case id == "":
		return "", fmt.Errorf("tlsconf: client certificate %q has no %s to take the identity from", leaf.Subject.String(), what)
	case !utf8.ValidString(id):
		return "", fmt.Errorf("tlsconf: client certificate %s is not valid UTF-8", what)
	case strings.IndexByte(id, 0) >= 0:
		return "", fmt.Errorf("tlsconf: client certificate %s contains U+0000", what)
	}
	return id, nil
}

var oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}

// shortNames are OpenSSL's names for the attributes it abbreviates.
var shortNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.5":                    "serialNumber",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// rfc2253 prints a distinguished name as OpenSSL's XN_FLAG_RFC2253 does,
// which is what mosquitto's use_subject_as_username uses: the RDNs in
// reverse order of encoding, "+" between the values of a multi-valued
// RDN, RFC 2253 escaping. Go's pkix.Name.String drops repeated
// attributes and prints unknown ones differently.
func rfc2253(rdns pkix.RDNSequence) string {
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			b.WriteString(name)
			b.WriteByte('=')
			s, isString := atv.Value.(string)
			if !isString {
				der, _ := asn1.Marshal(atv.Value)
				b.WriteString("#" + hex.EncodeToString(der))
				continue
			}
			escape2253(&b, s)
		}
	}
	return b.String()
}

func escape2253(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';',
			c == '#' && i == 0,
			c == ' ' && (i == 0 || i == len(s)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
}
