package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki builds the certificates tests need, in a temporary directory.
type pki struct {
	t   testing.TB
	dir string
	now time.Time
}

type issued struct {
	cert *x509.Certificate
	key  any
	der  []byte
}

func newPKI(t testing.TB) *pki { return &pki{t: t, dir: t.TempDir(), now: time.Now()} }

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

var serialN int64 = 100

func (p *pki) issue(tmpl *x509.Certificate, parent *issued, rsaKey bool) *issued {
	p.t.Helper()
	var key any
	var pub any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			p.t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, pub = k, &k.PublicKey
	}
	serialN++
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(serialN)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = p.now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = p.now.Add(90 * 24 * time.Hour)
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, signer)
	if err != nil {
		p.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &issued{cert: c, key: key, der: der}
}

func (p *pki) ca(cn string, parent *issued) *issued {
	return p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, parent, false)
}

func (p *pki) server(cn string, parent *issued) *issued {
	return p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, parent, false)
}

func (p *pki) client(cn string, parent *issued) *issued {
	return p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, URIs: []*url.URL{{Scheme: "spiffe", Host: "fleet", Path: "/" + cn}},
		DNSNames: []string{cn + ".devices.test"}}, parent, false)
}

func (p *pki) writeCerts(name string, certs ...*issued) string {
	p.t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
	}
	path := p.path(name)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *pki) writeKey(name string, c *issued) string {
	p.t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		p.t.Fatal(err)
	}
	path := p.path(name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// crl writes a CRL by ca revoking the given certificates.
func (p *pki) crl(name string, ca *issued, next time.Time, number int64, revoked ...*issued) string {
	p.t.Helper()
	var entries []x509.RevocationListEntry
	for _, r := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.cert.SerialNumber, RevocationTime: p.now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: p.now.Add(-time.Hour), NextUpdate: next, RevokedCertificateEntries: entries,
	}, ca.cert, ca.key.(crypto.Signer))
	if err != nil {
		p.t.Fatal(err)
	}
	path := p.path(name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}
