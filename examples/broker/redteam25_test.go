// Red-team attacks (round 25) on the security dashboard as the example
// broker serves it: /dashboard/ on the admin listener beside the admin
// API. Every test performs one attack over real loopback sockets and
// asserts the secure behaviour, so a failing test is a finding.
//
//	MQTTGUARD_TEST_LOG=error go test ./examples/broker -run RedTeam25 -count=1 -v
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/browsertest"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---------- helpers ----------

func rt25Token(t *testing.T, tb *testBroker) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tb.Dir, "admin.token"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// rt25Raw sends req as it is (request line and all) and returns the
// answer's status, headers and up to 64 KiB of its body.
func rt25Raw(t *testing.T, addr, req string) (int, http.Header, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "an answer to %q", strings.SplitN(req, "\r\n", 2)[0])
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, res.Header, string(b)
}

// rt25SignIn posts the sign-in form as a same-origin browser would,
// from a Host the test chooses; it returns the status and the session
// cookie, if any.
func rt25SignIn(t *testing.T, addr, host, token string) (int, string) {
	t.Helper()
	body := url.Values{"token": {token}}.Encode()
	req := fmt.Sprintf("POST /dashboard/login HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nSec-Fetch-Site: same-origin\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", host, host, len(body), body)
	code, h, _ := rt25Raw(t, addr, req)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "mqttguard_session" {
			return code, c.Value
		}
	}
	return code, ""
}

// ---------- 1. authentication bypass ----------

// Path tricks, odd methods and static files: nothing but the sign-in
// page, the style sheet and the script answers without a session, and
// no redirect leaves the admin address.
func TestRedTeam25PathTricksNeedSignIn(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	paths := []string{"//dashboard/clients", "/dashboard/%2e%2e/", "/dashboard/./clients", "/dashboard%2Fclients", "/dashboard/%2Fclients",
		"/dashboard/login/../clients", "/dashboard/login%2F..%2Fclients", "/dashboard/clients.", "/dashboard/clients/", "/dashboard/clients%00",
		"/dashboard/dashboard.css/../clients", "/dashboard/dashboard.css/", "/dashboard/dashboard.js%2F..%2Fclients", "/dashboard/%2e%2e/clients",
		"/dashboard/..%2Fclients", "/dashboard/login;/../clients", "/DASHBOARD/clients", "/dashboard/events", "/dashboard/events/",
		"/dashboard/layout.html", "/dashboard/login.html", "/dashboard/assets/layout.html", "/dashboard/clients?part=main",
		"http://evil.example/dashboard/clients", "//evil.example/%2e%2e", "/\\evil.example/", "/dashboard//evil.example"}
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "CONNECT", "PROPFIND"} {
			req := m + " " + p + " HTTP/1.1\r\nHost: " + admin + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
			code, h, body := rt25Raw(t, admin, req)
			what := m + " " + p
			assert.NotEqual(t, 200, code, what)
			assert.NotContains(t, body, `name="csrf"`, what)
			assert.NotContains(t, body, "<table", what)
			if loc := h.Get("Location"); loc != "" {
				u, err := url.Parse(loc)
				require.NoError(t, err, what)
				assert.Empty(t, u.Host, "%s: redirected off the admin address: %q", what, loc)
				assert.False(t, strings.HasPrefix(loc, "//"), "%s: %q", what, loc)
			}
		}
	}
	// What is public holds only code and style.
	for _, p := range []string{"/dashboard/dashboard.css", "/dashboard/dashboard.js", "/dashboard/%64ashboard.css", "/dashboard/login"} {
		code, _, body := rt25Raw(t, admin, "GET "+p+" HTTP/1.1\r\nHost: "+admin+"\r\nConnection: close\r\n\r\n")
		assert.Equal(t, 200, code, p)
		assert.NotContains(t, body, rt25Token(t, tb), p)
		assert.NotContains(t, body, "{{", p, "no template source")
	}
}

