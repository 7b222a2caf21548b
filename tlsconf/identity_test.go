package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func verified(c *x509.Certificate) tls.ConnectionState {
	return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
}

func TestIdentity(t *testing.T) {
	p := newPKI(t)
	ca := p.ca("Device CA", nil)
	// Two Common Names: OpenSSL (and mosquitto) take the first, Go's
	// Subject.CommonName the last.
	multi := p.issue(&x509.Certificate{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "first"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Acme, Inc."},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "second"},
	}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, false)
	assert.Equal(t, "second", multi.cert.Subject.CommonName, "Go's CommonName is the last one")
	cs := verified(multi.cert)
	id, err := IdentityFrom(cs, IdentityCN)
	require.NoError(t, err)
	assert.Equal(t, "first", id)
	id, err = IdentityFrom(cs, IdentitySubject)
	require.NoError(t, err)
	assert.Equal(t, `CN=second,O=Acme\, Inc.,CN=first`, id)

	cl := p.client("sensor-1", ca)
	cs = verified(cl.cert)
	id, _ = IdentityFrom(cs, IdentityURISAN)
	assert.Equal(t, "spiffe://fleet/sensor-1", id)
	id, _ = IdentityFrom(cs, IdentityDNSSAN)
	assert.Equal(t, "sensor-1.devices.test", id)
	id, _ = IdentityFrom(cs, IdentityFingerprint)
	assert.Len(t, id, 64)

	_, err = IdentityFrom(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cl.cert}}, IdentityCN)
	assert.ErrorIs(t, err, ErrNoVerifiedCertificate, "unverified certificates name no one")

	nul := p.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "a\x00b"}}, ca, false)
	_, err = IdentityFrom(verified(nul.cert), IdentityCN)
	assert.ErrorContains(t, err, "U+0000")
	noCN := p.issue(&x509.Certificate{Subject: pkix.Name{Organization: []string{"x"}}}, ca, false)
	_, err = IdentityFrom(verified(noCN.cert), IdentityCN)
	assert.ErrorContains(t, err, "no Common Name")
}

