// Red-team attacks on the dashboard handler, over the fixture's real
// loopback server. Each test performs one attack and asserts the
// secure behaviour: a failing test is a finding.
package dashboard_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionCookie is the browser's session cookie after signIn.
func sessionCookie(t *testing.T, f *fixture, c *http.Client) string {
	t.Helper()
	u, _ := url.Parse(f.srv.URL + "/dashboard/")
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "mqttguard_session" {
			return k.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// postRaw posts a form with exactly the cookies and headers given (no
// jar), and returns the answer.
func postRaw(t *testing.T, f *fixture, path, cookie string, form url.Values, header http.Header) *http.Response {
	t.Helper()
	return postRawTo(t, f.srv.URL, path, cookie, form, header)
}

func postRawTo(t *testing.T, base, path, cookie string, form url.Values, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// getRaw fetches a page with exactly the cookie header given.
func getRaw(t *testing.T, f *fixture, path, cookie string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", cookie)
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// ---------- 3. injection ----------

// A link anyone can send (chat, e-mail, a bookmark: a top-level
// navigation with no initiator carries the SameSite=Strict cookie)
// makes the signed-in operator's own dashboard state whatever the
// attacker wrote, styled as the dashboard's status or alert.
func TestRedTeamFlashMessageFromALink(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	lie := "Your admin token has leaked. Sign in again at http://evil.example/rotate"
	for _, q := range []string{"error=" + url.QueryEscape(lie), "done=" + url.QueryEscape("banned ip 203.0.113.7 for good: "+lie)} {
		res, body := get(t, c, f.srv.URL+"/dashboard/?"+q)
		require.Equal(t, http.StatusOK, res.StatusCode)
		i := strings.Index(body, "evil.example")
		assert.Negative(t, i, "the page says what the link's author wrote: %q", body[max(i-120, 0):max(i+20, 0)])
	}
}

// The form's back and q fields choose where an action returns: never
// another origin, never a header of their own.
func TestRedTeamBackFieldStaysOnTheDashboard(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	tok := csrf(t, c, f.srv.URL+"/dashboard/clients")
	for _, back := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "clients/../../x",
		"clients\r\nSet-Cookie: x=y", "clients?x=1", "%2F%2Fevil.example", "overview", " clients"} {
		form := url.Values{"csrf": {tok}, "client": {"nobody"}, "back": {back}, "q": {"a\r\nLocation: //evil.example\r\n&done=x#y"}}
		req, err := http.NewRequest("POST", f.srv.URL+"/dashboard/kick", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusSeeOther, res.StatusCode, back)
		loc := res.Header["Location"]
		require.Len(t, loc, 1, back)
		assert.NotContains(t, loc[0], "\r", back)
		assert.NotContains(t, loc[0], "\n", back)
		u, err := url.Parse(loc[0])
		require.NoError(t, err, back)
		assert.Empty(t, u.Scheme, back)
		assert.Empty(t, u.Host, back)
		assert.Contains(t, []string{"/dashboard/", "/dashboard/clients", "/dashboard/bans", "/dashboard/live", "/dashboard/devices", "/dashboard/plugins"}, u.Path, back)
		assert.Empty(t, res.Header.Get("X"), back)
		assert.Empty(t, u.Query().Get("done"), "q smuggled a done= of its own (%q)", back)
	}
}

// Client IDs, usernames, topics, rule details and ban reasons are text
// in the server's pages and JSON in the live view; a client ID cannot
// add parameters to the "ban…" link.
func TestRedTeamHostileStringsStayText(t *testing.T) {
	f := newFixture(t)
	hostile := `x&kind=ip&value=0.0.0.0/0"><svg onload=alert(1)><script>alert(2)</script>`
	evil := mqttguard.Client{ID: hostile, Username: `u"><img src=x onerror=alert(3)>`, Addr: netip.MustParseAddr("192.0.2.9"),
		Listener: `<b>tcp</b>`, ProtocolVersion: 5}
	f.sess.clients = append(f.sess.clients, evil)
	now := time.Now()
	f.tracker.Violation(trust.Identity{ClientID: hostile, Username: evil.Username, Addr: evil.Addr}, trust.Malformed, now)
	f.tracker.Violation(trust.Identity{ClientID: hostile, Username: evil.Username, Addr: evil.Addr}, trust.Malformed, now)
	f.guard.Publish(t.Context(), &evil, &mqttguard.Message{Topic: `a/"><iframe src=javascript:alert(4)>`, Payload: []byte("1"), Subscribers: -1}, now)
	f.feed.Add(mqttguard.Refusal{At: now, Point: mqttguard.PointPublish, Client: &evil, Topic: `t/<svg/onload=alert(5)>`,
		Decision: mqttguard.Decision{Verdict: mqttguard.Drop, Cause: mqttguard.Cause{Component: mqttguard.ByAnomaly, Detail: `</td><script>alert(6)</script>`}}})
	require.NoError(t, f.bans.Add(trust.Ban{Kind: trust.BanClientID, Value: hostile, Reason: `<script>alert(7)</script>`, By: `<i>me</i>`, At: now}))
	c := f.browser(t)
	f.signIn(t, c)
	for _, p := range []string{"", "clients", "bans", "devices", "plugins", "clients?q=" + url.QueryEscape(hostile),
		"bans?kind=" + url.QueryEscape(`client" onfocus="alert(8)`) + "&value=" + url.QueryEscape(hostile)} {
		res, body := get(t, c, f.srv.URL+"/dashboard/"+p)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		for _, bad := range []string{"<svg onload", "<svg/onload", "<script>alert", "<img", "<iframe", "<b>tcp", "<i>me", `" onfocus="`,
			"value=x&amp;kind=ip", "value=x&kind=ip"} {
			assert.False(t, strings.Contains(body, bad), "/dashboard/%s contains %q", p, bad)
		}
	}
	_, body := get(t, c, f.srv.URL+"/dashboard/clients")
	assert.Contains(t, body, "bans?kind=client&amp;value=x%26kind%3dip%26value%3d0.0.0.0%2f0", "the link's value is one parameter")

	res, err := c.Get(f.srv.URL + "/dashboard/events")
	require.NoError(t, err)
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			assert.NotContains(t, data, "<", "the stream's JSON escapes markup")
			assert.Contains(t, data, `\u003csvg/onload`)
			break
		}
	}
}

// ---------- 2. CSRF and cookies ----------

// The CSRF token is a cookie of its own, not bound to the session: it
// outlives a sign-out and the next sign-in, so a token that leaked once
// (or was planted by another port of the host, see redteam25) stays good.
func TestRedTeamCSRFTokenOutlivesTheSession(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	before := csrf(t, c, f.srv.URL+"/dashboard/")
	res := postRaw(t, f, "/dashboard/logout", "mqttguard_session="+sessionCookie(t, f, c), url.Values{"csrf": {before}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	f.signIn(t, c)
	after := csrf(t, c, f.srv.URL+"/dashboard/")
	assert.NotEqual(t, before, after, "a new session keeps the old session's CSRF token")
}

// A cookie of the same name with a more specific path (set by any other
// port of the host: cookies ignore ports) comes first in the Cookie
// header; the dashboard reads only the first, so the operator's own
// session and own forms stop working.
func TestRedTeamShadowingCookiesLockTheOperatorOut(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	sess := sessionCookie(t, f, c)
	tok := csrf(t, c, f.srv.URL+"/dashboard/clients")

	res, _ := getRaw(t, f, "/dashboard/clients", "mqttguard_session=tossed; mqttguard_session="+sess)
	assert.Equal(t, http.StatusOK, res.StatusCode, "a tossed session cookie ahead of the operator's signs the operator out")

	cookie := "mqttguard_csrf=" + strings.Repeat("T", 43) + "; mqttguard_csrf=" + tok + "; mqttguard_session=" + sess
	res = postRaw(t, f, "/dashboard/kick", cookie, url.Values{"csrf": {tok}, "client": {"sensor-1"}, "back": {"clients"}}, nil)
	assert.Equal(t, http.StatusSeeOther, res.StatusCode, "the operator's own kick, with a tossed CSRF cookie ahead of the real one")
}

// Sign-in and sign-out forged by another site (or a sandboxed frame,
// Origin: null) are refused before they act.
func TestRedTeamCrossSiteSignInAndSignOut(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	sess := sessionCookie(t, f, c)
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"cross-site"}}, {"Sec-Fetch-Site": {"same-site"}}, {"Origin": {"null"}},
		{"Origin": {"http://127.0.0.1:1"}}, {"Origin": {"http://evil.example"}}} {
		res := postRaw(t, f, "/dashboard/login", "", url.Values{"token": {token}}, h)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, "sign-in %v", h)
		assert.Empty(t, res.Cookies(), "sign-in %v", h)
		res = postRaw(t, f, "/dashboard/logout", "mqttguard_session="+sess, nil, h)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, "sign-out %v", h)
	}
	res, _ := getRaw(t, f, "/dashboard/clients", "mqttguard_session="+sess)
	assert.Equal(t, http.StatusOK, res.StatusCode, "still signed in")
	res, _ = getRaw(t, f, "/dashboard/logout", "mqttguard_session="+sess)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "no sign-out by GET (an <img>)")
}

