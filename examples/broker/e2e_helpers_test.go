package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/mqttguard/mqttguard/examples/internal/stack"
	"io"
	"log/slog"
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
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/stretchr/testify/require"
)

// The accounts every test broker has; passwords hashed cheaply (1,000
// iterations) so that tests can connect often.
var passwords = map[string]string{
	"admin": "admin-pw-0001", "sensor1": "sensor1-pw-01", "sensor2": "sensor2-pw-01", "dashboard": "dashboard-pw1",
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testBroker struct {
	*Broker
	dir  string
	logs *syncBuffer
}

// startBroker runs the example broker from a fresh data directory made
// by Setup (with the accounts above), on free loopback ports.
func startBroker(t *testing.T, edit func(*stack.Config)) *testBroker {
	t.Helper()
	dir := t.TempDir()
	var lines strings.Builder
	for u, p := range passwords {
		h, err := passwd.HashIterations(p, 1000)
		require.NoError(t, err)
		fmt.Fprintf(&lines, "%s:%s\n", u, h)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(lines.String()), 0o600))
	_, err := stack.Setup(dir, stack.DefaultConfig)
	require.NoError(t, err)
	cfg, err := stack.LoadConfig(filepath.Join(dir, stack.ConfigFile))
	require.NoError(t, err)
	cfg.MQTT.Port, cfg.MQTT.TLSPort, cfg.Admin.Listen = 0, 0, "127.0.0.1:0"
	if edit != nil {
		edit(cfg)
	}
	logs := &syncBuffer{}
	b, err := Start(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return &testBroker{Broker: b, dir: dir, logs: logs}
}

// v5 is a paho.golang MQTT 5 client that records what it receives.
type v5 struct {
	*paho.Client
	msgs  chan *paho.Publish
	kicks chan *paho.Disconnect
}

type dialOpts struct {
	id, user, pass string
	tls            *tls.Config
	will           *paho.WillMessage
}

func (tb *testBroker) dial5(t *testing.T, o dialOpts) (*v5, *paho.Connack, error) {
	t.Helper()
	var conn net.Conn
	var err error
	if o.tls != nil {
		conn, err = tls.Dial("tcp", tb.Addr("tls"), o.tls)
	} else {
		conn, err = net.Dial("tcp", tb.Addr("tcp"))
	}
	require.NoError(t, err)
	c := &v5{msgs: make(chan *paho.Publish, 10000), kicks: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: o.id,
		Conn:     ppackets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			c.msgs <- r.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.kicks <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: o.id, Username: o.user, UsernameFlag: o.user != "",
		Password: []byte(o.pass), PasswordFlag: o.pass != "", KeepAlive: 30, CleanStart: true, WillMessage: o.will})
	if err != nil {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c, ca, nil
}

// login connects a v5 client as user, failing the test if it cannot.
func (tb *testBroker) login(t *testing.T, id, user string) *v5 {
	t.Helper()
	c, ca, err := tb.dial5(t, dialOpts{id: id, user: user, pass: passwords[user]})
	require.NoError(t, err, "connack %v", ca)
	return c
}

func (c *v5) publish(t *testing.T, topic, payload string, qos byte) byte {
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

func (c *v5) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		require.NoError(t, err)
	}
	return sa.Reasons[0]
}

// received collects what arrives within d.
func (c *v5) received(d time.Duration) []string {
	var out []string
	deadline := time.After(d)
	for {
		select {
		case m := <-c.msgs:
			out = append(out, m.Topic+" "+string(m.Payload))
		case <-deadline:
			return out
		}
	}
}

// admin calls the admin API with the broker's token.
func (tb *testBroker) admin(t *testing.T, method, path string, body string) (int, string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(tb.dir, "admin.token"))
	require.NoError(t, err)
	req, err := http.NewRequest(method, "http://"+tb.Addr("admin")+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns a metric's value from /metrics ("name{labels}").
func (tb *testBroker) metric(t *testing.T, series string) string {
	t.Helper()
	_, text := tb.admin(t, "GET", "/metrics", "")
	for _, l := range strings.Split(text, "\n") {
		if name, v, ok := strings.Cut(l, " "); ok && name == series {
			return v
		}
	}
	return ""
}

func (tb *testBroker) clients(t *testing.T) []stack.ClientInfo {
	t.Helper()
	code, body := tb.admin(t, "GET", "/clients", "")
	require.Equal(t, 200, code, body)
	var out []stack.ClientInfo
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out
}

func TestPrintConfig(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-print-config"}, &out, &out))
	require.Equal(t, string(stack.DefaultConfig), out.String())
}
