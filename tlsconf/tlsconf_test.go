package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture is a realistic PKI: a server chain root → intermediate → leaf,
// and a device CA for client certificates.
type fixture struct {
	*pki
	root, inter, leaf   *issued
	devCA, good, revkd  *issued
	rogueCA, rogue      *issued
	fullchain, key      string
	devCAFile, crlFile  string
	goodCert, goodKey   string
	revCert, revKey     string
	rogueCert, rogueKey string
	rootFile            string
}

func newFixture(t testing.TB) *fixture {
	p := newPKI(t)
	f := &fixture{pki: p}
	f.root = p.ca("Test Root CA", nil)
	f.inter = p.ca("Test Intermediate CA", f.root)
	f.leaf = p.server("mqtt.example.test", f.inter)
	f.devCA = p.ca("Device CA", nil)
	f.good = p.client("sensor-1", f.devCA)
	f.revkd = p.client("sensor-13", f.devCA)
	f.rogueCA = p.ca("Rogue CA", nil)
	f.rogue = p.client("sensor-1", f.rogueCA)
	f.fullchain = p.writeCerts("fullchain.pem", f.leaf, f.inter)
	f.key = p.writeKey("server-key.pem", f.leaf)
	f.rootFile = p.writeCerts("root.pem", f.root)
	f.devCAFile = p.writeCerts("device-ca.pem", f.devCA)
	f.crlFile = p.crl("device.crl", f.devCA, p.now.Add(24*time.Hour), 1, f.revkd)
	f.goodCert, f.goodKey = p.writeCerts("good.pem", f.good), p.writeKey("good-key.pem", f.good)
	f.revCert, f.revKey = p.writeCerts("rev.pem", f.revkd), p.writeKey("rev-key.pem", f.revkd)
	f.rogueCert, f.rogueKey = p.writeCerts("rogue.pem", f.rogue), p.writeKey("rogue-key.pem", f.rogue)
	return f
}

func (f *fixture) config() Config {
	return Config{CertFile: f.fullchain, KeyFile: f.key}
}

func (f *fixture) mtls(auth ClientAuth) Config {
	c := f.config()
	c.ClientCAFile, c.ClientAuth, c.CRLFiles = f.devCAFile, auth, []string{f.crlFile}
	return c
}

// serve runs a TLS echo server on a free loopback port until the test
// ends; handshake errors are sent to errs.
func serve(t testing.TB, cfg *tls.Config) (addr string, errs chan error, states chan tls.ConnectionState) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errs = make(chan error, 100)
	states = make(chan tls.ConnectionState, 100)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := tls.Server(c, cfg)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				select {
				case states <- tc.ConnectionState():
				default:
				}
				io.Copy(tc, tc)
			}()
		}
	}()
	return l.Addr().String(), errs, states
}

// dial performs a handshake and one echo round trip, so that a TLS 1.3
// server's rejection of the client certificate (which arrives after the
// client's handshake completes) is seen.
func dial(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return c.ConnectionState(), err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return c.ConnectionState(), err
	}
	return c.ConnectionState(), nil
}

func (f *fixture) client(t testing.TB, cert, key string) *tls.Config {
	t.Helper()
	cfg, err := ClientConfig(ClientOptions{CAFile: f.rootFile, CertFile: cert, KeyFile: key, ServerName: "localhost"})
	require.NoError(t, err)
	return cfg
}

func TestLoadSetsSafeDefaults(t *testing.T) {
	f := newFixture(t)
	cfg, err := Load(f.config())
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	assert.Equal(t, DefaultCipherSuites, cfg.CipherSuites)
	assert.Nil(t, cfg.CurvePreferences, "curve preferences are Go's, so PQ hybrids stay on")
	assert.Nil(t, cfg.NextProtos)
	assert.Equal(t, tls.NoClientCert, cfg.ClientAuth)
	require.Len(t, cfg.Certificates, 1)
	assert.Len(t, cfg.Certificates[0].Certificate, 2, "the full chain is served")

	addr, _, _ := serve(t, cfg)
	cs, err := dial(t, addr, f.client(t, "", ""))
	require.NoError(t, err)
	assert.Equal(t, tls.X25519MLKEM768, cs.CurveID, "hybrid post-quantum key exchange")
}

