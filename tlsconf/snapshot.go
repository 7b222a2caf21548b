package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// snapshot is everything one configuration load produced. It is never
// modified after it is built: handshakes read it without locks.
type snapshot struct {
	tls       *tls.Config
	chain     []*x509.Certificate // server leaf, then intermediates
	clientCAs []*x509.Certificate
	crls      *crlIndex
	hash      [32]byte
	gen       uint64
	warnings  []string
}

// files are the contents of every file a Config names, read once per
// load so the hash and the parse see the same bytes.
type files struct {
	cert, key, ca []byte
	crls          [][]byte
}

func readAll(c *Config) (*files, error) {
	f := &files{}
	var err error
	if f.cert, err = readFile("CertFile", c.CertFile); err != nil {
		return nil, err
	}
	if f.key, err = readFile("KeyFile", c.KeyFile); err != nil {
		return nil, err
	}
	if c.ClientCAFile != "" {
		if f.ca, err = readFile("ClientCAFile", c.ClientCAFile); err != nil {
			return nil, err
		}
	}
	for _, p := range c.CRLFiles {
		data, err := readFile("CRLFiles", p)
		if err != nil {
			return nil, err
		}
		f.crls = append(f.crls, data)
	}
	return f, nil
}

func (f *files) hash() [32]byte {
	h := sha256.New()
	for _, part := range append([][]byte{f.cert, f.key, f.ca}, f.crls...) {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// build validates the configuration's files and makes a snapshot. prev,
// when not nil, is the snapshot in force: a reload that would silently
// shorten the certificate chain is refused against it.
func build(c *Config, f *files, prev *snapshot) (*snapshot, error) {
	now := c.now()
	s := &snapshot{hash: f.hash()}

	chain, err := parseChain("CertFile", c.CertFile, f.cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := parseKey("KeyFile", c.KeyFile, f.key)
	if err != nil {
		return nil, err
	}
	// The chain first: with certificates out of order, "the key does not
	// match" would name the wrong certificate.
	if err := checkChain(c, chain, now); err != nil {
		return nil, err
	}
	var certPEM bytes.Buffer
	for _, crt := range chain {
		pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw})
	}
	pair, err := tls.X509KeyPair(certPEM.Bytes(), keyPEM)
	if err != nil {
		return nil, keyPairError(c, chain[0], err)
	}
	leaf := chain[0]
	leafOnly := len(chain) == 1 && !selfIssued(leaf)
	if leafOnly && prev != nil && len(prev.chain) > 1 {
		return nil, &FileError{Field: "CertFile", Path: c.CertFile,
			Msg: fmt.Sprintf("holds only the server certificate, but the chain in force has %d certificates: the intermediate was lost (a truncated full chain, or cert.pem instead of fullchain.pem?)", len(prev.chain))}
	}
	s.chain = chain

	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: DefaultCipherSuites,
		Certificates: []tls.Certificate{pair},
		NextProtos:   c.ALPN,
	}
	if c.MinVersion != 0 {
		cfg.MinVersion = c.MinVersion
	}
	if len(c.CipherSuites) > 0 {
		cfg.CipherSuites = c.CipherSuites
	}
	if c.Now != nil {
		cfg.Time = c.Now
	}
	if c.ClientCAFile != "" {
		cas, err := parseChain("ClientCAFile", c.ClientCAFile, f.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, ca := range cas {
			if !ca.IsCA {
				s.warnings = append(s.warnings, fmt.Sprintf("%s: %q is not a CA certificate; clients cannot chain to it", c.ClientCAFile, ca.Subject.CommonName))
			}
			if now.After(ca.NotAfter) {
				s.warnings = append(s.warnings, fmt.Sprintf("%s: CA %q expired on %s; no client certificate will verify", c.ClientCAFile, ca.Subject.CommonName, ca.NotAfter.Format(time.DateOnly)))
			}
			pool.AddCert(ca)
		}
		s.clientCAs = cas
		cfg.ClientCAs = pool
		switch c.ClientAuth {
		case RequestClientCert:
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		case RequireClientCert:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	// A leaf alone is what a private PKI serves when its root signs
	// servers directly (tlsconf.GenerateDev's): clients are given that root,
	// and there is no intermediate to forget. Anything else may be a lost
	// intermediate.
	if leafOnly && !signedByRootIn(leaf, s.clientCAs) {
		s.warnings = append(s.warnings, fmt.Sprintf("%s holds no intermediate certificate for %q: clients that do not already know the issuer %q will refuse it; serve the full chain (Let's Encrypt: fullchain.pem, not cert.pem)",
			c.CertFile, leaf.Subject.CommonName, leaf.Issuer.CommonName))
	}
	if len(c.CRLFiles) > 0 {
		idx, err := buildCRLIndex(c, f, s.clientCAs, now)
		if err != nil {
			return nil, err
		}
		s.crls = idx
		allowStale, clock := c.AllowStaleCRL, c.now
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return idx.check(cs, clock(), allowStale)
		}
	}
	s.tls = cfg
	s.warnings = append(s.warnings, godebugWarnings()...)
	return s, nil
}

func selfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, c.RawSubject) }

