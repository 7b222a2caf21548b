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
