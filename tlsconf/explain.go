package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// Explain turns a TLS error into what an operator should do about it:
// the common failures (key and certificate that do not match,
// expired or not-yet-valid certificates, unknown authority or incomplete
// chain, hostname mismatch, plain MQTT on the TLS port, legacy CN-only
// certificates) and the handshake refusals a server logs. Errors are
// classified by type with errors.As first; only what crypto/tls reports
// as text alone is matched by text, in one table (explainTexts).
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	var re *RevokedError
	if errors.As(err, &re) {
		return re.Msg + ": the client must get a new certificate"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "the peer did not speak TLS: plain MQTT sent to the TLS port? Use port 1883 for plain MQTT or enable TLS in the client (mosquitto_pub --cafile …)"
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			return "the certificate is expired or not yet valid (" + inv.Detail + "): renew it, or check the clock of both machines"
		case x509.IncompatibleUsage:
			return "the certificate is not issued for this use (extended key usage): a server certificate needs serverAuth, a client certificate clientAuth (Let's Encrypt certificates no longer carry clientAuth)"
		case x509.NotAuthorizedToSign:
			return "a certificate in the chain is not a CA but signed another one: the chain is wrong"
		case x509.NameConstraintsWithoutSANs, x509.CANotAuthorizedForThisName:
			return "the CA is not allowed to issue for this name (name constraints)"
		}
		return "the certificate is invalid: " + inv.Error()
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "the certificate is signed by an unknown authority or its chain is incomplete: serve the full chain (fullchain.pem) on the server, and give the client the CA that issued it (--cafile)"
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		if strings.Contains(he.Error(), "legacy Common Name") {
			return "the certificate names the host only in its Common Name, which Go (and modern clients) ignore: reissue it with a subject alternative name (DNS or IP)"
		}
		return "the certificate does not name the host the client dialled (" + he.Error() + "): connect with a name the certificate lists, or reissue it with that name as a SAN"
	}
	msg := err.Error()
	for _, e := range explainTexts {
		if strings.Contains(msg, e.text) {
			return e.advice
		}
	}
	return "TLS failed: " + msg
}

// explainTexts are the errors crypto/tls reports only as text, with the
// advice for each. Kept in one table so that a Go release that changes a
// text breaks one test, not a broker's troubleshooting.
var explainTexts = []struct{ text, advice string }{
	{"private key does not match public key", "the private key does not belong to the certificate: a rotation half done? Install the key that was generated with this certificate"},
	{"first record does not look like a TLS handshake", "the peer did not speak TLS: plain MQTT sent to the TLS port? Use port 1883 for plain MQTT or enable TLS in the client"},
	{"client didn't provide a certificate", "the client sent no certificate but this listener requires one: configure the client's certificate and key (mosquitto_pub --cert … --key …)"},
	{"certificate required", "the server requires a client certificate: configure the client's certificate and key (mosquitto_pub --cert … --key …)"},
	{"client offered only unsupported versions", "the client offered only TLS 1.0/1.1, which are refused: update the client's TLS library or set it to TLS 1.2 or later"},
	{"protocol version not supported", "the two sides share no TLS version: this server accepts TLS 1.2 and 1.3 only"},
	{"no cipher suite supported by both client and server", "the client offers only cipher suites that are refused (CBC, RSA key exchange): enable an ECDHE-…-GCM or CHACHA20 suite on the client"},
	{"client requested unsupported application protocols", "ALPN mismatch: the client asked for an application protocol the server does not offer; remove ALPN from the server or add the client's protocol"},
	{"unknown certificate authority", "the peer does not trust the CA of the certificate it was shown: give it the right CA file"},
	{"bad certificate", "the peer refused the certificate (revoked, or rejected by its checks): see the peer's log"},
	{"certificate signed by unknown authority", "the certificate is signed by an unknown authority or its chain is incomplete: serve the full chain and give the client the CA"},
	{"handshake failure", "the handshake failed: no common cipher suite, or a required client certificate was missing"},
}
