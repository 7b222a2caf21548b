package mqttguard_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
)

// sessionAuth admits "tok" as dev-1 until exp, with its own rules.
type sessionAuth struct {
	exp    time.Time
	rules  *acl.Policy
	gotCID string
}

func (s *sessionAuth) Authenticate(context.Context, string, []byte, string, []byte, *x509.Certificate) (string, time.Time, []byte, error) {
	panic("the Guard calls AuthenticateSession when there is one")
}

func (s *sessionAuth) AuthenticateSession(_ context.Context, clientID, _ string, password []byte, _ string, _ []byte, _ *x509.Certificate) (string, time.Time, *acl.Policy, error) {
	if string(password) != "tok" {
		return "", time.Time{}, nil, nil
	}
	s.gotCID = clientID
	return "dev-1", s.exp, s.rules, nil
}

// A session's own permissions replace the broker's ACL for that client,
// and its credentials' end ends what it may do.
func TestSessionPermissionsAndExpiry(t *testing.T) {
	now := time.Now()
	own, err := acl.NewPolicy([]acl.Rule{{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.All, Filter: "devices/%c/#"}}, acl.Options{})
	require.NoError(t, err)
	broker, err := acl.NewPolicy([]acl.Rule{{Subject: acl.Anyone(), Effect: acl.Allow, Access: acl.All, Filter: "#"}}, acl.Options{})
	require.NoError(t, err)
	sa := &sessionAuth{exp: now.Add(time.Minute), rules: own}
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Authenticators: []mqttguard.Authenticator{sa},
		ACL: acl.NewHolder(broker), DropWillOnExpiry: true})
	require.NoError(t, err)

	c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "d1", Password: []byte("tok"), HasPassword: true,
		Addr: attacker, ProtocolVersion: 5}, now)
	require.Equal(t, mqttguard.Allow, d.Verdict, "%v", d)
	assert.Equal(t, "d1", sa.gotCID, "the client ID reaches the authenticator")
	assert.Equal(t, "dev-1", c.Username)
	assert.Equal(t, sa.exp, c.Expires)
	require.Same(t, own, c.Permissions)

	pub := func(topic string, at time.Time) mqttguard.Decision {
		return g.Publish(context.Background(), &c, &mqttguard.Message{Topic: topic, QoS: 1, Subscribers: -1}, at)
	}
	assert.Equal(t, mqttguard.Allow, pub("devices/d1/temp", now).Verdict)
	assert.Equal(t, reason.NotAuthorized, pub("other/topic", now).Code, "the broker's allow-all does not add to the session's rules")
	assert.Equal(t, mqttguard.Drop, g.Deliver(&c, &mqttguard.Message{Topic: "other/topic"}).Verdict)
	assert.Equal(t, mqttguard.Allow, g.Deliver(&c, &mqttguard.Message{Topic: "devices/d1/cmd"}).Verdict)

	later := sa.exp.Add(time.Millisecond)
	d = pub("devices/d1/temp", later)
	assert.Equal(t, mqttguard.Disconnect, d.Verdict)
	assert.Equal(t, reason.MaximumConnectTime, d.Code, "0xA0: the time this connection was authorized for is over")
	assert.Equal(t, mqttguard.ByExpiry, d.Cause.Component)
	assert.Equal(t, reason.MaximumConnectTime, g.Subscribe(context.Background(), &c, "devices/d1/#", 1, later).Code)
	assert.True(t, c.Expired(later))
	assert.False(t, c.Expired(now))
	assert.Equal(t, mqttguard.Drop, g.Disconnect(&c, &mqttguard.Message{Topic: "devices/d1/status"}, later).Verdict, "DropWillOnExpiry")
	assert.Equal(t, mqttguard.Allow, g.Disconnect(&c, &mqttguard.Message{Topic: "devices/d1/status"}, now).Verdict)

	// A client without a session's rules is the broker ACL's.
	other := mqttguard.Client{ID: "x", Username: "x"}
	assert.Equal(t, mqttguard.Allow, g.Publish(context.Background(), &other, &mqttguard.Message{Topic: "other/topic", Subscribers: -1}, now).Verdict)
}
