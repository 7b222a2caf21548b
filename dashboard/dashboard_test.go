package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without the token, every page sends a browser to sign in, and nothing
// is answered but the sign-in page and the style and script.
func TestPagesNeedTheToken(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	for _, p := range []string{"", "clients", "bans", "live", "devices", "plugins"} {
		res, _ := get(t, c, f.srv.URL+"/dashboard/"+p)
		assert.Equal(t, http.StatusSeeOther, res.StatusCode, p)
		assert.Equal(t, "/dashboard/login", res.Header.Get("Location"), p)
	}
	res, _ := get(t, c, f.srv.URL+"/dashboard/events")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, err := c.PostForm(f.srv.URL+"/dashboard/ban", url.Values{"kind": {"client"}, "value": {"sensor-1"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Empty(t, f.bans.List(time.Now()))

	res, body := get(t, c, f.srv.URL+"/dashboard/login")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `name="token"`)
	res, _ = get(t, c, f.srv.URL+"/dashboard/dashboard.css")
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// A wrong token is refused, and a guesser is slowed down.
	codes := []int{}
	for range 7 {
		res, err := c.PostForm(f.srv.URL+"/dashboard/login", url.Values{"token": {"not-the-token-at-all"}})
		require.NoError(t, err)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
		assert.Empty(t, res.Cookies())
	}
	assert.Equal(t, []int{401, 401, 401, 401, 401, 429, 429}, codes)
}

// Signed in, every page renders, with a strict Content-Security-Policy
// and nothing from another origin.
func TestPagesRender(t *testing.T) {
	f := newFixture(t)
	f.publish("sensors/sensor-2/temperature") // a refusal for the pages to show
	c := f.browser(t)
	f.signIn(t, c)
	for _, p := range []string{"", "clients", "bans", "live", "devices", "plugins", "clients?part=main"} {
		res, body := get(t, c, f.srv.URL+"/dashboard/"+p)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		csp := res.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'none'", p)
		assert.Contains(t, csp, "script-src 'self'", p)
		assert.Contains(t, csp, "frame-ancestors 'none'", p)
		assert.NotContains(t, csp, "unsafe-inline", p)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), p)
		assert.NotContains(t, body, "http://", p)
		assert.NotContains(t, body, "https://", p)
		assert.NotContains(t, body, "<script>", p)
		assert.NotContains(t, body, " style=", p)
	}
	_, body := get(t, c, f.srv.URL+"/dashboard/clients")
	assert.Contains(t, body, `data-client="sensor-1"`)
	assert.Contains(t, body, "sensors/sensor-2/temperature", "the client's last refusal")
	_, body = get(t, c, f.srv.URL+"/dashboard/")
	assert.Contains(t, body, `data-component="acl"`)
	assert.Regexp(t, `id="verdicts">\(reject [0-9.]+/s, drop [0-9.]+/s, disconnect [0-9.]+/s\)`, body)
}

// Names from clients are text, never markup.
func TestClientNamesAreEscaped(t *testing.T) {
	f := newFixture(t)
	f.sensor.ID = `<img src=x onerror=alert(1)>`
	f.sess.clients = append(f.sess.clients, f.sensor)
	f.publish(`sensors/"><script>alert(1)</script>`)
	c := f.browser(t)
	f.signIn(t, c)
	_, body := get(t, c, f.srv.URL+"/dashboard/clients")
	assert.NotContains(t, body, "<img src=x")
	assert.NotContains(t, body, "<script>alert")
	assert.Contains(t, body, "&lt;img src=x onerror=alert(1)&gt;")
}