// The RFC 2253 subject must read as OpenSSL prints it for mosquitto's
// use_subject_as_username.
func TestSubjectMatchesOpenSSL(t *testing.T) {
	openssl := testenv.Program(t, "openssl", "openssl")
	p := newPKI(t)
	ca := p.ca("Device CA", nil)
	c := p.issue(&x509.Certificate{Subject: pkix.Name{
		CommonName: "test client", OrganizationalUnit: []string{"Production"}, Organization: []string{"Server"},
		Locality: []string{"Nottingham"}, Province: []string{"Nottinghamshire"}, Country: []string{"GB"},
	}}, ca, false)
	path := p.writeCerts("c.pem", c)
	out, err := exec.Command(openssl, "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253").CombinedOutput()
	require.NoError(t, err, "%s", out)
	want := strings.TrimSpace(strings.TrimPrefix(string(out), "subject="))
	got, err := IdentityFrom(verified(c.cert), IdentitySubject)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestExplain(t *testing.T) {
	f := newFixture(t)
	cfg, err := Load(f.config())
	require.NoError(t, err)
	addr, _, _ := serve(t, cfg)
	cases := []struct {
		name string
		cli  func() *tls.Config
		want string
	}{
		{"unknown authority", func() *tls.Config { return &tls.Config{ServerName: "localhost"} }, "unknown authority or its chain is incomplete"},
		{"hostname mismatch", func() *tls.Config { c := f.client(t, "", ""); c.ServerName = "wrong.example.test"; return c }, "does not name the host"},
		{"expired", func() *tls.Config {
			c := f.client(t, "", "")
			c.Time = func() time.Time { return time.Now().Add(400 * 24 * time.Hour) }
			return c
		}, "expired or not yet valid"},
	}
	for _, c := range cases {
		_, err := dial(t, addr, c.cli())
		require.Error(t, err, c.name)
		assert.Contains(t, Explain(err), c.want, "%s: %v", c.name, err)
	}

	// Plain MQTT to the TLS port: the server sees a record header error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Write([]byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0})
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	sc, err := l.Accept()
	require.NoError(t, err)
	err = tls.Server(sc, cfg).Handshake()
	require.Error(t, err)
	assert.Contains(t, Explain(err), "plain MQTT sent to the TLS port")

	// A legacy CN-only certificate.
	legacy := f.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}}, f.inter, false)
	_, err = legacy.cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool(f.root.cert), Intermediates: pool(f.inter.cert)})
	require.Error(t, err)
	assert.Contains(t, Explain(err), "only in its Common Name")

	for _, e := range explainTexts {
		assert.Equal(t, e.advice, Explain(errors.New("x: "+e.text+" y")), "the table entry for %q", e.text)
	}
	assert.Equal(t, "", Explain(nil))
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestGenerateDev(t *testing.T) {
	dir := t.TempDir()
	files, err := GenerateDev(dir)
	require.NoError(t, err)
	cfg, err := Load(Config{CertFile: files.ServerCert, KeyFile: files.ServerKey, ClientCAFile: files.CACert, ClientAuth: RequireClientCert})
	require.NoError(t, err)
	addr, _, states := serve(t, cfg)
	cli, err := ClientConfig(ClientOptions{CAFile: files.CACert, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c := cli.Clone()
		c.ServerName = host
		_, err = dial(t, addr, c)
		require.NoError(t, err, host)
		id, err := IdentityFrom(<-states, IdentityCN)
		require.NoError(t, err)
		assert.Equal(t, "dev-client", id)
	}
	again, err := GenerateDev(dir)
	require.NoError(t, err, "existing files are kept")
	assert.Equal(t, files, again)

	ca, key, err := LoadCA(files.CACert, files.CAKey)
	require.NoError(t, err)
	require.NoError(t, Issue(ca, key, &x509.Certificate{Subject: pkix.Name{CommonName: "sensor-9"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, dir+"/s9.pem", dir+"/s9-key.pem"))

	partial := t.TempDir()
	writeFile(t, partial+"/ca.pem", []byte("x"))
	_, err = GenerateDev(partial)
	assert.ErrorContains(t, err, "some but not all")
}

func TestClientConfigRefusesServerOnlyCertificate(t *testing.T) {
	f := newFixture(t)
	_, err := ClientConfig(ClientOptions{CAFile: f.rootFile, CertFile: f.fullchain, KeyFile: f.key})
	assert.ErrorContains(t, err, "lacks clientAuth")
	_, err = ClientConfig(ClientOptions{CertFile: f.goodCert})
	assert.ErrorContains(t, err, "needs both")
}

// openssl s_client confirms the refusals come from the server: alert 70
// (protocol version) for TLS 1.0 and 1.1, 40 (handshake failure) for CBC,
// and for TLS 1.3 the certificate_required alert after the handshake.
func TestOpenSSLSeesServerRefusals(t *testing.T) {
	openssl := testenv.Program(t, "openssl", "openssl")
	f := newFixture(t)
	cfg, err := Load(f.mtls(RequireClientCert))
	require.NoError(t, err)
	addr, _, _ := serve(t, cfg)
	run := func(args ...string) string {
		// sleep keeps stdin open so a TLS 1.3 rejection that arrives after
		// the handshake is read before s_client exits.
		cmd := exec.Command("sh", "-c", "sleep 1 | "+openssl+" s_client -connect "+addr+" -CAfile "+f.rootFile+" "+strings.Join(args, " "))
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, v := range []string{"-tls1", "-tls1_1"} {
		out := run(v, "-cipher", "'DEFAULT:@SECLEVEL=0'", "-cert", f.goodCert, "-key", f.goodKey)
		if strings.Contains(out, "no protocols available") {
			t.Fatalf("%s: the local OpenSSL refused to even try, so nothing about the server was tested:\n%s", v, out)
		}
		assert.Contains(t, out, "alert number 70", "%s:\n%s", v, out)
	}
	out := run("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-cert", f.goodCert, "-key", f.goodKey)
	assert.Contains(t, out, "alert number 40", "CBC:\n%s", out)
	out = run("-tls1_3")
	assert.Contains(t, out, "alert number 116", "TLS 1.3 without a client certificate:\n%s", out)
	out = run("-tls1_3", "-cert", f.goodCert, "-key", f.goodKey)
	assert.Contains(t, out, "Verify return code: 0 (ok)", "a good client:\n%s", out)
}

// FuzzPEMFiles feeds arbitrary bytes to the strict readers: they never
// panic, and whatever they accept is made of whole PEM blocks.
func FuzzPEMFiles(f *testing.F) {
	fx := newFixture(f)
	full := fx.pem(fx.leaf, fx.inter)
	f.Add(full)
	f.Add(fx.keyPEM(fx.leaf))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\ntrailing"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := pemBlocks("CertFile", "fuzz.pem", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("not a *FileError: %v", err)
			}
			return
		}
		if len(blocks) == 0 {
			t.Fatal("accepted a file with no block")
		}
		parseChain("CertFile", "fuzz.pem", data)
		parseKey("KeyFile", "fuzz.pem", data)
		parseCRLs("fuzz.crl", data)
	})
}
