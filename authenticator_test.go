package mqttguard_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenAuth is a third kind of authenticator, written against the
// interface alone: MQTT 5 enhanced authentication with method
// "x-token" and data "sub:<name>". The Guard knows nothing of it.
type tokenAuth struct{ calls int }

var errRevoked = refusal{reason.NotAuthorized, "token revoked"}

type refusal struct {
	code reason.Code
	msg  string
}

func (r refusal) Error() string           { return r.msg }
func (r refusal) ReasonCode() reason.Code { return r.code }
func (a *tokenAuth) expires() time.Time   { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
func (a *tokenAuth) Authenticate(ctx context.Context, _ string, _ []byte, method string, data []byte, _ *x509.Certificate) (string, time.Time, []byte, error) {
	a.calls++
	if method != "x-token" {
		return "", time.Time{}, nil, nil // not mine
	}
	switch d := string(data); {
	case d == "revoked":
		return "", time.Time{}, nil, errRevoked
	case d == "slow":
		<-ctx.Done()
		return "", time.Time{}, nil, ctx.Err()
	case d == "more":
		return "", time.Time{}, []byte("challenge"), nil
	case strings.HasPrefix(d, "sub:"):
		return strings.TrimPrefix(d, "sub:"), a.expires(), nil, nil
	}
	return "", time.Time{}, nil, errors.New("token does not parse")
}

func authGuard(t *testing.T, auths ...mqttguard.Authenticator) (*mqttguard.Guard, *trust.Bans, *trust.AuthGate) {
	t.Helper()
	bans := &trust.Bans{}
	gate, err := trust.NewAuthGate(trust.AuthGateConfig{})
	require.NoError(t, err)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Authenticators: auths, Bans: bans, AuthGate: gate,
		VerifyWait: 50 * time.Millisecond})
	require.NoError(t, err)
	return g, bans, gate
}

func cheapPasswords(t *testing.T) *passwd.Holder {
	t.Helper()
	h, err := passwd.HashIterations("right", 1000)
	require.NoError(t, err)
	f, err := passwd.ParseMosquitto(strings.NewReader("bob:" + h + "\n"))
	require.NoError(t, err)
	return passwd.NewHolder(f)
}

var attacker = netip.MustParseAddrPort("198.51.100.7:40000")

func TestAThirdKindOfAuthenticator(t *testing.T) {
	tok := &tokenAuth{}
	g, _, _ := authGuard(t, cheapPasswords(t), tok)
	now := time.Now()

	c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-1", Addr: attacker,
		AuthMethod: "x-token", AuthData: []byte("sub:alice"), ProtocolVersion: 5}, now)
	require.True(t, d.Allowed(), "%v", d)
	assert.Equal(t, "alice", c.Username, "the proven identity is the username")
	assert.Equal(t, tok.expires(), c.Expires)

	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "bob-1", Username: "bob", Password: []byte("right"),
		HasPassword: true, Addr: attacker, ProtocolVersion: 5}, now)
	assert.True(t, d.Allowed(), "passwords still work beside it: %v", d)

	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-2", Addr: attacker,
		AuthMethod: "x-token", AuthData: []byte("revoked"), ProtocolVersion: 5}, now)
	assert.Equal(t, reason.NotAuthorized, d.Code, "an error says its own code: %v", d)
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-3", Addr: attacker,
		AuthMethod: "x-token", AuthData: []byte("garbage"), ProtocolVersion: 5}, now)
	assert.Equal(t, reason.BadAuthenticationMethod, d.Code, "a plain error with a method is 0x8C: %v", d)
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-4", Addr: attacker,
		AuthMethod: "x-token", AuthData: []byte("more"), ProtocolVersion: 5}, now)
	assert.Equal(t, reason.BadAuthenticationMethod, d.Code, "no AUTH exchange yet: refused, never admitted: %v", d)
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-5", Addr: attacker,
		AuthMethod: "SCRAM-SHA-1", ProtocolVersion: 5}, now)
	assert.Equal(t, reason.BadAuthenticationMethod, d.Code, "a method nobody speaks: %v", d)
	assert.Contains(t, d.Cause.Detail, `"SCRAM-SHA-1" is not supported`)
}

// A refusal ends the chain: a wrong password is never tried against the
// next authenticator (a guesser gets one try per attempt).
func TestARefusalEndsTheChain(t *testing.T) {
	tok := &tokenAuth{}
	g, _, _ := authGuard(t, cheapPasswords(t), tok)
	_, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "bob-1", Username: "bob", Password: []byte("wrong"),
		HasPassword: true, Addr: attacker, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.BadUsernameOrPassword, d.Code, "%v", d)
	assert.NotContains(t, d.Cause.String(), "bob", "the refusal does not name the claimed username")
	assert.Zero(t, tok.calls, "the token authenticator was not asked")

	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "anon", Addr: attacker, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.NotAuthorized, d.Code, "nobody had an opinion, no username: %v", d)
}

