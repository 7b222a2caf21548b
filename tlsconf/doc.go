// Package tlsconf gives MQTT listeners TLS that is safe by default and
// rotates without a restart, using nothing but the standard library.
//
// # Safe by default
//
// Load and Reloader set every security-relevant field themselves, because
// Go's own defaults depend on the go line of the *program's* go.mod
// (GODEBUG), which a library cannot control: a broker built from a
// module that says "go 1.21" accepts TLS 1.0 when MinVersion is left
// unset. The floor is TLS 1.2; TLS 1.2 suites are the six ECDHE suites
// with AES-GCM or ChaCha20-Poly1305 (Go's default list still has CBC);
// curve preferences are left to Go, so hybrid post-quantum key exchange
// (X25519MLKEM768) stays on where the toolchain has it; ALPN is off
// unless asked for. Client certificates are either not asked for,
// verified if given, or required and verified — never accepted
// unverified.
//
// # Strict files
//
// Certificate, key, CA and CRL files are read strictly: trailing non-PEM
// bytes are refused (a half-written full chain otherwise loads as a
// leaf-only chain that clients reject), an encrypted key or swapped
// certificate and key are named as such, the chain must be in order and
// valid now, and a key that does not belong to its certificate is
// refused with the file that is wrong. Every error is a *FileError or
// *ConfigError that says which file or field and what to do.
//
// # Rotation
//
// A Reloader serves each handshake from an immutable snapshot behind an
// atomic pointer (GetConfigForClient), so new connections get new
// material and existing ones are untouched. Reload reads every file
// again, compares by content hash (a copy that keeps the modification
// time is still noticed), validates everything, and swaps only if all is
// well: a new certificate with the old key, a truncated chain, a chain
// that lost its intermediate, a CRL that does not verify — each leaves
// the previous snapshot serving and says why. The CA bundle and CRLs
// reload too. Watch polls; call Reload on SIGHUP.
//
// # Revocation
//
// CRLs are checked in VerifyConnection, which crypto/tls runs for every
// handshake including resumed sessions (VerifyPeerCertificate is skipped
// on resumption). With CRLs configured, every client certificate's issuer
// needs one, a stale CRL is refused (as mosquitto refuses one), and CRLs
// with unknown critical extensions are refused at load, as RFC 5280
// requires. Reloader.Revoked lets a broker drop live sessions after a
// CRL reload.
//
// # Identity
//
// IdentityFrom names a client from its *verified* certificate: the first
// Common Name (mosquitto's use_identity_as_username; Go's
// Subject.CommonName is the last), the RFC 2253 subject (mosquitto's
// use_subject_as_username), a URI or DNS SAN, or the SHA-256
// fingerprint.
//
// # Help
//
// Explain turns the errors operators meet into what to do; Expiry warns
// when a third of a certificate's lifetime is left rather than at a fixed
// 30 days; GenerateDev makes a development CA, server and client
// certificate so a broker can start with TLS on a fresh machine; and
// ClientConfig builds the client side for bridges and tests.
package tlsconf
