package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/anomaly"
)

//go:embed assets
var assets embed.FS

// Config is what a Dashboard shows and acts on. Admin is required; the
// other fields are optional, with the zero values documented.
type Config struct {
	// Admin is the admin API's handler: the dashboard reads the Guard,
	// the ban list, the trust tracker and the sessions through it and
	// acts with its Kick, Ban, Lift and Pardon, so that a change made in
	// the page is saved and logged as the API's are.
	Admin *adminapi.Handler
	// Feed is the ring of recent refusals (Config.OnRefusal of the Guard
	// set to its Add): the live view, the devices page and the clients'
	// last refusal. Nil: those show nothing.
	Feed *Feed
	// Profiles are the push-interval profiles the devices page lists.
	Profiles []anomaly.ProfileRule
	// Fleet reports fleet mode's health; nil: not in fleet mode.
	Fleet func() FleetStatus
	// SampleEvery is how often the overview's charts take a sample
	// (default 2 s), and Keep how many they keep (default 300: ten
	// minutes at 2 s).
	SampleEvery time.Duration
	Keep        int
	// MaxStreams bounds the live views open at once (default 8); one
	// more is answered 503.
	MaxStreams int
	// Log hears what the dashboard could not do (nil: nowhere).
	Log *slog.Logger
}

// FleetStatus is fleet mode's health as the overview shows it.
type FleetStatus struct {
	Connected bool   // subscribed to Redis and in sync
	Pending   int    // local changes waiting for Redis
	Received  uint64 // changes from other brokers
	Pushed    uint64 // local changes written to Redis
	Dropped   uint64 // local changes dropped from a full queue
	Resyncs   uint64 // full syncs, one per (re)connection
}

// A Dashboard serves the pages. Make it with New, mount it under a path
// that ends in "/" (http.StripPrefix("/dashboard", d) on
// "/dashboard/"), behind authentication (RequireLogin), and Close it
// when done: Close stops the sampling and ends the live views, which
// an http.Server's Shutdown would otherwise wait for.
type Dashboard struct {
	cfg     Config
	mux     *http.ServeMux
	pages   map[string]*template.Template
	hist    *history
	cop     *http.CrossOriginProtection
	streams atomic.Int32
	// key signs the CSRF tokens and the flash messages: random, this
	// process's own.
	key [32]byte

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New returns a Dashboard and starts its sampling.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Admin == nil || cfg.Admin.Guard == nil {
		return nil, errors.New("dashboard: Config.Admin with its Guard is required")
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 2 * time.Second
	}
	if cfg.Keep <= 1 {
		cfg.Keep = 300
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 8
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, hist: newHistory(cfg.Keep), cop: http.NewCrossOriginProtection(), done: make(chan struct{})}
	rand.Read(d.key[:])
	if err := d.parse(); err != nil {
		return nil, err
	}
	d.routes()
	d.hist.add(takeSample(cfg.Admin.Guard, d.connected(), time.Now()))
	d.wg.Add(1)
	go d.sampleLoop()
	return d, nil
}

// Close stops the sampling and ends the open live views. It is safe to
// call more than once.
func (d *Dashboard) Close() {
	d.closeOnce.Do(func() { close(d.done) })
	d.wg.Wait()
}

func (d *Dashboard) sampleLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case now := <-t.C:
			d.hist.add(takeSample(d.cfg.Admin.Guard, d.connected(), now))
		}
	}
}

func (d *Dashboard) connected() int {
	if s := d.cfg.Admin.Sessions; s != nil {
		return len(s.Clients())
	}
	return 0
}

// contentSecurity allows nothing but this origin's own script, style
// and connections: no inline script, no other origin, no framing.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurity)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// maxForm bounds a state-changing request's body: the forms are a few
// short fields.
const maxForm = 64 << 10

// ServeHTTP serves one request, every answer with a strict
// Content-Security-Policy, and every state-changing one only from this
// origin with the page's CSRF token.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := d.cop.Check(r); err != nil {
			http.Error(w, "cross-origin request refused: use the dashboard's own pages", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if !d.validCSRF(r) {
			http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
			return
		}
	}
	d.mux.ServeHTTP(w, r)
}

// The CSRF token a page's forms carry is an HMAC, with the Dashboard's
// key, of what the request is bound to: its RequireLogin session, or,
// under a host's own authentication, a random cookie (a signed double
// submit). A page on another port of the host can set cookies here —
// browsers ignore ports — but it cannot compute the token for them,
// and a new session gets a new token.
const csrfCookie = "mqttguard_csrf"

// csrfToken returns the token for the request's forms, setting the
// cookie it is bound to when there is no session and no cookie.
func (d *Dashboard) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if sid, ok := r.Context().Value(sessionKey{}).(string); ok {
		return d.sign("csrf session", sid)
	}
	for _, c := range r.CookiesNamed(csrfCookie) {
		if len(c.Value) == 43 {
			return d.sign("csrf cookie", c.Value)
		}
	}
	nonce := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: nonce, Path: cookiePath(r), HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return d.sign("csrf cookie", nonce)
}

// validCSRF reports whether the form's token is the one for the
// request's session or for one of its CSRF cookies (another may have
// been tossed in ahead of it).
func (d *Dashboard) validCSRF(r *http.Request) bool {
	got := []byte(r.PostFormValue("csrf"))
	if sid, ok := r.Context().Value(sessionKey{}).(string); ok {
		return subtle.ConstantTimeCompare(got, []byte(d.sign("csrf session", sid))) == 1
	}
	ok := false
	for _, c := range r.CookiesNamed(csrfCookie) {
		if len(c.Value) == 43 && subtle.ConstantTimeCompare(got, []byte(d.sign("csrf cookie", c.Value))) == 1 {
			ok = true
		}
	}
	return ok
}

// sign is the HMAC-SHA256 of what, for purpose, with the Dashboard's
// key: 43 characters.
func (d *Dashboard) sign(purpose, what string) string {
	m := hmac.New(sha256.New, d.key[:])
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(what))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionKey is the request context key under which RequireLogin puts
// the session ID.
type sessionKey struct{}

// randomToken is 32 random bytes, base64url: 43 characters.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// cookiePath is where the dashboard is mounted: the request's path
// without the part the handler sees (http.StripPrefix took the rest).
func cookiePath(r *http.Request) string {
	full := r.URL.EscapedPath()
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		full = u.EscapedPath()
	}
	seen := r.URL.EscapedPath()
	if len(full) >= len(seen) && full[len(full)-len(seen):] == seen {
		if p := full[:len(full)-len(seen)] + "/"; p[0] == '/' {
			return p
		}
	}
	return "/"
}
