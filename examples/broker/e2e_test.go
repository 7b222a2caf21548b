package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCredentialsAndACL(t *testing.T) {
	tb := startBroker(t, nil)
	_, ca, err := tb.Dial5(t, dialOpts{ID: "s1", User: "sensor1", Pass: "wrong"})
	require.Error(t, err)
	require.NotNil(t, ca)
	assert.Equal(t, byte(0x86), ca.ReasonCode, "bad user name or password")

	_, ca, err = tb.Dial5(t, dialOpts{ID: "anon"})
	require.Error(t, err)
	assert.Equal(t, byte(0x87), ca.ReasonCode, "anonymous clients are refused")

	s1 := tb.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0x00), s1.Pub(t, "sensors/sensor1/temperature", "21.5", 1))
	assert.Equal(t, byte(0x87), s1.Pub(t, "sensors/sensor2/temperature", "99", 1), "not its own subtree")
	assert.Equal(t, byte(0x87), s1.Pub(t, "commands/sensor1/x", "1", 1))

	assert.Equal(t, "2", tb.Metric(t, `mqttguard_refusals_total{component="password"}`))
	assert.Equal(t, "2", tb.Metric(t, `mqttguard_refusals_total{component="acl"}`))
	assert.Contains(t, tb.Logs.String(), `component=acl verdict=reject code=135`)
}

// A restricted user subscribed to '#' receives only what it may read.
func TestSubscribeEverythingReceivesWhatItMayRead(t *testing.T) {
	tb := startBroker(t, nil)
	dash := tb.Login(t, "dash", "dashboard")
	assert.Less(t, dash.Sub(t, "#"), byte(0x80), "mosquitto semantics: the subscription stands, deliveries are checked")
	s1 := tb.Login(t, "s1", "sensor1")
	// the sensor reads its commands; the dashboard may not
	assert.Less(t, s1.Sub(t, "commands/sensor1/#"), byte(0x80))
	admin := tb.Login(t, "adm", "admin")
	admin.Pub(t, "sensors/sensor1/temperature", "21.5", 1)
	admin.Pub(t, "commands/sensor1/reboot", "now", 1)
	admin.Pub(t, "billing/invoices", "secret", 1)
	assert.Equal(t, []string{"sensors/sensor1/temperature 21.5"}, dash.Received(500*time.Millisecond))
	assert.Equal(t, []string{"commands/sensor1/reboot now"}, s1.Received(200*time.Millisecond))

	// With subscribe_check = "covers" the same SUBSCRIBE is refused.
	strict := startBroker(t, func(c *guardconf.Config) { c.Security.SubscribeCheck = "covers" })
	d2 := strict.Login(t, "dash", "dashboard")
	assert.Equal(t, byte(0x87), d2.Sub(t, "#"))
	assert.Less(t, d2.Sub(t, "sensors/+/temperature"), byte(0x80))
}

func TestTLS(t *testing.T) {
	tb := startBroker(t, nil)
	ca := filepath.Join(tb.Dir, "tls", "ca.pem")
	plain, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost"})
	require.NoError(t, err)
	c, _, err := tb.Dial5(t, dialOpts{ID: "tls1", User: "sensor1", Pass: passwords["sensor1"], TLS: plain})
	require.NoError(t, err, "TLS without a client certificate (tls_client_auth = request)")
	assert.Equal(t, byte(0), c.Pub(t, "sensors/sensor1/t", "1", 1))

	withCert, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost",
		CertFile: filepath.Join(tb.Dir, "tls", "client.pem"), KeyFile: filepath.Join(tb.Dir, "tls", "client-key.pem")})
	require.NoError(t, err)
	_, _, err = tb.Dial5(t, dialOpts{ID: "tls2", User: "sensor1", Pass: passwords["sensor1"], TLS: withCert})
	require.NoError(t, err)
	var names []string
	for _, ci := range tb.Clients(t) {
		names = append(names, ci.ID+"="+ci.CertName)
	}
	assert.ElementsMatch(t, []string{"tls1=", "tls2=dev-client"}, names)

	_, err = tls.Dial("tcp", tb.Addr("tls"), &tls.Config{ServerName: "localhost"})
	assert.Error(t, err, "the development CA is not in the system pool")
}