// A page on a sibling port that planted the CSRF cookie knows the token;
// its post is same-site, not same-origin, and is refused — with the
// browser's Sec-Fetch-Site, or an older browser's Origin alone.
func TestRedTeamSiblingPortPostWithPlantedToken(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	f.signIn(t, c)
	planted := strings.Repeat("P", 43)
	cookie := "mqttguard_csrf=" + planted + "; mqttguard_session=" + sessionCookie(t, f, c)
	form := url.Values{"csrf": {planted}, "kind": {"ip"}, "value": {"0.0.0.0/0"}, "back": {"bans"}}
	u, _ := url.Parse(f.srv.URL)
	sibling := "http://" + u.Hostname() + ":1"
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"same-site"}, "Origin": {sibling}}, {"Origin": {sibling}}, {"Origin": {"null"}}} {
		res := postRaw(t, f, "/dashboard/ban", cookie, form, h)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, "%v", h)
	}
	assert.Empty(t, f.bans.List(time.Now()), "a sibling port banned every address")
}

// ---------- 5. cookies, headers, redirects ----------

// Session and CSRF cookies are HttpOnly, SameSite=Strict and scoped to
// the dashboard; every answer forbids caching and framing.
func TestRedTeamCookieAndHeaderFlags(t *testing.T) {
	f := newFixture(t)
	res := postRaw(t, f, "/dashboard/login", "", url.Values{"token": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	var sess string
	for _, k := range res.Cookies() {
		if k.Name == "mqttguard_session" {
			sess = k.Value
			assert.True(t, k.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, k.SameSite)
			assert.Equal(t, "/dashboard/", k.Path)
			assert.Empty(t, k.Domain)
		}
	}
	require.NotEmpty(t, sess)
	res, _ = getRaw(t, f, "/dashboard/bans", "mqttguard_session="+sess)
	for _, k := range res.Cookies() {
		if k.Name == "mqttguard_csrf" {
			assert.True(t, k.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, k.SameSite)
		}
	}
	for _, p := range []string{"/dashboard/login", "/dashboard/bans", "/dashboard/clients?part=main", "/dashboard/nothing"} {
		res, _ := getRaw(t, f, p, "mqttguard_session="+sess)
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), p)
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), p)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
	}
}

