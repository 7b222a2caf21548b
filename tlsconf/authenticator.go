package tlsconf

import (
	"context"
	"crypto/x509"
	"time"
)

// Authenticator admits a client on its verified client certificate
// alone, as mosquitto's use_identity_as_username does: the client's
// identity is the name Identity selects from the certificate.
//
// Its Authenticate method has the signature of mqttguard.Authenticator
// (standard types only, so this package does not import the Guard). A
// connection without a certificate, or one that names an MQTT 5
// authentication method, is not its to judge: it answers with no
// identity and no error, and the Guard asks the next authenticator.
// A certificate that names no one (Identity finds nothing usable in it)
// is refused.
type Authenticator struct {
	Identity IdentitySource // default IdentityCN
}

// Authenticate returns the certificate's identity. The certificate must
// be one the TLS handshake verified (tlsconf.VerifiedLeaf). The
// credentials stay valid as long as the certificate does: expires is its
// NotAfter.
func (a Authenticator) Authenticate(_ context.Context, _ string, _ []byte, method string, _ []byte, cert *x509.Certificate) (identity string, expires time.Time, cont []byte, err error) {
	if cert == nil || method != "" {
		// No certificate, or a client that asked for an MQTT 5
		// authentication method: that method's authenticator decides
		// (or nobody does, 0x8C) [MQTT-4.12.0-5].
		return "", time.Time{}, nil, nil
	}
	id, err := IdentityOf(cert, a.Identity)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	return id, cert.NotAfter, nil, nil
}
