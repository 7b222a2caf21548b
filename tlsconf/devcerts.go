package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevFiles are the files GenerateDev writes.
type DevFiles struct {
	CACert, CAKey         string // the development CA
	ServerCert, ServerKey string // for 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // a client certificate, CN "dev-client"
}

func devFiles(dir string) DevFiles {
	p := func(n string) string { return filepath.Join(dir, n) }
	return DevFiles{
		CACert: p("ca.pem"), CAKey: p("ca-key.pem"),
		ServerCert: p("server.pem"), ServerKey: p("server-key.pem"),
		ClientCert: p("client.pem"), ClientKey: p("client-key.pem"),
	}
}

// GenerateDev makes a development PKI in dir, so a broker can start with
// TLS on a fresh machine: a CA, a server certificate for localhost,
// 127.0.0.1 and ::1, and a client certificate, all ECDSA P-256, valid a
// year; keys are written 0600. If all six files already exist they are
// kept; if only some do, it refuses rather than mix two PKIs. Never use
// these in production: anyone with ca-key.pem can mint certificates.
func GenerateDev(dir string) (DevFiles, error) {
	f := devFiles(dir)
	all := []string{f.CACert, f.CAKey, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey}
	present := 0
	for _, p := range all {
		if _, err := os.Stat(p); err == nil {
			present++
		}
	}
	switch present {
	case len(all):
		return f, nil
	case 0:
	default:
		return f, fmt.Errorf("tlsconf: %s holds some but not all development certificate files; remove them or complete them", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mqttguard development CA", Organization: []string{"mqttguard (development only)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(f.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return f, err
	}
	if err := writeKey(f.CAKey, caKey); err != nil {
		return f, err
	}
	srv := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := Issue(ca, caKey, srv, f.ServerCert, f.ServerKey); err != nil {
		return f, err
	}
	cli := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dev-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := Issue(ca, caKey, cli, f.ClientCert, f.ClientKey); err != nil {
		return f, err
	}
	return f, nil
}

// Issue signs a certificate from tmpl (its key usage, validity and serial
// filled in when missing) with the CA and writes it and a new P-256 key
// to certPath and keyPath. For development and tests.
func Issue(ca *x509.Certificate, caKey any, tmpl *x509.Certificate, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	t := *tmpl
	if t.SerialNumber == nil {
		t.SerialNumber = serial()
	}
	if t.NotBefore.IsZero() {
		t.NotBefore = time.Now().Add(-time.Hour)
	}
	if t.NotAfter.IsZero() {
		t.NotAfter = time.Now().AddDate(1, 0, 0)
	}
	if t.KeyUsage == 0 {
		t.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, &t, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

// LoadCA reads a CA certificate and key written by GenerateDev, to issue
// more certificates with Issue.
func LoadCA(certPath, keyPath string) (*x509.Certificate, any, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: loading CA %s: %w", certPath, err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, errors.New("tlsconf: " + certPath + " is not a CA certificate")
	}
	return ca, pair.PrivateKey, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}