func TestRefusesOldVersionsAndCBC(t *testing.T) {
	f := newFixture(t)
	cfg, err := Load(f.config())
	require.NoError(t, err)
	addr, errs, _ := serve(t, cfg)
	base := f.client(t, "", "")

	old := base.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	_, err = dial(t, addr, old)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "protocol version not supported")
	assert.Contains(t, (<-errs).Error(), "client offered only unsupported versions")

	cbc := base.Clone()
	cbc.MaxVersion = tls.VersionTLS12
	cbc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	_, err = dial(t, addr, cbc)
	require.Error(t, err)
	assert.Contains(t, (<-errs).Error(), "no cipher suite supported by both client and server")

	tls12 := base.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	cs, err := dial(t, addr, tls12)
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), cs.CipherSuite)
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.CertFile = "" }, "CertFile/KeyFile"},
		{func(c *Config) { c.ClientAuth = RequireClientCert }, "no client CA file"},
		{func(c *Config) { c.MinVersion = tls.VersionTLS11 }, "only TLS 1.2"},
		{func(c *Config) { c.CipherSuites = []uint16{tls.TLS_RSA_WITH_RC4_128_SHA} }, "insecure"},
		{func(c *Config) { c.CRLFiles = []string{f.crlFile} }, "set ClientCAFile"},
	}
	for _, c := range cases {
		cfg := f.config()
		c.mut(&cfg)
		_, err := Load(cfg)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%v", err)
		assert.Contains(t, err.Error(), c.want)
	}
	id, err := CipherSuiteByName("ECDHE-RSA-AES128-GCM-SHA256")
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), id)
	_, err = CipherSuiteByName("TLS_RSA_WITH_RC4_128_SHA")
	assert.ErrorContains(t, err, "insecure")
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

func TestStrictFiles(t *testing.T) {
	f := newFixture(t)
	full, _ := os.ReadFile(f.fullchain)
	key, _ := os.ReadFile(f.key)
	otherKey, _ := os.ReadFile(f.writeKey("other.pem", f.inter))
	expired := f.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "old"}, DNSNames: []string{"localhost"},
		NotBefore: f.now.Add(-48 * time.Hour), NotAfter: f.now.Add(-time.Hour)}, f.inter, false)
	future := f.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "new"}, DNSNames: []string{"localhost"},
		NotBefore: f.now.Add(time.Hour), NotAfter: f.now.Add(48 * time.Hour)}, f.inter, false)
	clientOnly := f.pki.client("not-a-server", f.inter)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	legacyEnc := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}})
	block, _ := pem.Decode(full)

	cases := []struct {
		name      string
		cert, key []byte
		field     string
		want      string
	}{
		{"swapped", key, full, "CertFile", "are the certificate and key files swapped"},
		{"encrypted key", full, encrypted, "KeyFile", "encrypted with a passphrase"},
		{"encrypted legacy key", full, legacyEnc, "KeyFile", "encrypted with a passphrase"},
		{"DER certificate", block.Bytes, key, "CertFile", "looks like DER"},
		{"truncated full chain", full[:len(full)-100], key, "CertFile", "non-PEM data after block 1 (truncated, or still being written?)"},
		{"trailing garbage", append(append([]byte{}, full...), "oops"...), key, "CertFile", "non-PEM data after block 2"},
		{"key of another certificate", full, otherKey, "KeyFile", "does not belong to the certificate for \"mqtt.example.test\""},
		{"empty key", full, []byte("\n"), "KeyFile", "is empty"},
		{"two keys", full, append(append([]byte{}, key...), key...), "KeyFile", "more than one private key"},
		{"chain out of order", f.pem(f.inter, f.leaf), key, "CertFile", "is not signed by certificate 2"},
		{"expired", f.pem(expired, f.inter), f.keyPEM(expired), "CertFile", "expired on"},
		{"not yet valid", f.pem(future, f.inter), f.keyPEM(future), "CertFile", "is the clock right"},
		{"client certificate as server", f.pem(clientOnly, f.inter), f.keyPEM(clientOnly), "CertFile", "lacks serverAuth"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert, keyPath := f.path("c-"+c.name), f.path("k-"+c.name)
			writeFile(t, cert, c.cert)
			writeFile(t, keyPath, c.key)
			_, err := Load(Config{CertFile: cert, KeyFile: keyPath})
			var fe *FileError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, c.field, fe.Field, "%v", err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, err.Error(), Explain(err))
		})
	}
	_, err := Load(Config{CertFile: f.path("missing.pem"), KeyFile: f.key})
	assert.ErrorContains(t, err, "CertFile "+f.path("missing.pem")+": cannot read")
}

func (f *fixture) pem(certs ...*issued) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
	}
	return out
}

func (f *fixture) keyPEM(c *issued) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(c.key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestLeafOnlyChainWarns(t *testing.T) {
	f := newFixture(t)
	var log strings.Builder
	cfg := f.config()
	cfg.CertFile = f.writeCerts("leaf.pem", f.leaf)
	cfg.Logger = newTestLogger(&log)
	_, err := Load(cfg)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "holds no intermediate certificate")
}

