package adminapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSessions is a broker with two connected clients.
type fakeSessions struct {
	clients []mqttguard.Client
	kicked  []string
	codes   []reason.Code
}

func (f *fakeSessions) Clients() []mqttguard.Client { return f.clients }

func (f *fakeSessions) Kick(match trust.Ban, code reason.Code) int {
	n := 0
	for _, c := range f.clients {
		if match.Matches(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}) {
			f.kicked = append(f.kicked, c.ID)
			f.codes = append(f.codes, code)
			n++
		}
	}
	return n
}

type fixture struct {
	h        *adminapi.Handler
	sess     *fakeSessions
	tracker  *trust.Tracker
	bans     *trust.Bans
	saves    []string
	srv      http.Handler
	lastMode trust.Mode
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{bans: &trust.Bans{}}
	var err error
	f.tracker, err = trust.New(trust.Config{Mode: trust.EnforceFull, Spacing: -1})
	require.NoError(t, err)
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, Bans: f.bans, Trust: f.tracker})
	require.NoError(t, err)
	f.sess = &fakeSessions{clients: []mqttguard.Client{
		{ID: "sensor-1", Username: "sensor1", Addr: netip.MustParseAddr("192.0.2.1"), Listener: "tcp", ProtocolVersion: 5},
		{ID: "dash", Username: "dashboard", Addr: netip.MustParseAddr("192.0.2.2"), Listener: "tls", ProtocolVersion: 4},
	}}
	f.h = &adminapi.Handler{Guard: g, Bans: f.bans, Tracker: f.tracker, Sessions: f.sess,
		SaveBans:  func() { f.saves = append(f.saves, "bans") },
		SaveTrust: func() { f.saves = append(f.saves, "trust") },
		SetMode:   func(m trust.Mode) { f.lastMode = m; g.SetMode(m) },
	}
	f.srv = adminapi.RequireToken("0123456789abcdef0123", f.h)
	return f
}

// do sends a request with the token and returns the status and body.
func (f *fixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestRequireToken(t *testing.T) {
	f := newFixture(t)
	for _, auth := range []string{"", "Bearer wrong", "Basic 0123456789abcdef0123", "Bearer 0123456789abcdef012"} {
		r := httptest.NewRequest("GET", "/bans", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, r)
		assert.Equal(t, http.StatusUnauthorized, w.Code, "%q", auth)
		assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
		assert.Contains(t, w.Body.String(), "bearer token is required")
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, http.StatusOK, w.Code, "liveness needs no token")
	w = httptest.NewRecorder()
	f.srv.ServeHTTP(w, httptest.NewRequest("POST", "/healthz", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code, "only GET /healthz is open")
}

func TestClientsAndKick(t *testing.T) {
	f := newFixture(t)
	for range 40 {
		f.tracker.Violation(trust.Identity{ClientID: "sensor-1", Username: "sensor1"}, trust.Malformed, time.Now())
	}
	code, body := f.do(t, "GET", "/clients", "")
	require.Equal(t, http.StatusOK, code)
	var clients []adminapi.ClientInfo
	require.NoError(t, json.Unmarshal([]byte(body), &clients))
	require.Len(t, clients, 2)
	assert.Equal(t, "sensor-1", clients[0].ID)
	assert.NotEqual(t, "normal", clients[0].State, "the punished client shows its state")
	assert.Equal(t, "normal", clients[1].State)
	assert.Equal(t, byte(4), clients[1].Protocol)

	code, body = f.do(t, "POST", "/clients/dash/kick", "")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"dash"}, f.sess.kicked)
	assert.Equal(t, []reason.Code{reason.AdministrativeAction}, f.sess.codes)
	code, body = f.do(t, "POST", "/clients/nobody/kick", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, `no client \"nobody\" is connected`)
}