// An authenticator that cannot decide in VerifyWait is "server busy",
// and counts against no one.
func TestASlowAuthenticatorIsBusy(t *testing.T) {
	g, _, gate := authGuard(t, &tokenAuth{})
	for range 20 {
		_, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev", Addr: attacker,
			AuthMethod: "x-token", AuthData: []byte("slow"), ProtocolVersion: 5}, time.Now())
		require.Equal(t, reason.ServerBusy, d.Code, "%v", d)
	}
	assert.Zero(t, gate.Failures(attacker.Addr(), time.Now()), "busy is not a failure")
}

// The ban list is asked about the identity the authenticator proved, not
// only the username the CONNECT claimed.
func TestTheProvenIdentityIsCheckedForBans(t *testing.T) {
	g, bans, _ := authGuard(t, &tokenAuth{})
	require.NoError(t, bans.Add(trust.Ban{Kind: trust.BanUsername, Value: "alice"}))
	_, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "dev-1", Username: "innocent", Addr: attacker,
		AuthMethod: "x-token", AuthData: []byte("sub:alice"), ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.Banned, d.Code, "%v", d)
}

// A login as one identity while claiming another's username does not
// reset the AuthGate for the username claimed: guessing sensor1's
// password stays spaced out however often the guesser logs in as itself
// with "sensor1" in its CONNECT.
func TestALoginAsYourselfDoesNotResetAnotherUsernamesTurns(t *testing.T) {
	bans := &trust.Bans{}
	gate, err := trust.NewAuthGate(trust.AuthGateConfig{Free: 3, Delay: 30 * time.Millisecond, MaxDelay: time.Hour, BanAfter: 1000})
	require.NoError(t, err)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Bans: bans, AuthGate: gate,
		Authenticators: []mqttguard.Authenticator{&tokenAuth{}, cheapPasswords(t)}})
	require.NoError(t, err)
	connect := func(r *mqttguard.ConnectRequest, patience time.Duration) reason.Code {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		r.Addr, r.ProtocolVersion = attacker, 5
		_, d := g.Connect(ctx, r, time.Now())
		return d.Code
	}
	// mallory's own token, claiming bob's username, waiting its turn.
	asMallory := func() reason.Code {
		return connect(&mqttguard.ConnectRequest{ClientID: "m", Username: "bob", AuthMethod: "x-token", AuthData: []byte("sub:mallory")}, 5*time.Second)
	}
	// A guess of bob's password that does not wait for a turn.
	guess := func(i int) reason.Code {
		return connect(&mqttguard.ConnectRequest{ClientID: fmt.Sprint("g", i), Username: "bob",
			Password: []byte(fmt.Sprint("guess-", i)), HasPassword: true}, 10*time.Millisecond)
	}
	require.Equal(t, reason.Success, asMallory())
	var codes []reason.Code
	for i := range 5 {
		codes = append(codes, guess(i))
	}
	assert.Equal(t, []reason.Code{0x86, 0x86, 0x86, 0x86, 0x89}, codes, "3 free, one now, then a turn further than the guesser waits")
	require.Equal(t, reason.Success, asMallory(), "mallory waits her turn and logs in as herself, claiming bob")
	assert.Equal(t, reason.ServerBusy, guess(5), "bob's turns at this address are not reset by her login")
}

// A certificate does not answer for a client that asked for an MQTT 5
// authentication method [MQTT-4.12.0-5], and the cache of recent password
// successes never stands in for a certificate's verdict.
func TestCertificatesAndMethodsAndTheCache(t *testing.T) {
	pw := cheapPasswords(t)
	g, _, _ := authGuard(t, tlsconf.Authenticator{}, pw)
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "dev-7",
		Names: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "dev-7"}}}, NotAfter: time.Now().Add(time.Hour)}
	c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "c", Addr: attacker, Certificate: cert, ProtocolVersion: 5}, time.Now())
	require.True(t, d.Allowed(), "%v", d)
	assert.Equal(t, "dev-7", c.Username)
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "c", Addr: attacker, Certificate: cert,
		AuthMethod: "SCRAM-SHA-256", ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.BadAuthenticationMethod, d.Code, "the method's authenticator decides, and there is none: %v", d)

	// bob's password is cached by a login without a certificate...
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "b", Username: "bob", Password: []byte("right"), HasPassword: true, Addr: attacker, ProtocolVersion: 5}, time.Now())
	require.True(t, d.Allowed(), "%v", d)
	// ...and a certificate that names no one is still refused beside it.
	nameless := &x509.Certificate{NotAfter: time.Now().Add(time.Hour)}
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "b2", Username: "bob", Password: []byte("right"), HasPassword: true,
		Addr: attacker, Certificate: nameless, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.BadUsernameOrPassword, d.Code, "the chain's first authenticator refused: %v", d)
}