// The dashboard's session is not the admin token: with only the cookie
// the admin API answers 401; with a wrong or empty bearer the dashboard
// refuses, or sends the browser to sign in.
func TestRedTeam25SessionCookieIsNotTheAdminToken(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	web := mqtttest.Dashboard(t, admin, filepath.Join(tb.Dir, "admin.token"))
	for _, p := range []string{"/clients", "/bans", "/metrics", "/trust", "/plugins"} {
		res, err := web.Get("http://" + admin + p)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 401, res.StatusCode, "admin API %s with the dashboard cookie", p)
	}
	res, err := web.PostForm("http://"+admin+"/bans", url.Values{"kind": {"ip"}, "value": {"0.0.0.0/0"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 401, res.StatusCode)
	for _, auth := range []string{"Bearer ", "Bearer", "Bearer wrong-token-0123456789", "Basic " + rt25Token(t, tb), "bearer " + rt25Token(t, tb),
		"Bearer  " + rt25Token(t, tb), "Bearer " + rt25Token(t, tb) + "x"} {
		code, h, body := rt25Raw(t, admin, "GET /dashboard/clients HTTP/1.1\r\nHost: "+admin+"\r\nAuthorization: "+auth+"\r\nConnection: close\r\n\r\n")
		// A wrong bearer is refused (401, or 429 once it looks like
		// guessing); anything else is a browser to sign in.
		assert.Contains(t, []int{303, 401, 429}, code, auth)
		if code == 303 {
			assert.Equal(t, "/dashboard/login", h.Get("Location"), auth)
		}
		assert.NotContains(t, body, "<table", auth)
	}
}

// ---------- 4. sign-in guessing and its limit ----------

// The admin listener is on 127.0.0.1 by default, so every browser, SSH
// tunnel and reverse proxy reaches it from the same address. Anyone on
// the host (another user, a compromised local service) who posts five
// wrong tokens, and one more every ten seconds, keeps the operator from
// signing in even with the right token.
func TestRedTeam25LocalPeerLocksOperatorOut(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	for range 5 {
		code, _ := rt25SignIn(t, admin, admin, "attacker-guess-0123456789")
		require.Equal(t, 401, code)
	}
	code, session := rt25SignIn(t, admin, admin, rt25Token(t, tb))
	assert.Equal(t, 303, code, "the operator, with the right token, is answered %d", code)
	assert.NotEmpty(t, session, "the operator gets no session")
}

// DNS rebinding: a web page the operator visits (its name re-pointed at
// 127.0.0.1) posts to the admin listener as its own origin — the browser
// sends Sec-Fetch-Site: same-origin, and Host is the attacker's name. No
// handler checks Host, so the page can spend the operator's sign-in
// budget (and read the public pages) from the operator's own browser.
func TestRedTeam25RebindingHostIsRefused(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	_, port, _ := net.SplitHostPort(admin)
	foreign := "rebind.attacker.example:" + port
	var codes []int
	for range 5 {
		code, _ := rt25SignIn(t, admin, foreign, "rebinding-guess-0123456789")
		codes = append(codes, code)
	}
	t.Logf("sign-ins with Host %s answered %v", foreign, codes)
	assert.Contains(t, []int{400, 403, 421}, codes[0], "a request for another host name is refused before it counts")
	code, session := rt25SignIn(t, admin, admin, rt25Token(t, tb))
	assert.Equal(t, 303, code, "the operator signs in after the rebinding page's guesses")
	assert.NotEmpty(t, session)
}

// Thirty guesses held back until they all arrive at once: the budget
// is spent per wrong answer, so past five they are answered 429 however
// they are timed — and the right token still signs in. (The token's
// strength, 80 bits at least, is what stands against guessing; the
// answer never turns the operator away.)
func TestRedTeam25HeldGuessesAreAnswered429(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	const n = 30
	conns := make([]net.Conn, n)
	bodies := make([]string, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", admin, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(15 * time.Second))
		bodies[i] = url.Values{"token": {fmt.Sprintf("held-guess-%04d-0123456789", i)}}.Encode()
		fmt.Fprintf(c, "POST /dashboard/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", admin, len(bodies[i]), bodies[i][:len(bodies[i])-1])
		conns[i] = c
	}
	time.Sleep(300 * time.Millisecond) // every handler has passed the check and waits for its body
	codes := map[int]int{}
	for i, c := range conns {
		_, err := io.WriteString(c, bodies[i][len(bodies[i])-1:])
		require.NoError(t, err)
	}
	for _, c := range conns {
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		res.Body.Close()
		codes[res.StatusCode]++
	}
	t.Logf("answers to %d held guesses: %v", n, codes)
	assert.LessOrEqual(t, codes[401], 5, "wrong tokens answered 401 beyond the budget of five")
	assert.Equal(t, n-codes[401], codes[429], "the rest answered 429")
	code, session := rt25SignIn(t, admin, admin, rt25Token(t, tb))
	assert.Equal(t, 303, code)
	assert.NotEmpty(t, session, "the operator still signs in")
}

// The sign-in form is read whole (up to net/http's 10 MiB form limit)
// by anyone, before authentication, and the budget check does not stop
// concurrent posts (above). Sixteen unauthenticated posts of 8 MiB make
// the broker's process hold about 150 MiB at once (some 10 MiB a
// connection): the admin listener shares the broker's memory.
func TestRedTeam25SignInBodyIsBounded(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	const n, size = 16, 8 << 20
	var peak atomic.Uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	// Every connection sends its headers first (all pass the budget
	// check together, as in the test above), then its body.
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", admin, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		head := fmt.Sprintf("token=big-%02d&pad=", i)
		fmt.Fprintf(c, "POST /dashboard/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", admin, len(head)+size, head)
		conns[i] = c
	}
	time.Sleep(300 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	chunk := []byte(strings.Repeat("a", 64<<10))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					break
				}
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			res.Body.Close()
			mu.Lock()
			codes[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	grew := (int64(peak.Load()) - int64(base)) >> 20
	t.Logf("%d unauthenticated sign-ins of %d MiB: answers %v, heap grew by %d MiB at its peak", n, size>>20, codes, grew)
	assert.Less(t, grew, int64(32), "heap growth (MiB) from unauthenticated sign-in bodies")
}

// Guessing through "Authorization: Bearer" on any dashboard path (and
// on the admin API) is not limited at all: the sign-in form's limit
// protects nothing a guesser needs.
func TestRedTeam25BearerGuessingIsLimited(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	limited := 0
	for i := range 50 {
		req := fmt.Sprintf("GET /dashboard/clients HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer guess-%04d-0123456789abcdef\r\nConnection: close\r\n\r\n", admin, i)
		code, _, _ := rt25Raw(t, admin, req)
		if code == 429 {
			limited++
		}
	}
	assert.Positive(t, limited, "50 wrong bearer tokens in a row from one address: none was refused as guessing")
}

// ---------- 2. CSRF and cookies: a page on another port of the host ----------

// Cookies ignore ports: a page served from any other port of 127.0.0.1
// (another local web app, one with an XSS, a dev server) sets cookies
// the dashboard receives. It shadows the operator's session cookie with
// a more specific path (the operator is sent to sign in, again and
// again) and overwrites the CSRF cookie with a value it knows (the
// double-submit token in the operator's forms is now the attacker's).
func TestRedTeam25CookieTossingFromAnotherPort(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	known := strings.Repeat("K", 43)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "mqttguard_session", Value: "tossed", Path: "/dashboard/clients", MaxAge: 3600})
		http.SetCookie(w, &http.Cookie{Name: "mqttguard_csrf", Value: known, Path: "/dashboard/", HttpOnly: true})
		io.WriteString(w, "<!doctype html><title>cute cats</title><p>cats")
	}))
	t.Cleanup(attacker.Close)
	require.True(t, strings.HasPrefix(attacker.URL, "http://127.0.0.1:"))

	ctx := browsertest.Start(t)
	browsertest.SignIn(t, ctx, admin, rt25Token(t, tb))
	browsertest.Do(t, ctx, "the clients page, before", chromedp.Navigate("http://"+admin+"/dashboard/clients"),
		chromedp.WaitVisible(chromedp.CSS(`#clients`)))
	browsertest.Do(t, ctx, "visit the page on the other port", chromedp.Navigate(attacker.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`p`)))

	browsertest.Do(t, ctx, "the overview, after", chromedp.Navigate("http://"+admin+"/dashboard/"), chromedp.WaitReady(chromedp.CSS(`body`)))
	form := browsertest.Eval[string](t, ctx, `(document.querySelector('input[name=csrf]') || {value: ""}).value`)
	assert.NotEqual(t, known, form, "the operator's forms carry the CSRF token another port chose")

	browsertest.Do(t, ctx, "the clients page, after", chromedp.Navigate("http://"+admin+"/dashboard/clients"), chromedp.WaitReady(chromedp.CSS(`body`)))
	where := browsertest.Eval[string](t, ctx, `location.pathname`)
	assert.Equal(t, "/dashboard/clients", where, "the signed-in operator was sent to sign in")
}

