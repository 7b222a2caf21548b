package guardstack

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardmetrics"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StartAdmin serves the admin API (package adminapi) on admin.listen,
// every endpoint but /healthz behind the bearer token in
// admin.token_file, and, unless admin.dashboard is false, the
// dashboard (package dashboard) at /dashboard/, where a browser signs
// in with the same token.
func (st *Stack) StartAdmin() error {
	a := st.Cfg.Admin
	if a.Listen == "" {
		return nil
	}
	tok, err := os.ReadFile(st.Cfg.Path(a.TokenFile))
	if err != nil {
		return st.Cfg.Errorf("admin.token_file", "%v", err)
	}
	token := strings.TrimSpace(string(tok))
	if why := weakToken(token); why != "" {
		return st.Cfg.Errorf("admin.token_file", "the token is weak (%s): it is all that stands between a guesser and the admin API and dashboard; "+
			"use a random one, e.g. openssl rand -base64 24 > %s", why, st.Cfg.Path(a.TokenFile))
	}
	api := st.AdminHandler()
	handler := adminapi.RequireToken(token, api)
	if a.DashboardOn() {
		if st.dash, err = st.newDashboard(api); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dashboard.RequireLogin(token, st.dash)))
		// A browser pointed at the admin address finds the dashboard.
		mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusSeeOther))
		handler = mux
	}

	st.adminL, err = net.Listen("tcp", a.Listen)
	if err != nil {
		return st.Cfg.Errorf("admin.listen", "%v", err)
	}
	st.setAddr("admin", st.adminL.Addr().String())
	handler = ownHostOnly(a.Listen, handler)
	st.admin = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	st.workers.Add(1)
	go func() {
		defer st.workers.Done()
		if err := st.admin.Serve(st.adminL); err != nil && !errors.Is(err, http.ErrServerClosed) {
			st.Log.Error("admin API", "error", err)
		}
	}()
	return nil
}

// newDashboard is the dashboard over api's components, the stack's
// Feed and fleet; Close closes it.
func (st *Stack) newDashboard(api *adminapi.Handler) (*dashboard.Dashboard, error) {
	cfg := dashboard.Config{Admin: api, Feed: st.Feed, Profiles: profileRules(st.Cfg), Log: st.Log}
	if f := st.Fleet; f != nil {
		cfg.Fleet = func() dashboard.FleetStatus {
			s := f.Stats()
			return dashboard.FleetStatus{Connected: s.Connected, Pending: s.Pending, Received: s.Received, Pushed: s.Pushed,
				Dropped: s.Dropped, Resyncs: s.Resyncs}
		}
	}
	return dashboard.New(cfg)
}

// AdminHandler is the admin API over this stack's components, without
// authentication: mount it behind your own (StartAdmin puts it behind
// admin.token_file's bearer token).
func (st *Stack) AdminHandler() *adminapi.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collector())
	return &adminapi.Handler{
		Guard: st.Guard, Bans: st.Bans, Tracker: st.Tracker, Sessions: sessionsOf{st},
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Reload: func() (adminapi.ReloadResult, error) {
			rep, err := st.reload()
			if err != nil {
				return adminapi.ReloadResult{}, err
			}
			res := adminapi.ReloadResult{Reloaded: rep.Reloaded}
			for _, c := range rep.Changes {
				if c.Applied {
					res.Applied = append(res.Applied, c.String())
				} else {
					res.RestartNeeded = append(res.RestartNeeded, c.String())
				}
			}
			return res, nil
		},
		SetMode: func(m trust.Mode) {
			st.reloadMu.Lock()
			st.Guard.SetMode(m)
			st.Cfg.Security.Mode = m.String() // in force until the next reload reads the file's
			st.reloadMu.Unlock()
		},
		SaveBans: st.SaveBans, SaveTrust: st.SaveTrust, Log: st.Log,
	}
}

// Collector is the stack's Prometheus collector.
func (st *Stack) Collector() *guardmetrics.Collector {
	return &guardmetrics.Collector{
		Guard: st.Guard, Tracker: st.Tracker, Bans: st.Bans, Flapping: st.Flapping, Intervals: st.Intervals, Fleet: st.Fleet,
		Connections: func() int {
			if sess := st.sessionsOrNil(); sess != nil {
				return len(sess.Clients())
			}
			return 0
		},
		Pending:  st.Pending,
		Rejected: st.rejected.snapshot,
		Kicks:    st.kicks,
	}
}

// sessionsOf is the program's Sessions as the admin API sees them: none
// until SetSessions.
type sessionsOf struct{ st *Stack }

func (s sessionsOf) Clients() []mqttguard.Client {
	if sess := s.st.sessionsOrNil(); sess != nil {
		return sess.Clients()
	}
	return nil
}

func (s sessionsOf) Kick(match trust.Ban, code reason.Code) int {
	if sess := s.st.sessionsOrNil(); sess != nil {
		return sess.Kick(match, code)
	}
	return 0
}

// weakToken says why an admin token is too weak to stand against
// guessing — fewer than 16 characters, fewer than 8 different ones, or
// under 80 bits from the kinds of character it draws from — or "".
func weakToken(tok string) string {
	distinct := map[rune]bool{}
	var digit, lower, upper, other bool
	for _, r := range tok {
		distinct[r] = true
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		default:
			other = true
		}
	}
	alphabet := 0
	for _, k := range []struct {
		has bool
		n   int
	}{{digit, 10}, {lower, 26}, {upper, 26}, {other, 32}} {
		if k.has {
			alphabet += k.n
		}
	}
	n := utf8.RuneCountInString(tok)
	switch bits := float64(n) * math.Log2(float64(max(alphabet, 1))); {
	case n < 16:
		return fmt.Sprintf("%d characters; use at least 16", n)
	case len(distinct) < 8:
		return fmt.Sprintf("%d different characters", len(distinct))
	case bits < 80:
		return fmt.Sprintf("about %.0f bits; use at least 80", bits)
	}
	return ""
}

// ownHostOnly answers 421 to a request for a host name that is not a
// loopback one, when the admin listener listens on loopback: a web page
// whose name an attacker re-points at 127.0.0.1 (DNS rebinding) is
// same-origin for the operator's browser, and would otherwise reach the
// dashboard as its own. Any port is fine (an SSH tunnel may forward
// another). On other addresses the operator's names are not known and
// every Host is served.
func ownHostOnly(listen string, next http.Handler) http.Handler {
	if !guardconf.Loopback(listen) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !guardconf.Loopback(r.Host) {
			http.Error(w, "this admin listener answers only for loopback names (localhost, 127.0.0.1, [::1])", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}
