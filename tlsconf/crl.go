package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"
)

// crlIndex holds the revoked serials of each client CA.
type crlIndex struct {
	byIssuer map[string]*issuerCRL // key: the CA's RawSubject
}

type issuerCRL struct {
	ca      *x509.Certificate
	crl     *x509.RevocationList
	path    string
	revoked map[string]time.Time // serial (big-endian bytes) → revocation time
}

var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRL       = asn1.ObjectIdentifier{2, 5, 29, 27}
)

// buildCRLIndex parses the CRLs, matches each to the client CA that
// issued it, verifies its signature, and refuses what this package does
// not understand: a delta CRL, an unknown critical extension, a CRL past
// its NextUpdate (unless allowed). RFC 5280 says a CRL with a critical
// extension the reader does not understand must not be used; Go's parser
// does not check that, so it is checked here.
func buildCRLIndex(c *Config, f *files, cas []*x509.Certificate, now time.Time) (*crlIndex, error) {
	idx := &crlIndex{byIssuer: map[string]*issuerCRL{}}
	for i, path := range c.CRLFiles {
		crls, err := parseCRLs(path, f.crls[i])
		if err != nil {
			return nil, err
		}
		for _, crl := range crls {
			fail := func(format string, args ...any) error {
				return &FileError{Field: "CRLFiles", Path: path, Msg: fmt.Sprintf(format, args...)}
			}
			var ca *x509.Certificate
			for _, cand := range cas {
				if bytes.Equal(cand.RawSubject, crl.RawIssuer) &&
					(len(crl.AuthorityKeyId) == 0 || len(cand.SubjectKeyId) == 0 || bytes.Equal(crl.AuthorityKeyId, cand.SubjectKeyId)) {
					ca = cand
					break
				}
			}
			if ca == nil {
				return nil, fail("the CRL issued by %q matches no CA in %s", crl.Issuer.String(), c.ClientCAFile)
			}
			if err := crl.CheckSignatureFrom(ca); err != nil {
				return nil, fail("the CRL's signature does not verify with CA %q: %v", ca.Subject.CommonName, err)
			}
			for _, ext := range crl.Extensions {
				if ext.Id.Equal(oidDeltaCRL) {
					return nil, fail("is a delta CRL; give the full CRL")
				}
				if ext.Critical && !ext.Id.Equal(oidAuthorityKeyID) && !ext.Id.Equal(oidCRLNumber) {
					return nil, fail("has a critical extension %v this reader does not understand, so it must not be used (RFC 5280 §5.2)", ext.Id)
				}
			}
			for _, e := range crl.RevokedCertificateEntries {
				for _, ext := range e.Extensions {
					if ext.Critical {
						return nil, fail("revoked entry %s has a critical extension %v (an indirect CRL?) this reader does not understand", e.SerialNumber, ext.Id)
					}
				}
			}
			if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) && !c.AllowStaleCRL {
				return nil, fail("is stale: its next update was due %s; fetch a fresh CRL from the CA (or set AllowStaleCRL)", crl.NextUpdate.UTC().Format(time.RFC3339))
			}
			key := string(ca.RawSubject)
			if old := idx.byIssuer[key]; old != nil && !newer(crl, old.crl) {
				continue // keep the newer CRL of the same CA
			}
			ic := &issuerCRL{ca: ca, crl: crl, path: path, revoked: map[string]time.Time{}}
			for _, e := range crl.RevokedCertificateEntries {
				ic.revoked[string(e.SerialNumber.Bytes())] = e.RevocationTime
			}
			idx.byIssuer[key] = ic
		}
	}
	return idx, nil
}

func parseCRLs(path string, data []byte) ([]*x509.RevocationList, error) {
	var ders [][]byte
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		blocks, err := pemBlocks("CRLFiles", path, data)
		if err != nil {
			return nil, err
		}
		for i, b := range blocks {
			if b.Type != "X509 CRL" {
				return nil, &FileError{Field: "CRLFiles", Path: path, Msg: fmt.Sprintf("block %d is %q, want X509 CRL", i+1, b.Type)}
			}
			ders = append(ders, b.Bytes)
		}
	} else {
		ders = [][]byte{data}
	}
	var out []*x509.RevocationList
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, &FileError{Field: "CRLFiles", Path: path, Msg: fmt.Sprintf("CRL %d does not parse: %v", i+1, err), Err: err}
		}
		out = append(out, crl)
	}
	return out, nil
}

func newer(a, b *x509.RevocationList) bool {
	if a.Number != nil && b.Number != nil {
		return a.Number.Cmp(b.Number) > 0
	}
	return a.ThisUpdate.After(b.ThisUpdate)
}

// RevokedError says which client certificate was refused and why.
type RevokedError struct {
	Subject   string
	Serial    string
	Issuer    string
	RevokedAt time.Time // zero when the refusal is for a missing or stale CRL
	Msg       string
}

func (e *RevokedError) Error() string { return "tlsconf: " + e.Msg }

// check is the VerifyConnection hook: it runs for every handshake,
// resumed sessions included, which VerifyPeerCertificate does not.
func (idx *crlIndex) check(cs tls.ConnectionState, now time.Time, allowStale bool) error {
	if len(cs.VerifiedChains) == 0 {
		return nil // no client certificate (ClientAuth allows that)
	}
	for _, chain := range cs.VerifiedChains {
		if err := idx.checkChain(chain, now, allowStale); err != nil {
			return err
		}
	}
	return nil
}

func (idx *crlIndex) checkChain(chain []*x509.Certificate, now time.Time, allowStale bool) error {
	leaf := chain[0]
	issuer := leaf
	if len(chain) > 1 {
		issuer = chain[1]
	}
	ic := idx.byIssuer[string(issuer.RawSubject)]
	base := RevokedError{Subject: leaf.Subject.String(), Serial: leaf.SerialNumber.String(), Issuer: issuer.Subject.String()}
	switch {
	case ic == nil:
		base.Msg = fmt.Sprintf("client certificate %q: no CRL is loaded for its issuer %q; add that CA's CRL to CRLFiles", leaf.Subject.CommonName, issuer.Subject.CommonName)
		return &base
	case !ic.crl.NextUpdate.IsZero() && now.After(ic.crl.NextUpdate) && !allowStale:
		base.Msg = fmt.Sprintf("client certificate %q: the CRL of %q (%s) went stale at %s; fetch a fresh one", leaf.Subject.CommonName, issuer.Subject.CommonName, ic.path, ic.crl.NextUpdate.UTC().Format(time.RFC3339))
		return &base
	}
	if at, ok := ic.revoked[string(leaf.SerialNumber.Bytes())]; ok {
		base.RevokedAt = at
		base.Msg = fmt.Sprintf("client certificate %q (serial %s) was revoked at %s by %q", leaf.Subject.CommonName, leaf.SerialNumber, at.UTC().Format(time.RFC3339), issuer.Subject.CommonName)
		return &base
	}
	return nil
}