// The same page on another port, with the CSRF token it planted, makes
// the signed-in operator's browser post a ban of every address. The
// browser calls that same-site, not same-origin, and the check refuses
// it: no ban.
func TestRedTeam25AnotherPortCannotPostAsTheOperator(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	known := strings.Repeat("K", 43)
	var posted atomic.Bool
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "mqttguard_csrf", Value: known, Path: "/dashboard/", HttpOnly: true})
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="http://%s/dashboard/ban">
<input name=csrf value=%s><input name=kind value=ip><input name=value value="0.0.0.0/0"><input name=for value=""><input name=reason value=x></form>
<script>fetch("http://%s/dashboard/kick", {method: "POST", mode: "no-cors", credentials: "include",
 headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=%s&client=x"}).finally(() => document.getElementById("f").submit())</script>`,
			admin, known, admin, known)
		posted.Store(true)
	}))
	t.Cleanup(attacker.Close)
	ctx := browsertest.Start(t)
	browsertest.SignIn(t, ctx, admin, rt25Token(t, tb))
	browsertest.Do(t, ctx, "visit the page on the other port", chromedp.Navigate(attacker.URL+"/"))
	require.True(t, posted.Load())
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		// The form is being submitted: the page may be between documents.
		if host, err := browsertest.TryEval[string](ctx, `location.host`); err == nil && host == admin {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	text := browsertest.Eval[string](t, ctx, `document.body ? document.body.innerText : ""`)
	t.Logf("the forged post was answered: %q", strings.TrimSpace(text))
	code, body := tb.Admin(t, "GET", "/bans", "")
	require.Equal(t, 200, code)
	assert.NotContains(t, body, "0.0.0.0/0", "a page on another port banned every address")
	assert.Contains(t, text, "cross-origin")
}