// Signing in again and again (anyone with the token) keeps at most 32
// sessions: the map does not grow.
func TestRedTeamSessionsAreBounded(t *testing.T) {
	f := newFixture(t)
	var first string
	for i := range 40 {
		res := postRaw(t, f, "/dashboard/login", "", url.Values{"token": {token}}, nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		if i == 0 {
			first = res.Cookies()[0].Value
		}
	}
	res, _ := getRaw(t, f, "/dashboard/", "mqttguard_session="+first)
	assert.Equal(t, http.StatusSeeOther, res.StatusCode, "the oldest of 40 sessions was ended")
}

// A signed-out browser at a nested path (an old link, a typo) is sent
// to "login" relative to that path, which is not the sign-in page:
// the redirects go round and never reach it.
func TestRedTeamNestedPathReachesSignIn(t *testing.T) {
	f := newFixture(t)
	u, _ := url.Parse(f.srv.URL + "/dashboard/clients/x/")
	for range 5 {
		res, _ := getRaw(t, f, u.RequestURI(), "")
		if res.StatusCode != http.StatusSeeOther {
			break
		}
		next, err := u.Parse(res.Header.Get("Location"))
		require.NoError(t, err)
		u = next
	}
	assert.Equal(t, "/dashboard/login", u.Path, "five redirects from /dashboard/clients/x/ end at %s", u.Path)
}

// ---------- 4. resource exhaustion ----------

// A live view whose reader never reads (its socket full) does not slow
// the Guard: refusals keep their pace while the stream is stuck.
func TestRedTeamStuckLiveViewDoesNotStallTheGuard(t *testing.T) {
	f := newFixture(t)
	// The fixture's dashboard behind a server whose sockets have small
	// send buffers, so that the stuck reader blocks the stream's writes
	// within a second rather than after megabytes.
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dashboard.RequireLogin(token, f.dash)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()
	res := postRawTo(t, srv.URL, "/dashboard/login", "", url.Values{"token": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	session := res.Cookies()[0].Value
	u, _ := url.Parse(srv.URL)
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	conn, err := d.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /dashboard/events HTTP/1.1\r\nHost: %s\r\nCookie: mqttguard_session=%s\r\n\r\n", u.Host, session)
	var worst time.Duration
	n := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); n++ {
		start := time.Now()
		f.publish("sensors/sensor-2/" + strconv.Itoa(n) + strings.Repeat("x", 240))
		worst = max(worst, time.Since(start))
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	stuck := false
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "dashboard.(*Dashboard).events") && strings.Contains(g, "waitWrite") {
			stuck = true
		}
	}
	require.True(t, stuck, "the live view's writer is blocked on the full socket")
	t.Logf("%d refusals in 3 s beside a stuck live view; the slowest took %v", n, worst)
	assert.Less(t, worst, time.Second, "a stalled Guard would wait as long as the stream is stuck")
	assert.Greater(t, n, 10000)
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A refusal flood with MQTT's longest strings (65,535 bytes) and new
// client IDs for the anomaly log: memory stays bounded, fields are cut.
func TestRedTeamHugeRefusalFloodIsBounded(t *testing.T) {
	feed := dashboard.NewFeed(0)
	long := strings.Repeat("é", 32767)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	now := time.Now()
	for i := range 5000 {
		c := &mqttguard.Client{ID: strconv.Itoa(i) + long, Username: long, Listener: long, Addr: netip.MustParseAddr("2001:db8::1")}
		comp := mqttguard.ByACL
		if i%2 == 0 {
			comp = mqttguard.ByAnomaly
		}
		feed.Add(mqttguard.Refusal{At: now, Point: mqttguard.PointPublish, Client: c, Topic: long,
			Decision: mqttguard.Decision{Verdict: mqttguard.Drop, Cause: mqttguard.Cause{Component: comp, Rule: long, File: long, Detail: long}}})
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	grew := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)
	t.Logf("heap grew %d KiB for 5,000 refusals of 64 KiB strings", grew>>10)
	assert.Less(t, grew, int64(4<<20))
	list := feed.Anomalous(time.Time{})
	assert.LessOrEqual(t, len(list), 512)
	for _, e := range feed.Latest(100, nil) {
		assert.Less(t, len(e.Client)+len(e.Topic)+len(e.Username)+len(e.Cause)+len(e.Listener), 2048)
	}
}
