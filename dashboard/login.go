package dashboard

import (
	"crypto/subtle"
	"html/template"
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
// examples): a browser signs in once at "login" (relative to where h is
// mounted) by pasting it, and gets a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS) for 12 hours; "logout" ends it. A
// request with "Authorization: Bearer <token>" passes too. Anything
// else is sent to the sign-in page (GET) or refused (401). Wrong tokens
// are answered 429 after five in a row from one address.
func RequireLogin(token string, h http.Handler) http.Handler {
	return &login{token: token, next: h, sessions: map[string]time.Time{}, cop: http.NewCrossOriginProtection(),
		failures: ratelimit.New(rate.Every(10*time.Second), 5, ratelimit.WithMaxKeys(4096))}
}

type login struct {
	token string
	next  http.Handler
	cop   *http.CrossOriginProtection
	// failures bounds guessing at the sign-in form: 5 tries, then one
	// every 10 s, per address.
	failures *ratelimit.Limiter

	mu       sync.Mutex
	sessions map[string]time.Time // session ID → expiry
}

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
		if c, err := r.Cookie(sessionCookie); err == nil {
			l.mu.Lock()
			delete(l.sessions, c.Value)
			l.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: cookiePath(r), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		redirect(w, "login")
		return
	}
	if l.bearer(r) || l.session(r) || (r.Method == http.MethodGet && (r.URL.Path == "/dashboard.css" || r.URL.Path == "/dashboard.js")) {
		// The style and script are public: the sign-in page uses the
		// style, and neither holds anything but code.
		l.next.ServeHTTP(w, r)
		return
	}
	securityHeaders(w.Header())
	if r.Method == http.MethodGet && r.URL.Path != "/events" {
		redirect(w, "login")
		return
	}
	http.Error(w, "sign in first", http.StatusUnauthorized)
}

// redirect sends the browser to a page of the dashboard's, relative to
// the one it asked for, wherever the dashboard is mounted (http.Redirect
// would resolve it against the path StripPrefix left).
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
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	now := time.Now()
	if l.failures.Tokens(addr, now) < 1 {
		l.form(w, "Too many wrong tokens from your address: wait ten seconds.", http.StatusTooManyRequests)
		return
	}
	got := strings.TrimSpace(r.PostFormValue("token"))
	if subtle.ConstantTimeCompare([]byte(got), []byte(l.token)) != 1 {
		l.failures.AllowN(addr, now, 1)
		l.form(w, "That is not the token. It is the contents of the admin token file (admin.token_file).", http.StatusUnauthorized)
		return
	}
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
	redirect(w, "./")
}

func (l *login) bearer(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(l.token)) == 1
}

func (l *login) session(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	l.mu.Lock()
	exp, ok := l.sessions[c.Value]
	l.mu.Unlock()
	return ok && time.Now().Before(exp)
}