func TestClientAuthModes(t *testing.T) {
	f := newFixture(t)
	for _, auth := range []ClientAuth{NoClientCert, RequestClientCert, RequireClientCert} {
		c := f.config()
		if auth != NoClientCert {
			c.ClientCAFile, c.ClientAuth = f.devCAFile, auth
		}
		cfg, err := Load(c)
		require.NoError(t, err)
		addr, _, states := serve(t, cfg)
		for _, who := range []struct {
			name      string
			cert, key string
			ok        bool
		}{
			{"no certificate", "", "", auth != RequireClientCert},
			{"valid certificate", f.goodCert, f.goodKey, true},
			{"certificate from another CA", f.rogueCert, f.rogueKey, auth == NoClientCert},
		} {
			cli := f.client(t, who.cert, who.key)
			if who.cert == f.rogueCert {
				// A Go client sends no certificate the server's CA list does
				// not name; present it anyway, as a hostile client would.
				pair := cli.Certificates[0]
				cli.Certificates = nil
				cli.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			_, err := dial(t, addr, cli)
			if who.ok {
				require.NoError(t, err, "%v / %s", auth, who.name)
				st := <-states
				_, idErr := IdentityFrom(st, IdentityCN)
				if who.cert == f.goodCert && auth != NoClientCert {
					assert.NoError(t, idErr)
				} else {
					assert.ErrorIs(t, idErr, ErrNoVerifiedCertificate, "an unverified certificate never names anyone")
				}
			} else {
				require.Error(t, err, "%v / %s", auth, who.name)
			}
		}
	}
}

func TestRevokedClientRefusedAlsoOnResumption(t *testing.T) {
	f := newFixture(t)
	cfg, err := Load(f.mtls(RequireClientCert))
	require.NoError(t, err)
	addr, errs, _ := serve(t, cfg)
	_, err = dial(t, addr, f.client(t, f.revCert, f.revKey))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad certificate")
	serverErr := <-errs
	assert.Contains(t, serverErr.Error(), `client certificate "sensor-13"`)
	assert.Contains(t, serverErr.Error(), "was revoked at")
	_, err = dial(t, addr, f.client(t, f.goodCert, f.goodKey))
	require.NoError(t, err)

	// Resumption: a good session is resumed; after the CRL revokes the
	// certificate, resuming the same session must fail.
	r, err := NewReloader(f.mtls(RequireClientCert))
	require.NoError(t, err)
	addr, errs, states := serve(t, r.TLSConfig())
	cli := f.client(t, f.goodCert, f.goodKey)
	cli.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	_, err = dial(t, addr, cli)
	require.NoError(t, err)
	<-states
	cs, err := dial(t, addr, cli)
	require.NoError(t, err)
	st := <-states
	assert.True(t, cs.DidResume && st.DidResume, "the second connection resumes")
	revoked, _ := r.Revoked(st)
	assert.False(t, revoked)

	f.crl("device.crl", f.devCA, f.now.Add(24*time.Hour), 2, f.revkd, f.good)
	changed, err := r.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	revoked, why := r.Revoked(st)
	assert.True(t, revoked, "a live session learns of the new CRL")
	assert.ErrorContains(t, why, "sensor-1")
	_, err = dial(t, addr, cli)
	require.Error(t, err, "a resumed session must be checked against the new CRL")
	assert.Contains(t, (<-errs).Error(), "was revoked")
}

func TestCRLRules(t *testing.T) {
	f := newFixture(t)
	stale := f.crl("stale.crl", f.devCA, f.now.Add(-time.Minute), 3)
	cfg := f.mtls(RequireClientCert)
	cfg.CRLFiles = []string{stale}
	_, err := Load(cfg)
	assert.ErrorContains(t, err, "is stale")
	cfg.AllowStaleCRL = true
	_, err = Load(cfg)
	assert.NoError(t, err)

	wrong := f.crl("wrong.crl", f.rogueCA, f.now.Add(time.Hour), 1)
	cfg = f.mtls(RequireClientCert)
	cfg.CRLFiles = []string{wrong}
	_, err = Load(cfg)
	assert.ErrorContains(t, err, "matches no CA")

	// A client whose issuer has no CRL is refused when CRLs are in use.
	other := f.ca("Other Device CA", nil)
	both := f.writeCerts("both.pem", f.devCA, other)
	oc := f.pki.client("sensor-7", other)
	cfg = f.mtls(RequireClientCert)
	cfg.ClientCAFile = both
	srv, err := Load(cfg)
	require.NoError(t, err)
	addr, errs, _ := serve(t, srv)
	_, err = dial(t, addr, f.client(t, f.writeCerts("oc.pem", oc), f.writeKey("oc-key.pem", oc)))
	require.Error(t, err)
	assert.Contains(t, (<-errs).Error(), "no CRL is loaded for its issuer")
}

func TestReloadRotationUnderLiveTraffic(t *testing.T) {
	f := newFixture(t)
	var reloads atomic.Int32
	cfg := f.config()
	cfg.OnReload = func(bool, error) { reloads.Add(1) }
	r, err := NewReloader(cfg)
	require.NoError(t, err)
	addr, _, _ := serve(t, r.TLSConfig())
	cli := f.client(t, "", "")

	// A long-lived connection opened before the rotation.
	live, err := tls.Dial("tcp", addr, cli)
	require.NoError(t, err)
	defer live.Close()
	seen := func() string {
		cs, err := dial(t, addr, cli)
		require.NoError(t, err)
		return cs.PeerCertificates[0].Subject.CommonName
	}
	assert.Equal(t, "mqtt.example.test", seen())

	// Handshakes keep running while the files change.
	stop := make(chan struct{})
	var failures atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := dial(t, addr, cli); err != nil {
					failures.Add(1)
				}
			}
		}()
	}

	// Half a rotation: the new certificate arrives before its key.
	next := f.server("mqtt-2026.example.test", f.inter)
	writeFile(t, f.fullchain, f.pem(next, f.inter))
	_, err = r.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not belong to the certificate")
	assert.Equal(t, "mqtt.example.test", seen(), "the old pair keeps serving")
	// The key arrives: the next reload swaps.
	writeFile(t, f.key, f.keyPEM(next))
	changed, err := r.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	assert.Equal(t, "mqtt-2026.example.test", seen())
	assert.Equal(t, uint64(2), r.Generation())
	changed, err = r.Reload()
	require.NoError(t, err)
	assert.False(t, changed, "nothing changed")

	close(stop)
	wg.Wait()
	assert.Zero(t, failures.Load(), "no handshake failed during the rotation")
	// The connection from before the rotation still works.
	_, err = live.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(live, buf)
	require.NoError(t, err)
	assert.Equal(t, int32(3), reloads.Load())
}

