package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
)

// A certificate mosquitto verified is the client's identity when the
// configuration says use_identity_as_username (mosquitto's own option of
// that name would skip the plugin's authentication: leave it off).
func TestCertificateInsideMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	dir, _ := dataDir(t, "127.0.0.1:0")
	conf := filepath.Join(dir, guardstack.ConfigFile)
	text, err := os.ReadFile(conf)
	require.NoError(t, err)
	edited := strings.Replace(string(text), "use_identity_as_username = false", "use_identity_as_username = true", 1)
	require.NotEqual(t, string(text), edited)
	require.NoError(t, os.WriteFile(conf, []byte(edited), 0o600))

	tlsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(tlsAddr)
	pki := filepath.Join(dir, "tls")
	m := mqtttest.RunMosquitto(t, bin, dir, "allow_anonymous true", "plugin "+so, "plugin_opt_config "+conf,
		"listener "+port+" 127.0.0.1", "cafile "+filepath.Join(pki, "ca.pem"), "certfile "+filepath.Join(pki, "server.pem"),
		"keyfile "+filepath.Join(pki, "server-key.pem"), "require_certificate true")

	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "client.pem"), filepath.Join(pki, "client-key.pem"))
	require.NoError(t, err)
	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", tlsAddr,
			&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "the TLS listener: %v", err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))

	assert.Equal(t, byte(0), connectWithout(t, c, "dev-1"), "the certificate (CN dev-client) admits it, no password")
	assert.Less(t, mqtttest.Publish5(t, c, "sensors/dev-client/temp", 1, 1), byte(0x80), "its own subtree: the ACL's %%u is the CN")
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, "sensors/sensor1/temp", 1, 2), "another sensor's")

	plain := mqtttest.DialRaw(t, m.Addr)
	assert.Equal(t, byte(0x87), mqtttest.Connect5(t, plain, "dev-2", "dev-client", "", nil),
		"the same name without a certificate needs a password")
	if t.Failed() {
		t.Log(m.Log())
	}
}

// connectWithout sends an MQTT 5 CONNECT without username or password
// and returns the CONNACK's reason code.
func connectWithout(t *testing.T, c net.Conn, id string) byte {
	t.Helper()
	cp := paho.NewControlPacket(paho.CONNECT)
	cn := cp.Content.(*paho.Connect)
	cn.ProtocolName, cn.ProtocolVersion, cn.ClientID, cn.CleanStart, cn.KeepAlive = "MQTT", 5, id, true, 30
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	ack, err := paho.ReadPacket(c)
	require.NoError(t, err, "a CONNACK")
	ca, ok := ack.Content.(*paho.Connack)
	require.True(t, ok, "got %v", ack)
	return ca.ReasonCode
}