func TestBans(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "GET", "/bans", "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, "[]", body, "an empty list is [], not null")

	code, body = f.do(t, "POST", "/bans", `{"kind": "client", "value": "evil", "for": "1h", "reason": "test"}`)
	require.Equal(t, http.StatusCreated, code, body)
	assert.Equal(t, []string{"bans"}, f.saves, "saved before the answer")
	_, ok := f.bans.Banned(trust.Identity{ClientID: "evil"}, time.Now())
	assert.True(t, ok)

	for _, tc := range []struct{ body, says string }{
		{`{"kind": "planet", "value": "x"}`, "kind:"},
		{`{"kind": "client", "value": "x", "for": "soon"}`, `for: \"soon\" is not a positive duration`},
		{`{"kind": "client", "value": "x", "color": "red"}`, "unknown field"},
		{`{"kind": "ip", "value": "not-an-ip"}`, "not-an-ip"},
		{`{`, "body:"},
	} {
		code, body := f.do(t, "POST", "/bans", tc.body)
		assert.Equal(t, http.StatusBadRequest, code, tc.body)
		assert.Contains(t, body, tc.says, tc.body)
	}

	code, body = f.do(t, "DELETE", "/bans/client/evil", "")
	assert.Equal(t, http.StatusOK, code, body)
	_, ok = f.bans.Banned(trust.Identity{ClientID: "evil"}, time.Now())
	assert.False(t, ok)
	code, _ = f.do(t, "DELETE", "/bans/client/evil", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, []string{"bans", "bans"}, f.saves)
}

func TestTrustAndPardon(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	for range 40 {
		f.tracker.Violation(trust.Identity{ClientID: "sensor-1", Username: "sensor1"}, trust.Malformed, now)
	}
	code, body := f.do(t, "GET", "/trust", "")
	require.Equal(t, http.StatusOK, code)
	var entries []adminapi.TrustEntry
	require.NoError(t, json.Unmarshal([]byte(body), &entries))
	require.NotEmpty(t, entries)
	assert.Equal(t, "malformed", entries[0].Reason)

	code, body = f.do(t, "GET", "/trust?state=grumpy", "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "state:")

	code, body = f.do(t, "POST", "/trust/pardon", `{"dimension": "username", "key": "sensor1"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "client sensor-1", "a username's pardon pardons its clients")
	assert.Equal(t, []string{"trust"}, f.saves)
	assert.Equal(t, trust.Normal, f.tracker.Verdict(trust.Identity{ClientID: "sensor-1", Username: "sensor1"}, time.Now()).State)

	code, _ = f.do(t, "POST", "/trust/pardon", `{"dimension": "client", "key": "nobody"}`)
	assert.Equal(t, http.StatusNotFound, code)
	code, body = f.do(t, "POST", "/trust/pardon", `{"dimension": "galaxy", "key": "x"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "dimension:")
}

func TestModePluginsAndReload(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "POST", "/mode/observe", "")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, trust.ObserveOnly, f.lastMode)
	assert.Equal(t, trust.ObserveOnly, f.h.Guard.Mode())
	code, body = f.do(t, "POST", "/mode/paranoid", "")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "want observe, light or full")

	code, body = f.do(t, "GET", "/plugins", "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, "[]", body)
	code, _ = f.do(t, "POST", "/plugins/nope/disable", "")
	assert.Equal(t, http.StatusNotFound, code)

	code, _ = f.do(t, "POST", "/reload", "")
	assert.Equal(t, http.StatusNotFound, code, "no Reload: no endpoint")
	code, _ = f.do(t, "GET", "/metrics", "")
	assert.Equal(t, http.StatusNotFound, code, "no Metrics: no endpoint")
}

func TestReloadSaysWhatItDid(t *testing.T) {
	f := newFixture(t)
	f.h.Reload = func() (adminapi.ReloadResult, error) {
		return adminapi.ReloadResult{Applied: []string{"security.mode changed"}}, nil
	}
	code, body := f.do(t, "POST", "/reload", "")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"reloaded": [], "applied": ["security.mode changed"], "restart_needed": []}`, body)
}
