package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ClientOptions describe the client side of a TLS connection: a bridge to
// another broker, a device, a test.
type ClientOptions struct {
	// CAFile holds the CAs that the server's certificate must chain to
	// (empty: the system pool).
	CAFile string
	// CertFile and KeyFile are the client certificate and key, when the
	// server asks for one.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry (empty:
	// the host dialled, as crypto/tls does).
	ServerName string
	// MinVersion as in Config (default TLS 1.2).
	MinVersion uint16
	ALPN       []string
}

// ClientConfig returns a client configuration with the same floor as
// the servers (TLS 1.2, AEAD suites). A client certificate without the
// clientAuth extended key usage is refused here, before a server refuses
// it in a handshake ("incompatible key usage"): Let's Encrypt stopped
// issuing clientAuth certificates in 2026.
func ClientConfig(o ClientOptions) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: DefaultCipherSuites,
		ServerName:   o.ServerName,
		NextProtos:   o.ALPN,
	}
	switch o.MinVersion {
	case 0:
	case tls.VersionTLS12, tls.VersionTLS13:
		cfg.MinVersion = o.MinVersion
	default:
		return nil, &ConfigError{Field: "MinVersion", Msg: "only TLS 1.2 and 1.3 may be the minimum"}
	}
	if o.CAFile != "" {
		data, err := readFile("CAFile", o.CAFile)
		if err != nil {
			return nil, err
		}
		cas, err := parseChain("CAFile", o.CAFile, data)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, &ConfigError{Field: "CertFile/KeyFile", Msg: "a client certificate needs both the certificate and its key"}
	}
	if o.CertFile != "" {
		certData, err := readFile("CertFile", o.CertFile)
		if err != nil {
			return nil, err
		}
		chain, err := parseChain("CertFile", o.CertFile, certData)
		if err != nil {
			return nil, err
		}
		keyData, err := readFile("KeyFile", o.KeyFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := parseKey("KeyFile", o.KeyFile, keyData)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certData, keyPEM)
		if err != nil {
			return nil, keyPairError(&Config{KeyFile: o.KeyFile}, chain[0], err)
		}
		if eku := chain[0].ExtKeyUsage; len(eku) > 0 {
			ok := false
			for _, u := range eku {
				ok = ok || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
			}
			if !ok {
				return nil, &FileError{Field: "CertFile", Path: o.CertFile,
					Msg: fmt.Sprintf("certificate %q is not for clients (extended key usage lacks clientAuth; Let's Encrypt certificates lost it in 2026): a server will refuse it", chain[0].Subject.CommonName)}
			}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
