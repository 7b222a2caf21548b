// Package e2e holds what the example broker's and the example proxy's
// end-to-end tests share: accounts, a paho.golang client that records
// what it receives, the admin API, raw packets and the malformed corpus.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/stretchr/testify/require"
)

// Node is a running broker or proxy as a test sees it.
type Node struct {
	Addr func(id string) string // "tcp", "tls", "admin"
	Dir  string                 // its data directory
	Logs *LogBuffer
}

// PrepareDir makes a data directory whose password file holds Passwords,
// hashed cheaply (1,000 iterations) so that tests can connect often;
// guardstack.Setup fills in the rest.
func PrepareDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var lines strings.Builder
	for u, p := range Passwords {
		h, err := passwd.HashIterations(p, 1000)
		require.NoError(t, err)
		fmt.Fprintf(&lines, "%s:%s\n", u, h)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(lines.String()), 0o600))
	return dir
}

// Passwords are the accounts every test node has; passwords hashed cheaply (1,000
// iterations) so that tests can connect often.
var Passwords = map[string]string{
	"admin": "admin-pw-0001", "sensor1": "sensor1-pw-01", "sensor2": "sensor2-pw-01", "dashboard": "dashboard-pw1",
	"bob": "bob-pw-000001",
}

type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// V5 is a paho.golang MQTT 5 client that records what it receives and
// how the server disconnected it.
type V5 struct {
	*paho.Client
	Msgs  chan *paho.Publish
	Kicks chan *paho.Disconnect
}

// DialOpts say how to connect.
type DialOpts struct {
	ID, User, Pass string
	TLS            *tls.Config
	Will           *paho.WillMessage
}

// Dial5 connects an MQTT 5 client to the node's plain listener, or its
// TLS listener with o.TLS.
func (n *Node) Dial5(t *testing.T, o DialOpts) (*V5, *paho.Connack, error) {
	t.Helper()
	var conn net.Conn
	var err error
	if o.TLS != nil {
		conn, err = tls.Dial("tcp", n.Addr("tls"), o.TLS)
	} else {
		conn, err = net.Dial("tcp", n.Addr("tcp"))
	}
	require.NoError(t, err)
	c := &V5{Msgs: make(chan *paho.Publish, 10000), Kicks: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: o.ID,
		Conn:     ppackets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			c.Msgs <- r.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.Kicks <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: o.ID, Username: o.User, UsernameFlag: o.User != "",
		Password: []byte(o.Pass), PasswordFlag: o.Pass != "", KeepAlive: 30, CleanStart: true, WillMessage: o.Will})
	if err != nil {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c, ca, nil
}

// Login connects a v5 client as user, failing the test if it cannot.
func (n *Node) Login(t *testing.T, id, user string) *V5 {
	t.Helper()
	c, ca, err := n.Dial5(t, DialOpts{ID: id, User: user, Pass: Passwords[user]})
	require.NoError(t, err, "connack %v", ca)
	return c
}

// Pub publishes and returns the PUBACK's reason code (0 for QoS 0).
func (c *V5) Pub(t *testing.T, topic, payload string, qos byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos})
	if r == nil {
		require.NoError(t, err)
		return 0
	}
	return r.ReasonCode
}

// Sub subscribes to one filter at QoS 1 and returns the SUBACK's code.
func (c *V5) Sub(t *testing.T, filter string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		require.NoError(t, err)
	}
	return sa.Reasons[0]
}

// Received collects what arrives within d, as "topic payload".
func (c *V5) Received(d time.Duration) []string {
	var out []string
	deadline := time.After(d)
	for {
		select {
		case m := <-c.Msgs:
			out = append(out, m.Topic+" "+string(m.Payload))
		case <-deadline:
			return out
		}
	}
}

// Admin calls the admin API with the node's token.
func (n *Node) Admin(t *testing.T, method, path string, body string) (int, string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(n.Dir, "admin.token"))
	require.NoError(t, err)
	req, err := http.NewRequest(method, "http://"+n.Addr("admin")+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metric returns a metric's value from /metrics ("name{labels}"), or "".
func (n *Node) Metric(t *testing.T, series string) string {
	t.Helper()
	_, text := n.Admin(t, "GET", "/metrics", "")
	for _, l := range strings.Split(text, "\n") {
		if name, v, ok := strings.Cut(l, " "); ok && name == series {
			return v
		}
	}
	return ""
}

// Clients lists the connected clients through the admin API.
func (n *Node) Clients(t *testing.T) []adminapi.ClientInfo {
	t.Helper()
	code, body := n.Admin(t, "GET", "/clients", "")
	require.Equal(t, 200, code, body)
	var out []adminapi.ClientInfo
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out
}

// RawConnect is a CONNECT with keep alive 30 s and clean start, as raw
// bytes (the malformed cases must follow a CONNECT the server accepts).
func RawConnect(version byte, id, user, pass string) []byte {
	return mqttwire.Connect(packets.Version(version), 30, id, user, pass)
}

// CorpusCase is one of packets' malformed cases (testdata/malformed.json).
type CorpusCase struct {
	Name    string `json:"name"`
	Version byte   `json:"version"`
	Hex     string `json:"hex"`
	Code    byte   `json:"code"`
	Rule    string `json:"rule"`
}

// Corpus reads packets/testdata/malformed.json from the module root.
func Corpus(t testing.TB, root string) []CorpusCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "packets", "testdata", "malformed.json"))
	require.NoError(t, err)
	var cases []CorpusCase
	require.NoError(t, json.Unmarshal(raw, &cases))
	return cases
}

// CrashSubscribe is the SUBSCRIBE that kills a bare mochi-mqtt v2.7.9
// (index out of range in SubscribeDecode, on the client's read
// goroutine, where no hook can recover it): MQTT 5, packet ID 1, no
// properties, filter "a", and no subscription options byte.
var CrashSubscribe = []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a'}

// Closed reads c until the server closes it (or 5 s pass) and returns
// what it sent.
func Closed(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(c)
}

// BobACL is the default ACL with one more user, bob, who reads and
// writes his own subtree and reads public/: the attacker of the session
// and delivery tests, subscribed to '#' and hoping for more.
const BobACL = guardstack.DefaultACL + `
user bob
topic readwrite bob/#
topic read public/#
`

// WriteFile writes a file into a data directory before the node starts.
func WriteFile(t testing.TB, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}