func TestCertificateIdentityAsUsername(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.MQTT.TLSClientAuth = "require"
		c.Security.UseIdentityAsUsername = true
	})
	require.NoError(t, os.WriteFile(filepath.Join(tb.Dir, "acl"),
		[]byte(guardstack.DefaultACL+"\nuser dev-client\ntopic write devices/#\n"), 0o600))
	require.NoError(t, tb.b.Reload())
	ca := filepath.Join(tb.Dir, "tls", "ca.pem")
	withCert, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost",
		CertFile: filepath.Join(tb.Dir, "tls", "client.pem"), KeyFile: filepath.Join(tb.Dir, "tls", "client-key.pem")})
	require.NoError(t, err)
	c, _, err := tb.Dial5(t, dialOpts{ID: "dev", TLS: withCert})
	require.NoError(t, err, "the certificate is the credential")
	assert.Equal(t, byte(0), c.Pub(t, "devices/1", "x", 1))
	assert.Equal(t, byte(0), c.Pub(t, "sensors/dev-client/x", "x", 1), "pattern sensors/%u/# with the certificate's name")
	assert.Equal(t, byte(0x87), c.Pub(t, "sensors/sensor1/x", "x", 1), "the ACL applies to the certificate's name")
	plain, _ := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: ca, ServerName: "localhost"})
	_, _, err = tb.Dial5(t, dialOpts{ID: "nocert", User: "sensor1", Pass: passwords["sensor1"], TLS: plain})
	assert.Error(t, err, "tls_client_auth = require")
}

func TestRateLimitQuota(t *testing.T) {
	tb := startBroker(t, nil)
	s1 := tb.Login(t, "s1", "sensor1")
	var codes []byte
	for i := 0; i < 14; i++ {
		codes = append(codes, s1.Pub(t, "sensors/sensor1/t", fmt.Sprint(i), 1))
	}
	// channel_burst_capacity 10: the 11th message to one topic within the
	// burst is refused with quota exceeded.
	assert.Equal(t, byte(0), codes[0])
	assert.Contains(t, codes, byte(0x97))
	assert.NotEqual(t, "0", tb.Metric(t, `mqttguard_refusals_total{component="rate-limit"}`))
}

