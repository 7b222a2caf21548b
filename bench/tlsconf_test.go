package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/tlsconf"
)

// benchPKI writes a CA and a server certificate with an ECDSA P-256 or
// RSA-2048 key and returns the server's files and the CA pool.
func benchPKI(b *testing.B, rsaKey bool) (certFile, keyFile string, roots *x509.CertPool) {
	dir := b.TempDir()
	newKey := func() (crypto.Signer, any) {
		if rsaKey {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			return k, &k.PublicKey
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k, &k.PublicKey
	}
	caKey, caPub := newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caPub, caKey)
	if err != nil {
		b.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, pub := newKey()
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24)}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, pub, caKey)
	if err != nil {
		b.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return certFile, keyFile, roots
}

// handshake runs one TLS handshake over an in-memory pipe.
func handshake(b *testing.B, srv, cli *tls.Config) tls.ConnectionState {
	c, s := net.Pipe()
	done := make(chan error, 1)
	go func() {
		ts := tls.Server(s, srv)
		done <- ts.Handshake()
		s.Close()
	}()
	tc := tls.Client(c, cli)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	cs := tc.ConnectionState()
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return cs
}

// BenchmarkHandshake: a full TLS 1.3 handshake with ECDSA and RSA server
// keys, and a resumed one, served by the Reloader (GetConfigForClient
// returning the snapshot in force) and by a static tls.Config from Load
// with the same material: the reloader should cost nothing measurable.
func BenchmarkHandshake(b *testing.B) {
	for _, keyType := range []string{"ecdsa", "rsa"} {
		certFile, keyFile, roots := benchPKI(b, keyType == "rsa")
		cfg := tlsconf.Config{CertFile: certFile, KeyFile: keyFile}
		static, err := tlsconf.Load(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r, err := tlsconf.NewReloader(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for _, resume := range []bool{false, true} {
			mode := "full"
			if resume {
				mode = "resumed"
			}
			for _, impl := range []struct {
				name string
				cfg  *tls.Config
			}{{"mqttguard", r.TLSConfig()}, {"static-config", static}} {
				b.Run("key="+keyType+"/"+mode+"/impl="+impl.name, func(b *testing.B) {
					cli := &tls.Config{RootCAs: roots, ServerName: "localhost"}
					if resume {
						cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
						handshake(b, impl.cfg, cli)
						// In TLS 1.3 the ticket arrives after the handshake;
						// a short read exchange delivers it.
						handshakeWithTicket(b, impl.cfg, cli)
					}
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						cs := handshake(b, impl.cfg, cli)
						if resume && !cs.DidResume {
							b.Fatal("the session was not resumed")
						}
					}
				})
			}
		}
	}
}

// handshakeWithTicket lets the client read the server's session ticket.
func handshakeWithTicket(b *testing.B, srv, cli *tls.Config) {
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts := tls.Server(s, srv)
		if ts.Handshake() == nil {
			ts.Write([]byte{1})
		}
		s.Close()
	}()
	tc := tls.Client(c, cli)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1)
	tc.Read(buf)
	c.Close()
	<-done
}