// A broker that cannot hold one CONNECT without holding every client
// (mosquitto's one thread) gets a busy refusal where AuthGate would make
// the address wait its turn: a guesser must not stall the broker for a
// growing delay per guess.
func TestCannotDelayNeverHoldsAConnect(t *testing.T) {
	gate, err := trust.NewAuthGate(trust.AuthGateConfig{Free: 3, Delay: 50 * time.Millisecond, MaxDelay: time.Hour, BanAfter: 1000})
	require.NoError(t, err)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, AuthGate: gate, CannotDelay: true,
		Authenticators: []mqttguard.Authenticator{cheapPasswords(t)}})
	require.NoError(t, err)
	var codes []reason.Code
	var last mqttguard.Decision
	for i := range 5 {
		_, last = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: fmt.Sprint("g", i), Username: "bob",
			Password: []byte(fmt.Sprint("guess-", i)), HasPassword: true, Addr: attacker, ProtocolVersion: 5}, time.Now())
		codes = append(codes, last.Code)
	}
	assert.Equal(t, []reason.Code{0x86, 0x86, 0x86, 0x86, 0x89}, codes, "3 free, one now, then busy instead of a wait")
	assert.Contains(t, last.Cause.Detail, "due in", "refused at once, not after waiting")
}

// signedAuth decides "tok:" passwords by a (pretend) signature.
type signedAuth struct{}

func (signedAuth) Signed(_ string, password []byte, method string) bool {
	return method == "" && strings.HasPrefix(string(password), "tok:")
}

func (signedAuth) Authenticate(_ context.Context, _ string, password []byte, _ string, _ []byte, _ *x509.Certificate) (string, time.Time, []byte, error) {
	switch string(password) {
	case "tok:good":
		return "dev-1", time.Time{}, nil, nil
	case "":
		return "", time.Time{}, nil, nil
	}
	if strings.HasPrefix(string(password), "tok:") {
		return "", time.Time{}, nil, errors.New("token: the signature does not verify")
	}
	return "", time.Time{}, nil, nil
}

// Forged tokens that name a device are no guesses at its secret: they
// slow their own addresses, never the device's logins.
func TestForgedTokensDoNotSlowTheDevice(t *testing.T) {
	gate, err := trust.NewAuthGate(trust.AuthGateConfig{Free: 1, Delay: time.Second, MaxDelay: 10 * time.Second, BanAfter: 1000})
	require.NoError(t, err)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, AuthGate: gate, Authenticators: []mqttguard.Authenticator{signedAuth{}}})
	require.NoError(t, err)
	connect := func(from, user, pass string) mqttguard.Decision {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, d := g.Connect(ctx, &mqttguard.ConnectRequest{ClientID: "c", Username: user, Password: []byte(pass), HasPassword: true,
			Addr: netip.MustParseAddrPort(from + ":1"), ProtocolVersion: 5}, time.Now())
		return d
	}
	for i := range 9 {
		connect(fmt.Sprintf("198.51.100.%d", 10+i%3), "dev-1", fmt.Sprint("tok:forged-", i))
	}
	d := connect("203.0.113.9", "dev-1", "tok:good")
	assert.Equal(t, mqttguard.Allow, d.Verdict, "the device's token is not kept waiting: %v", d)
	assert.Equal(t, reason.ServerBusy, connect("198.51.100.10", "dev-1", "tok:forged").Code, "the forging address is")
}

// With anonymous clients allowed, credentials without a username are
// still judged: a token is not anonymous.
func TestAnonymousIsNoCredentialsAtAll(t *testing.T) {
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, AllowAnonymous: true, Authenticators: []mqttguard.Authenticator{signedAuth{}}})
	require.NoError(t, err)
	_, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "a", Addr: attacker, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, mqttguard.Allow, d.Verdict, "no credentials: anonymous")
	_, d = g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "b", Password: []byte("tok:forged"), HasPassword: true,
		Addr: attacker, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, reason.BadUsernameOrPassword, d.Code, "a forged token is refused, not admitted as anonymous")
	c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "c", Password: []byte("tok:good"), HasPassword: true,
		Addr: attacker, ProtocolVersion: 5}, time.Now())
	assert.Equal(t, mqttguard.Allow, d.Verdict)
	assert.Equal(t, "dev-1", c.Username, "a good one is who it says")
}
