package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/require"
)

const token = "0123456789abcdef-test-token"

// sessions is a broker with connected clients; Kick disconnects them.
type sessions struct {
	mu      sync.Mutex
	clients []mqttguard.Client
	kicked  []string
}

func (s *sessions) Clients() []mqttguard.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mqttguard.Client(nil), s.clients...)
}

func (s *sessions) Kick(match trust.Ban, code reason.Code) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	kept := s.clients[:0]
	for _, c := range s.clients {
		if match.Matches(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}) {
			s.kicked = append(s.kicked, c.ID)
			n++
			continue
		}
		kept = append(kept, c)
	}
	s.clients = kept
	return n
}

type fixture struct {
	guard   *mqttguard.Guard
	feed    *dashboard.Feed
	bans    *trust.Bans
	tracker *trust.Tracker
	sess    *sessions
	dash    *dashboard.Dashboard
	srv     *httptest.Server
	sensor  mqttguard.Client
}

// newFixture serves a dashboard at /dashboard/ behind RequireLogin, over
// a Guard whose ACL lets sensor1 write only sensors/sensor-1/#.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{feed: dashboard.NewFeed(64), bans: &trust.Bans{}}
	pol, err := acl.ParseMosquitto(strings.NewReader("user sensor1\ntopic readwrite sensors/sensor-1/#\n"))
	require.NoError(t, err)
	f.tracker, err = trust.New(trust.Config{Mode: trust.EnforceFull, Spacing: -1})
	require.NoError(t, err)
	f.guard, err = mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, ACL: acl.NewHolder(pol), Bans: f.bans, Trust: f.tracker,
		OnRefusal: f.feed.Add})
	require.NoError(t, err)
	f.sensor = mqttguard.Client{ID: "sensor-1", Username: "sensor1", Addr: netip.MustParseAddr("192.0.2.1"), Listener: "tcp", ProtocolVersion: 5}
	f.sess = &sessions{clients: []mqttguard.Client{f.sensor}}
	f.bans.WatchAdded(func(b trust.Ban) { f.sess.Kick(b, reason.Banned) })
	admin := &adminapi.Handler{Guard: f.guard, Bans: f.bans, Tracker: f.tracker, Sessions: f.sess}
	f.dash, err = dashboard.New(dashboard.Config{Admin: admin, Feed: f.feed, SampleEvery: 50 * time.Millisecond})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dashboard.RequireLogin(token, f.dash)))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.dash.Close()
		f.srv.Close()
	})
	return f
}

// publish has sensor-1 publish on topic, and returns the decision.
func (f *fixture) publish(topic string) mqttguard.Decision {
	return f.guard.Publish(context.Background(), &f.sensor, &mqttguard.Message{Topic: topic, Payload: []byte("21.5"), Subscribers: -1}, time.Now())
}

// browser is a client with a cookie jar that does not follow redirects.
func (f *fixture) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs c in with the token.
func (f *fixture) signIn(t *testing.T, c *http.Client) {
	t.Helper()
	res, err := c.PostForm(f.srv.URL+"/dashboard/login", url.Values{"token": {token}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
}

// get fetches a page and returns its status and body.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token the page at u carries in its forms.
func csrf(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, body := get(t, c, u)
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(t, m, "a CSRF field in %s", u)
	return m[1]
}