// A state-changing request needs the page's CSRF token and this
// origin: a signed-in operator's browser cannot be made to ban or
// pardon from another site.
func TestActionsNeedCSRFTokenAndSameOrigin(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	tok := csrf(t, c, f.srv.URL+"/dashboard/bans")
	form := url.Values{"kind": {"client"}, "value": {"sensor-1"}, "for": {"1h"}, "reason": {"test"}, "back": {"bans"}}

	post := func(v url.Values, header http.Header) int {
		req, err := http.NewRequest("POST", f.srv.URL+"/dashboard/ban", strings.NewReader(v.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, vs := range header {
			req.Header[k] = vs
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post(form, nil), "no CSRF token")
	bad := url.Values{"csrf": {strings.Repeat("A", 43)}}
	for k, v := range form {
		bad[k] = v
	}
	assert.Equal(t, http.StatusForbidden, post(bad, nil), "a wrong CSRF token")
	good := url.Values{"csrf": {tok}}
	for k, v := range form {
		good[k] = v
	}
	assert.Equal(t, http.StatusForbidden, post(good, http.Header{"Sec-Fetch-Site": {"cross-site"}}), "from another site")
	assert.Equal(t, http.StatusForbidden, post(good, http.Header{"Origin": {"https://evil.example"}}), "from another origin")
	assert.Empty(t, f.bans.List(time.Now()))
	assert.Empty(t, f.sess.kicked)

	assert.Equal(t, http.StatusSeeOther, post(good, http.Header{"Sec-Fetch-Site": {"same-origin"}}))
	bans := f.bans.List(time.Now())
	require.Len(t, bans, 1)
	assert.Equal(t, "sensor-1", bans[0].Value)
	assert.Equal(t, "dashboard", bans[0].By)
	assert.Equal(t, []string{"sensor-1"}, f.sess.kicked, "the ban kicked the client")
}

// Kick, pardon, ban and lift from the pages, as a browser posts them.
func TestActions(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	// Violations put sensor-1 in a worse state.
	for range 30 {
		f.publish("sensors/sensor-2/temperature")
	}
	v := f.tracker.Verdict(trust.Identity{ClientID: "sensor-1", Username: "sensor1"}, time.Now())
	require.NotEqual(t, trust.Normal, v.State)

	act := func(path string, v url.Values) string {
		v.Set("csrf", csrf(t, c, f.srv.URL+"/dashboard/clients"))
		res, err := c.PostForm(f.srv.URL+"/dashboard/"+path, v)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		loc, err := url.Parse(res.Header.Get("Location"))
		require.NoError(t, err)
		if e := loc.Query().Get("error"); e != "" {
			return "error: " + e
		}
		return loc.Query().Get("done")
	}
	assert.Equal(t, `pardoned client sensor-1`, act("pardon", url.Values{"dimension": {"client"}, "key": {"sensor-1"}, "username": {"sensor1"}, "back": {"clients"}}))
	v = f.tracker.Verdict(trust.Identity{ClientID: "sensor-1"}, time.Now())
	assert.Equal(t, trust.Normal, v.State)
	assert.Contains(t, act("pardon", url.Values{"dimension": {"client"}, "key": {"nobody"}}), "error: no client record")

	assert.Equal(t, `kicked "sensor-1"`, act("kick", url.Values{"client": {"sensor-1"}}))
	assert.Contains(t, act("kick", url.Values{"client": {"sensor-1"}}), "error: no client")

	assert.Contains(t, act("ban", url.Values{"kind": {"username"}, "value": {"sensor1"}, "for": {"2h"}, "reason": {"leak"}}), `banned username "sensor1" until`)
	assert.Contains(t, act("ban", url.Values{"kind": {"planet"}, "value": {"x"}}), "error: kind")
	assert.Contains(t, act("ban", url.Values{"kind": {"client"}, "value": {"x"}, "for": {"soon"}}), `error: for: "soon" is not a positive duration`)
	_, body := get(t, c, f.srv.URL+"/dashboard/bans")
	assert.Contains(t, body, `data-value="sensor1"`)
	assert.Contains(t, body, "leak")
	assert.Equal(t, `lifted the username ban on "sensor1"`, act("lift", url.Values{"kind": {"username"}, "value": {"sensor1"}}))
	assert.Empty(t, f.bans.List(time.Now()))

	// "back" names a page of the dashboard's, or the overview: never
	// another URL.
	v2 := url.Values{"client": {"nobody"}, "back": {"https://evil.example/"}, "csrf": {csrf(t, c, f.srv.URL+"/dashboard/")}}
	res, err := c.PostForm(f.srv.URL+"/dashboard/kick", v2)
	require.NoError(t, err)
	res.Body.Close()
	assert.True(t, strings.HasPrefix(res.Header.Get("Location"), "/dashboard/?"), res.Header.Get("Location"))
}

// The live view streams a refusal as it happens, filtered by client,
// topic or address.
func TestLiveStream(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	f.publish("sensors/old/topic") // before the view opens: the backlog

	open := func(query string) (*bufio.Reader, func()) {
		req, err := http.NewRequest("GET", f.srv.URL+"/dashboard/events?"+query, nil)
		require.NoError(t, err)
		res, err := c.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
		return bufio.NewReader(res.Body), func() { res.Body.Close() }
	}
	next := func(r *bufio.Reader) batchOf {
		for {
			line, err := r.ReadString('\n')
			require.NoError(t, err)
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var b batchOf
				require.NoError(t, json.Unmarshal([]byte(data), &b))
				return b
			}
		}
	}
	all, closeAll := open("")
	defer closeAll()
	b := next(all)
	require.Len(t, b.Events, 1, "the backlog")
	assert.Equal(t, "sensors/old/topic", b.Events[0].Topic)

	only, closeOnly := open("topic=SECRET")
	defer closeOnly()
	assert.Empty(t, next(only).Events, "the backlog has nothing on that topic")

	start := time.Now()
	f.publish("sensors/sensor-9/secret")
	b = next(all)
	require.Len(t, b.Events, 1)
	e := b.Events[0]
	assert.Less(t, time.Since(start), time.Second, "a refusal reaches the view within a second")
	assert.Equal(t, "sensor-1", e.Client)
	assert.Equal(t, "sensor1", e.Username)
	assert.Equal(t, "192.0.2.1", e.Addr)
	assert.Equal(t, "publish", e.Point)
	assert.Equal(t, "reject", e.Verdict)
	assert.Equal(t, "0x87", e.Code)
	assert.Equal(t, "acl", e.Component)
	assert.Contains(t, e.Cause, "acl")
	b = next(only)
	require.Len(t, b.Events, 1)
	assert.Equal(t, "sensors/sensor-9/secret", b.Events[0].Topic)
}

type batchOf struct {
	Events []struct {
		Client, Username, Addr, Topic, Point, Verdict, Code, Component, Cause string
	}
	Missed uint64
}

// A bounded number of live views: one more is refused, not queued.
func TestLiveViewsAreBounded(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	var bodies []func() error
	defer func() {
		for _, b := range bodies {
			b()
		}
	}()
	for range 8 {
		res, err := c.Get(f.srv.URL + "/dashboard/events")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		bodies = append(bodies, res.Body.Close)
		bufio.NewReader(res.Body).ReadString('\n') // the handler is running
	}
	res, err := c.Get(f.srv.URL + "/dashboard/events")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

// Close ends the open live views, so that a server's Shutdown does not
// wait on them.
func TestCloseEndsLiveViews(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	res, err := c.Get(f.srv.URL + "/dashboard/events")
	require.NoError(t, err)
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	_, err = r.ReadString('\n')
	require.NoError(t, err)
	f.dash.Close()
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := r.ReadString('\n'); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after Close")
	}
}

// The plugins page shows each plugin's health, and disables and enables
// it.
func TestPluginsPage(t *testing.T) {
	f := newFixture(t)
	wasm, err := os.ReadFile("../wasmguard/testdata/trap.wasm")
	require.NoError(t, err)
	p, err := wasmguard.Load(context.Background(), wasm, wasmguard.Limits{MaxInstances: 1}, wasmguard.WithName("trapper"))
	require.NoError(t, err)
	defer p.Close(context.Background())
	f.guard.SetPlugins([]*wasmguard.Plugin{p})
	f.publish("sensors/sensor-1/temperature") // the plugin traps
	c := f.browser(t)
	f.signIn(t, c)
	_, body := get(t, c, f.srv.URL+"/dashboard/plugins")
	row := regexp.MustCompile(`(?s)<tr data-plugin="trapper">.*?</tr>`).FindString(body)
	require.NotEmpty(t, row, body)
	cells := regexp.MustCompile(`<td class="num">(\d+)</td>`).FindAllStringSubmatch(row, -1)
	require.GreaterOrEqual(t, len(cells), 4)
	assert.Equal(t, "1", cells[0][1], "calls")
	assert.Equal(t, "1", cells[3][1], "failures")

	v := url.Values{"name": {"trapper"}, "action": {"disable"}, "back": {"plugins"}, "csrf": {csrf(t, c, f.srv.URL+"/dashboard/plugins")}}
	res, err := c.PostForm(f.srv.URL+"/dashboard/plugin", v)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.True(t, p.Disabled())
	_, body = get(t, c, f.srv.URL+"/dashboard/plugins")
	assert.Contains(t, body, `value="enable"`)
}

// The overview shows fleet mode's health when there is one.
func TestOverviewFleet(t *testing.T) {
	f := newFixture(t)
	admin := &adminapi.Handler{Guard: f.guard, Bans: f.bans, Tracker: f.tracker, Sessions: f.sess}
	up := true
	d, err := dashboard.New(dashboard.Config{Admin: admin, Fleet: func() dashboard.FleetStatus {
		return dashboard.FleetStatus{Connected: up, Pending: 3, Received: 7}
	}})
	require.NoError(t, err)
	defer d.Close()
	page := func() string {
		w := httptest.NewRecorder()
		d.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w.Body.String()
	}
	assert.Contains(t, page(), "in sync with Redis")
	assert.Contains(t, page(), "pending 3 · received 7")
	up = false
	assert.Contains(t, page(), "away from Redis: deciding from local state")
}
