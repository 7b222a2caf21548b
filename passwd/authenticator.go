package passwd

import (
	"context"
	"crypto/x509"
	"errors"
	"time"
)

// ErrMismatch is Authenticate's error for a wrong password or an unknown
// user (the two are not told apart, to a client or in the time taken).
var ErrMismatch = errors.New("bad username or password")

// Authenticate checks a username and password against the file in
// force, with VerifyContext's cost bounds and cache. It has the
// signature of mqttguard.Authenticator (standard types only, so this
// package does not import the Guard):
//
//   - a CONNECT with no username, or naming an MQTT 5 authentication
//     method, is not this authenticator's to judge: no identity, no
//     error;
//   - a right password: the username is the identity, valid until the
//     file changes (expires is zero);
//   - a wrong password or unknown user: ErrMismatch;
//   - no hashing slot before ctx ended: an error that errors.Is ErrBusy
//     (the Guard answers "server busy" and counts it against no one).
func (h *Holder) Authenticate(ctx context.Context, username string, password []byte, method string, _ []byte, _ *x509.Certificate) (identity string, expires time.Time, cont []byte, err error) {
	if username == "" || method != "" {
		return "", time.Time{}, nil, nil
	}
	ok, err := h.VerifyContext(ctx, username, string(password))
	switch {
	case err != nil:
		return "", time.Time{}, nil, err
	case !ok:
		return "", time.Time{}, nil, ErrMismatch
	}
	return username, time.Time{}, nil, nil
}