// A flooding client climbs the trust states: refused for its rate, then
// write-disabled (0x87), shadow-banned (acknowledged, never delivered),
// disconnected (0x98), and refused with 0x8A while banned.
func TestFloodEscalatesToDisconnect(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.Security.Trust.UsernameFactor, c.Security.Trust.IPFactor = 0, 0 // the rest of the test connects from here too
	})
	dash := tb.Login(t, "dash", "dashboard")
	dash.Sub(t, "sensors/#")
	flood := tb.Login(t, "flooder", "sensor1")
	var acks []byte
	sent := map[string]byte{}
	// Refusals of one kind count once per trust.Config.Spacing (100 ms),
	// so the flood goes on for seconds, not for a count.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 50000 && time.Now().Before(deadline); i++ {
		p := fmt.Sprint(i)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := flood.Client.Publish(ctx, &paho.Publish{Topic: "sensors/sensor1/t", Payload: []byte(p), QoS: 1})
		cancel()
		if r == nil && err != nil {
			break // disconnected
		}
		acks = append(acks, r.ReasonCode)
		sent[p] = r.ReasonCode
	}
	select {
	case d := <-flood.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode)
	case <-time.After(5 * time.Second):
		t.Fatalf("not disconnected; acks %x", acks)
	}
	assert.Contains(t, acks, byte(0x97), "rate limited")
	i87 := indexOf(acks, 0x87)
	require.GreaterOrEqual(t, i87, 0, "write-disabled: %x", acks)
	shadow := indexOf(acks[i87:], 0x00)
	require.GreaterOrEqual(t, shadow, 0, "shadow-banned publishes are acknowledged as usual: %x", acks)

	got := map[string]bool{}
	for _, m := range dash.Received(time.Second) {
		got[strings.TrimPrefix(m, "sensors/sensor1/t ")] = true
	}
	for p, code := range sent {
		if code != 0 {
			assert.False(t, got[p], "refused message %s delivered", p)
		}
	}
	for i := i87 + shadow; i < len(acks); i++ {
		assert.False(t, got[fmt.Sprint(i)], "shadow-banned message %d delivered", i)
	}
	assert.NotEmpty(t, got, "what passed before the flood was delivered")

	_, ca, err := tb.Dial5(t, dialOpts{ID: "flooder", User: "sensor1", Pass: passwords["sensor1"]})
	require.Error(t, err)
	assert.Equal(t, byte(0x8A), ca.ReasonCode, "banned while Disconnected")
	other := tb.Login(t, "s1-other", "sensor1")
	assert.Equal(t, byte(0), other.Pub(t, "sensors/sensor1/t", "ok", 1), "another client of the same user is not punished")
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_trust_clients{state="disconnected"}`))
}

func indexOf(b []byte, v byte) int {
	for i, x := range b {
		if x == v {
			return i
		}
	}
	return -1
}

func TestPushIntervalAnomaly(t *testing.T) {
	tb := startBroker(t, func(c *guardconf.Config) {
		c.Security.Devices = []guardconf.DeviceProfile{{Topic: "sensors/+/report", Interval: 2 * time.Second, Tolerance: 500 * time.Millisecond}}
	})
	dash := tb.Login(t, "dash", "dashboard")
	dash.Sub(t, "sensors/#")
	s1 := tb.Login(t, "s1", "sensor1")
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/report", "first", 1))
	assert.Equal(t, byte(0), s1.Pub(t, "sensors/sensor1/report", "too-early", 1), "acknowledged")
	assert.Equal(t, []string{"sensors/sensor1/report first"}, dash.Received(500*time.Millisecond), "but not delivered")
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_push_interval_reports_total{result="too-early"}`))
	assert.Equal(t, "1", tb.Metric(t, `mqttguard_refusals_total{component="anomaly"}`))
}

func TestWills(t *testing.T) {
	tb := startBroker(t, nil)
	_, ca, err := tb.Dial5(t, dialOpts{ID: "w1", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "commands/all", Payload: []byte("gone")}})
	require.Error(t, err)
	assert.Equal(t, byte(0x87), ca.ReasonCode, "a denied will topic refuses the connection")

	dash := tb.Login(t, "dash", "dashboard")
	dash.Sub(t, "sensors/#")
	w, _, err := tb.Dial5(t, dialOpts{ID: "w2", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "sensors/sensor1/status", Payload: []byte("offline"), QoS: 1}})
	require.NoError(t, err)
	code, body := tb.Admin(t, "POST", "/bans", `{"kind": "client", "value": "w2", "for": "1m", "reason": "test"}`)
	require.Equal(t, 201, code, body)
	select {
	case d := <-w.Kicks:
		assert.Equal(t, byte(0x98), d.ReasonCode)
	case <-time.After(5 * time.Second):
		t.Fatal("the banned client was not kicked")
	}
	assert.Empty(t, dash.Received(500*time.Millisecond), "a banned client's will is not sent")

	w3, _, err := tb.Dial5(t, dialOpts{ID: "w3", User: "sensor1", Pass: passwords["sensor1"],
		Will: &paho.WillMessage{Topic: "sensors/sensor1/status", Payload: []byte("offline"), QoS: 1}})
	require.NoError(t, err)
	code, body = tb.Admin(t, "POST", "/clients/w3/kick", "")
	require.Equal(t, 200, code, body)
	<-w3.Kicks
	assert.Equal(t, []string{"sensors/sensor1/status offline"}, dash.Received(time.Second), "a kicked client's will goes out")
}