// signedByRootIn reports whether one of cas is a self-signed root that
// signed leaf.
func signedByRootIn(leaf *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if ca.IsCA && selfIssued(ca) && ca.CheckSignatureFrom(ca) == nil &&
			bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func parseChain(field, path string, data []byte) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(field, path, data)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for i, b := range blocks {
		switch {
		case b.Type == "CERTIFICATE":
		case isKeyBlock(b.Type):
			return nil, &FileError{Field: field, Path: path,
				Msg: fmt.Sprintf("block %d is a private key, not a certificate: are the certificate and key files swapped?", i+1)}
		default:
			return nil, &FileError{Field: field, Path: path, Msg: fmt.Sprintf("block %d is %q, want CERTIFICATE", i+1, b.Type)}
		}
		crt, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, &FileError{Field: field, Path: path, Msg: fmt.Sprintf("certificate %d does not parse: %v", i+1, err), Err: err}
		}
		certs = append(certs, crt)
	}
	return certs, nil
}

func parseKey(field, path string, data []byte) ([]byte, error) {
	blocks, err := pemBlocks(field, path, data)
	if err != nil {
		return nil, err
	}
	var key *pem.Block
	for i, b := range blocks {
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED":
			return nil, &FileError{Field: field, Path: path,
				Msg: "the private key is encrypted with a passphrase, which a server cannot type: decrypt it with `openssl pkey -in KEY -out KEY.plain` and protect the file by its permissions"}
		case b.Type == "CERTIFICATE":
			return nil, &FileError{Field: field, Path: path,
				Msg: fmt.Sprintf("block %d is a certificate, not a key: are the certificate and key files swapped?", i+1)}
		case isKeyBlock(b.Type):
			if key != nil {
				return nil, &FileError{Field: field, Path: path, Msg: "holds more than one private key"}
			}
			key = b
		case b.Type == "EC PARAMETERS":
			// openssl ecparam -genkey writes these before the key.
		default:
			return nil, &FileError{Field: field, Path: path, Msg: fmt.Sprintf("block %d is %q, want a PRIVATE KEY", i+1, b.Type)}
		}
	}
	if key == nil {
		return nil, &FileError{Field: field, Path: path, Msg: "holds no private key"}
	}
	return pem.EncodeToMemory(key), nil
}

// keyPairError turns crypto/tls's key pair errors into what to do.
func keyPairError(c *Config, leaf *x509.Certificate, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match public key type"):
		msg = fmt.Sprintf("the key in %s is of another type than the certificate's %s key: it belongs to another certificate", c.KeyFile, leaf.PublicKeyAlgorithm)
	case strings.Contains(msg, "does not match public key"):
		msg = fmt.Sprintf("the key in %s does not belong to the certificate for %q: a rotation half done (new certificate, old key)? The previous pair keeps serving until both files match", c.KeyFile, leaf.Subject.CommonName)
	case strings.Contains(msg, "failed to parse private key"):
		msg = fmt.Sprintf("the key in %s does not parse (%v)", c.KeyFile, err)
	}
	return &FileError{Field: "KeyFile", Path: c.KeyFile, Msg: msg, Err: err}
}

// checkChain validates the server chain: order, validity now, usage.
func checkChain(c *Config, chain []*x509.Certificate, now time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return &FileError{Field: "CertFile", Path: c.CertFile,
				Msg: fmt.Sprintf("certificate %d (%q) is not signed by certificate %d (%q): the chain must go from the server certificate up to its issuer, in order (%v)",
					i+1, chain[i].Subject.CommonName, i+2, chain[i+1].Subject.CommonName, err), Err: err}
		}
	}
	for i, crt := range chain {
		what := "the server certificate"
		if i > 0 {
			what = fmt.Sprintf("intermediate %q", crt.Subject.CommonName)
		}
		switch {
		case now.Before(crt.NotBefore):
			return &FileError{Field: "CertFile", Path: c.CertFile,
				Msg: fmt.Sprintf("%s is not valid before %s (now %s): is the clock right?", what, crt.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
		case now.After(crt.NotAfter):
			return &FileError{Field: "CertFile", Path: c.CertFile,
				Msg: fmt.Sprintf("%s expired on %s: renew it", what, crt.NotAfter.UTC().Format(time.RFC3339))}
		}
	}
	leaf := chain[0]
	if len(leaf.ExtKeyUsage) > 0 {
		ok := false
		for _, u := range leaf.ExtKeyUsage {
			if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
				ok = true
			}
		}
		if !ok {
			return &FileError{Field: "CertFile", Path: c.CertFile,
				Msg: "the server certificate's extended key usage lacks serverAuth: it was issued for clients, not servers"}
		}
	}
	return nil
}

// godebugWarnings reports GODEBUG defaults that weaken TLS in the binary
// (they come from the main module's go.mod line, which a library cannot
// set). This package sets MinVersion and CipherSuites itself, so only
// what it cannot override is reported.
func godebugWarnings() []string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	var out []string
	for _, s := range info.Settings {
		if s.Key != "DefaultGODEBUG" {
			continue
		}
		for _, kv := range strings.Split(s.Value, ",") {
			switch kv {
			case "tlsmlkem=0":
				out = append(out, "the binary's go.mod line turns off post-quantum key exchange (GODEBUG tlsmlkem=0); raise the go line to 1.24 or later")
			case "tlssha1=1":
				out = append(out, "the binary allows SHA-1 signatures in TLS 1.2 (GODEBUG tlssha1=1)")
			case "x509keypairleaf=0":
				out = append(out, "GODEBUG x509keypairleaf=0: tls.Certificate.Leaf is not filled in")
			}
		}
	}
	return out
}