// ---------- 5. the dashboard turned off ----------

// admin.dashboard = false: no dashboard, no sign-in, no redirect; the
// admin API as before.
func TestRedTeam25DashboardOff(t *testing.T) {
	off := false
	tb := startBroker(t, func(c *guardconf.Config) { c.Admin.Dashboard = &off })
	admin := tb.Addr("admin")
	for _, p := range []string{"/", "/dashboard/", "/dashboard/login", "/dashboard/dashboard.js"} {
		code, h, body := rt25Raw(t, admin, "GET "+p+" HTTP/1.1\r\nHost: "+admin+"\r\nConnection: close\r\n\r\n")
		assert.Equal(t, 401, code, p)
		assert.Empty(t, h.Get("Location"), p)
		assert.NotContains(t, body, `name="token"`, p+": no sign-in form")
	}
	code, _, _ := rt25Raw(t, admin, "POST /dashboard/login HTTP/1.1\r\nHost: "+admin+"\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: 6\r\nConnection: close\r\n\r\ntoken=")
	assert.Equal(t, 401, code)
	code, _ = tb.Admin(t, "GET", "/dashboard/", "")
	assert.Equal(t, 404, code)
}

// ---------- 3. hostile names from MQTT clients ----------

// A client whose ID and topic are markup: the pages and the live view,
// in a real browser, show them as text; no element is injected.
func TestRedTeam25HostileClientIsText(t *testing.T) {
	tb := startBroker(t, nil)
	admin := tb.Addr("admin")
	id := `"><img src=x id=pwn1 onerror=alert(1)>`
	topic := `sensors/"><img src=x id=pwn2>/<script>alert(2)</script>`
	ctx := browsertest.Start(t)
	browsertest.SignIn(t, ctx, admin, rt25Token(t, tb))
	browsertest.Do(t, ctx, "open the live view", chromedp.Navigate("http://"+admin+"/dashboard/live"))
	require.Eventually(t, func() bool {
		return browsertest.Eval[string](t, ctx, `document.querySelector("#live .status").textContent`) == "live"
	}, 5*time.Second, 100*time.Millisecond)

	c := mqtttest.DialRaw(t, tb.Addr("tcp"))
	require.Equal(t, byte(0), mqtttest.Connect5(t, c, id, "sensor2", passwords["sensor2"], nil))
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, c, topic, 1, 1))
	require.Eventually(t, func() bool {
		return browsertest.Eval[int](t, ctx, `document.querySelectorAll("#live li").length`) > 0
	}, 5*time.Second, 100*time.Millisecond, "the refusal reached the live view")
	row := browsertest.Eval[string](t, ctx, `document.querySelector("#live li").textContent`)
	assert.Contains(t, row, id)
	assert.Contains(t, row, "<script>")
	for _, page := range []string{"live", "", "clients"} {
		if page != "live" {
			browsertest.Do(t, ctx, "open "+page, chromedp.Navigate("http://"+admin+"/dashboard/"+page), chromedp.WaitReady(chromedp.CSS(`main`)))
		}
		n := browsertest.Eval[int](t, ctx, `document.querySelectorAll("img, #pwn1, #pwn2, main script").length`)
		assert.Zero(t, n, "elements injected into /dashboard/%s", page)
	}
	body := browsertest.Eval[string](t, ctx, `document.querySelector("main").textContent`)
	assert.Contains(t, body, id, "the clients page shows the ID as text")
}

// ---------- 5. transport ----------

// The admin listener speaks only plain HTTP. A dashboard on a network
// address (the way to use it from another machine) carries the admin
// token at sign-in and the session cookie, never marked Secure, in
// clear text; the configuration accepts it without a word.
func TestRedTeam25CleartextDashboardOffLoopback(t *testing.T) {
	text := strings.Replace(string(guardconf.DefaultConfig), `listen = "127.0.0.1:8080"`, `listen = "0.0.0.0:8080"`, 1)
	require.NotEqual(t, string(guardconf.DefaultConfig), text)
	cfg, err := guardconf.ParseConfig([]byte(text), "mqttguard.toml", t.TempDir(), nil)
	if err == nil {
		require.True(t, cfg.Admin.DashboardOn())
	}
	assert.Error(t, err, "the dashboard's sign-in on 0.0.0.0 over plain HTTP is accepted")
}
