package dashboard

import (
	"context"
	"crypto/subtle"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"golang.org/x/time/rate"
)

// Sessions made by RequireLogin: at most maxSessions at once (signing in
// again ends the oldest), each for sessionTTL.
const (
	maxSessions   = 32
	sessionTTL    = 12 * time.Hour
	sessionCookie = "mqttguard_session"
)

// RequireLogin puts h behind the token (the admin API's, in the
// examples): a browser signs in once at "login" (where h is mounted) by
// pasting it, and gets a session cookie (HttpOnly, SameSite=Strict,
// Secure over TLS) for 12 hours; "logout" ends it. A request with
// "Authorization: Bearer <token>" passes too. Anything else is sent to
// the sign-in page (GET) or refused (401).
//
// The token's strength is what stands against guessing (guardstack
// refuses a weak one): the right token is never refused, so no one who
// shares the operator's address can lock the operator out. Wrong tokens
// are logged (when h is a Dashboard, to its Config.Log, a line a minute
// per address) and answered 429 past five in a row from one address,
// and a sign-in body is read up to 4 KiB.
func RequireLogin(token string, h http.Handler) http.Handler {
	l := &login{token: token, next: h, sessions: map[string]time.Time{}, cop: http.NewCrossOriginProtection(),
		failures: ratelimit.New(rate.Every(10*time.Second), 5, ratelimit.WithMaxKeys(4096)),
		reported: ratelimit.New(rate.Every(time.Minute), 1, ratelimit.WithMaxKeys(4096)),
		log:      slog.New(slog.DiscardHandler)}
	if d, ok := h.(*Dashboard); ok {
		l.log = d.cfg.Log
	}
	return l
}

type login struct {
	token string
	next  http.Handler
	cop   *http.CrossOriginProtection
	log   *slog.Logger
	// failures counts wrong tokens per address: five, then one every
	// 10 s, before they are answered 429; reported bounds the log.
	failures, reported *ratelimit.Limiter

	mu       sync.Mutex
	sessions map[string]time.Time // session ID → expiry
}

// maxSignIn bounds the sign-in form's body: a token and a button.
const maxSignIn = 4 << 10

var loginPage = template.Must(template.ParseFS(assets, "assets/login.html"))

func (l *login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		securityHeaders(w.Header())
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			l.form(w, "", http.StatusOK)
		case http.MethodPost:
			l.signIn(w, r)
		default:
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		}
		return
	case "/logout":
		securityHeaders(w.Header())
		if r.Method != http.MethodPost || l.cop.Check(r) != nil {
			http.Error(w, "sign out with the page's button", http.StatusForbidden)
			return
		}
		for _, c := range r.CookiesNamed(sessionCookie) {
			l.mu.Lock()
			delete(l.sessions, c.Value)
			l.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: cookiePath(r), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		redirect(w, cookiePath(r)+"login")
		return
	}
	if r.Method == http.MethodGet && (r.URL.Path == "/dashboard.css" || r.URL.Path == "/dashboard.js") {
		// The style and script are public: the sign-in page uses the
		// style, and neither holds anything but code.
		l.next.ServeHTTP(w, r)
		return
	}
	if sid, ok := l.session(r); ok {
		l.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sid)))
		return
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if subtle.ConstantTimeCompare([]byte(got), []byte(l.token)) == 1 {
			l.next.ServeHTTP(w, r)
			return
		}
		securityHeaders(w.Header())
		http.Error(w, "wrong token", l.wrong(r, "bearer"))
		return
	}
	securityHeaders(w.Header())
	if r.Method == http.MethodGet && r.URL.Path != "/events" {
		redirect(w, cookiePath(r)+"login")
		return
	}
	http.Error(w, "sign in first", http.StatusUnauthorized)
}

// wrong records a wrong token from r's address and returns the status
// to answer it with: 401, or 429 past the address's budget.
func (l *login) wrong(r *http.Request, how string) int {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	now := time.Now()
	if l.reported.AllowN(addr, now, 1) {
		l.log.Warn("dashboard: a wrong admin token (someone may be guessing it)", "addr", addr, "how", how)
	}
	if !l.failures.AllowN(addr, now, 1) {
		return http.StatusTooManyRequests
	}
	return http.StatusUnauthorized
}

// redirect sends the browser to a page of the dashboard's (http.Redirect
// would resolve a relative one against the path StripPrefix left).
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}

func (l *login) form(w http.ResponseWriter, msg string, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	loginPage.Execute(w, msg)
}

func (l *login) signIn(w http.ResponseWriter, r *http.Request) {
	if l.cop.Check(r) != nil {
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSignIn)
	got := strings.TrimSpace(r.PostFormValue("token"))
	if subtle.ConstantTimeCompare([]byte(got), []byte(l.token)) != 1 {
		code := l.wrong(r, "sign-in")
		msg := "That is not the token. It is the contents of the admin token file (admin.token_file)."
		if code == http.StatusTooManyRequests {
			msg = "Too many wrong tokens from your address. " + msg
		}
		l.form(w, msg, code)
		return
	}
	now := time.Now()
	id := randomToken()
	l.mu.Lock()
	for k, exp := range l.sessions {
		if now.After(exp) {
			delete(l.sessions, k)
		}
	}
	if len(l.sessions) >= maxSessions {
		var oldest string
		var at time.Time
		for k, exp := range l.sessions {
			if at.IsZero() || exp.Before(at) {
				oldest, at = k, exp
			}
		}
		delete(l.sessions, oldest)
	}
	l.sessions[id] = now.Add(sessionTTL)
	l.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: cookiePath(r), MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	redirect(w, cookiePath(r))
}

// session returns the request's live session: any of its session
// cookies (another port of the host may toss one in ahead of it).
func (l *login) session(r *http.Request) (string, bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range r.CookiesNamed(sessionCookie) {
		if exp, ok := l.sessions[c.Value]; ok && now.Before(exp) {
			return c.Value, true
		}
	}
	return "", false
}