func TestReloadRefusesLostIntermediate(t *testing.T) {
	f := newFixture(t)
	r, err := NewReloader(f.config())
	require.NoError(t, err)
	writeFile(t, f.fullchain, f.pem(f.leaf))
	_, err = r.Reload()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the intermediate was lost")
}

func TestReloadCABundle(t *testing.T) {
	f := newFixture(t)
	r, err := NewReloader(f.mtls(RequireClientCert))
	require.NoError(t, err)
	addr, _, _ := serve(t, r.TLSConfig())
	rogueCli := f.client(t, f.rogueCert, f.rogueKey)
	_, err = dial(t, addr, rogueCli)
	require.Error(t, err)
	// Trust the second CA (with its CRL): its clients get in.
	writeFile(t, f.devCAFile, f.pem(f.devCA, f.rogueCA))
	rogueCRL := f.crl("rogue.crl", f.rogueCA, f.now.Add(time.Hour), 1)
	r.cfg.CRLFiles = append(r.cfg.CRLFiles, rogueCRL)
	changed, err := r.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	_, err = dial(t, addr, rogueCli)
	require.NoError(t, err)
}

func TestWatchNoticesContentNotMtime(t *testing.T) {
	f := newFixture(t)
	done := make(chan struct{}, 10)
	cfg := f.config()
	cfg.OnReload = func(changed bool, err error) {
		if changed {
			done <- struct{}{}
		}
	}
	r, err := NewReloader(cfg)
	require.NoError(t, err)
	st, _ := os.Stat(f.fullchain)
	next := f.server("rotated", f.inter)
	writeFile(t, f.fullchain, f.pem(next, f.inter))
	writeFile(t, f.key, f.keyPEM(next))
	// Keep the old modification time, as cp -p would.
	require.NoError(t, os.Chtimes(f.fullchain, st.ModTime(), st.ModTime()))
	require.NoError(t, os.Chtimes(f.key, st.ModTime(), st.ModTime()))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { r.Watch(ctx, 20*time.Millisecond); close(stopped) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not notice the new content")
	}
	cancel()
	<-stopped
	assert.Equal(t, uint64(2), r.Generation())
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Now = func() time.Time { return f.now.Add(70 * 24 * time.Hour) } // 20 of 90 days left
	r, err := NewReloader(cfg)
	require.NoError(t, err)
	ex := r.Expiry()
	require.NotEmpty(t, ex)
	assert.Equal(t, "server", ex[0].Role)
	assert.Equal(t, 19, ex[0].DaysLeft)
	assert.True(t, ex[0].RenewDue, "less than a third of the lifetime left")
	assert.Contains(t, ex[0].String(), "renew it now")
	cfg.Now = nil
	r, _ = NewReloader(cfg)
	assert.False(t, r.Expiry()[0].RenewDue)
}
