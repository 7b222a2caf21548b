package mqttguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
)

// Authenticator proves who a client is from what its CONNECT presents:
// the username and password, the MQTT 5 authentication method and data,
// and the client certificate the TLS handshake verified (nil without
// one). It answers in one of four ways:
//
//   - identity != "": the client is identity (it becomes the client's
//     username, for the ACL and the rate limits), and its credentials are
//     valid until expires (zero: no end);
//   - err != nil: the credentials are refused;
//   - cont != nil: the authenticator needs another round of an MQTT 5
//     AUTH exchange, with cont as its Authentication Data;
//   - none of these: the credentials are not of its kind (no
//     certificate, a method it does not speak) — it has no opinion.
//
// The interface is written in standard types only, so that a leaf
// satisfies it without importing this package: *passwd.Holder (username
// and password, with its cost bounds) and tlsconf.Authenticator (the
// certificate alone) do. A broker that is not written in Go (a mosquitto
// plugin) hands over its certificate as an *x509.Certificate.
//
// An error may say which reason code the client hears by having a
// method ReasonCode() reason.Code; otherwise it is 0x86 (0x8C when the
// client named an authentication method). An error that errors.Is
// context.DeadlineExceeded or context.Canceled — as passwd.ErrBusy is —
// or that says 0x88/0x89 means the authenticator could not decide: the
// client hears "server busy" and nothing counts against its address.
//
// Authenticate may block, at most until ctx ends: the Guard gives it
// Config.VerifyWait (default 2 s) within the caller's ctx.
type Authenticator interface {
	Authenticate(ctx context.Context, username string, password []byte, method string, data []byte, cert *x509.Certificate) (identity string, expires time.Time, cont []byte, err error)
}

// A SessionAuthenticator's credentials carry more than an identity: the
// session's own permissions (a token's acl claim; jwtauth.Authenticator
// is one). The Guard calls AuthenticateSession instead of Authenticate,
// with the client ID (for claims tied to it); rules, when not nil,
// become Client.Permissions.
type SessionAuthenticator interface {
	Authenticator
	AuthenticateSession(ctx context.Context, clientID, username string, password []byte, method string, data []byte, cert *x509.Certificate) (identity string, expires time.Time, rules *acl.Policy, err error)
}

// An Authenticator with a Signed method says which credentials it
// decides by a signature rather than by a secret an attacker could
// guess (jwtauth: anything shaped like a token). For those, the
// AuthGate's turns and failures are the address's alone, never the
// claimed username's.
type signedCredentials interface {
	Signed(username string, password []byte, method string) bool
}

// An Authenticator with a Cached method (as *passwd.Holder has) can say
// cheaply that it admitted these credentials a moment ago. The Guard
// asks it before a client waits its turn at the AuthGate, so a device
// that reconnects never queues behind a guesser.
type cachedAuthenticator interface {
	Cached(username, password string) bool
}

// VerifiedCertificate is the client certificate a Go TLS handshake
// verified (ConnectRequest.Certificate), or nil: none, or one the server
// did not verify.
func VerifiedCertificate(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil {
		return nil
	}
	return tlsconf.VerifiedLeaf(*cs)
}

// codeOf is the reason code a refusal from an authenticator sends, and
// whether it is a failure of the credentials (evidence against the
// address) rather than of the authenticator (busy, unavailable).
func codeOf(err error, method string) (code reason.Code, failed bool) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return reason.ServerBusy, false
	}
	var c interface{ ReasonCode() reason.Code }
	if errors.As(err, &c) {
		code = c.ReasonCode()
		switch code {
		case reason.ServerUnavailable, reason.ServerBusy:
			return code, false
		}
		if code.IsError() && code.ValidIn(2) {
			return code, true
		}
	}
	if method != "" {
		return reason.BadAuthenticationMethod, true
	}
	return reason.BadUsernameOrPassword, true
}
