package stack

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StartAdmin serves the admin API on loopback (admin.listen), every
// endpoint but /healthz behind the bearer token in admin.token_file:
//
//	GET    /healthz                     liveness, no token
//	GET    /metrics                     Prometheus text
//	GET    /clients                     connected clients with trust state and score
//	POST   /clients/{id}/kick           disconnect a client (0x98)
//	GET    /bans                        the ban list
//	POST   /bans                        add one: {"kind": "client", "value": "x", "for": "1h", "reason": "…"}
//	DELETE /bans/{kind}/{value}         lift one (?username= for a client ban scoped to a username)
//	GET    /trust                       punished clients, usernames and addresses (?state=write-disabled: that or worse)
//	POST   /trust/pardon                put one back to normal: {"dimension": "client", "key": "x", "username": "u"}
//	                                    (a username's pardon pardons its clients too)
//	GET    /plugins                     plugins with their stats
//	POST   /plugins/{name}/disable      take a plugin out (its calls allow)
//	POST   /plugins/{name}/enable       put it back (and lift a quarantine)
//	POST   /mode/{mode}                 observe, light or full
//	POST   /reload                      what SIGHUP does
func (st *Stack) StartAdmin() error {
	a := st.Cfg.Admin
	if a.Listen == "" {
		return nil
	}
	tok, err := os.ReadFile(st.Cfg.Path(a.TokenFile))
	if err != nil {
		return st.Cfg.errorf("admin.token_file", "%v", err)
	}
	st.token = strings.TrimSpace(string(tok))
	if len(st.token) < 16 {
		return st.Cfg.errorf("admin.token_file", "the token is %d characters; use at least 16", len(st.token))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{st})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", st.authorized(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /clients", st.authorized(http.HandlerFunc(st.listClients)))
	mux.Handle("POST /clients/{id}/kick", st.authorized(http.HandlerFunc(st.kickClient)))
	mux.Handle("GET /bans", st.authorized(http.HandlerFunc(st.listBans)))
	mux.Handle("POST /bans", st.authorized(http.HandlerFunc(st.addBan)))
	mux.Handle("DELETE /bans/{kind}/{value...}", st.authorized(http.HandlerFunc(st.removeBan)))
	mux.Handle("GET /trust", st.authorized(http.HandlerFunc(st.listTrust)))
	mux.Handle("POST /trust/pardon", st.authorized(http.HandlerFunc(st.pardon)))
	mux.Handle("GET /plugins", st.authorized(http.HandlerFunc(st.listPlugins)))
	mux.Handle("POST /plugins/{name}/{action}", st.authorized(http.HandlerFunc(st.switchPlugin)))
	mux.Handle("POST /mode/{mode}", st.authorized(http.HandlerFunc(st.setMode)))
	mux.Handle("POST /reload", st.authorized(http.HandlerFunc(st.reloadHandler)))

	st.adminL, err = net.Listen("tcp", a.Listen)
	if err != nil {
		return st.Cfg.errorf("admin.listen", "%v", err)
	}
	st.setAddr("admin", st.adminL.Addr().String())
	st.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
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

func (st *Stack) authorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(st.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mqttguard"`)
			httpError(w, http.StatusUnauthorized, "a bearer token is required (the contents of admin.token_file)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// ClientInfo is one client as GET /clients lists it.
type ClientInfo struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Addr     string `json:"addr"`
	Listener string `json:"listener"`
	Protocol byte   `json:"protocol"`
	CertName string `json:"cert_identity,omitempty"`
	State    string `json:"state"`
	Score    int    `json:"score"`
}

func (st *Stack) listClients(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	out := []ClientInfo{}
	sess := st.sessionsOrNil()
	if sess == nil {
		writeJSON(w, out)
		return
	}
	for _, c := range sess.Clients() {
		v := st.Tracker.Verdict(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}, now)
		out = append(out, ClientInfo{ID: c.ID, Username: c.Username, Addr: c.Addr.String(), Listener: c.Listener,
			Protocol: c.ProtocolVersion, CertName: c.CertIdentity, State: v.State.String(), Score: v.Score})
	}
	writeJSON(w, out)
}

func (st *Stack) kickClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sess := st.sessionsOrNil()
	if sess == nil || sess.Kick(trust.Ban{Kind: trust.BanClientID, Value: id}, 0x98) == 0 {
		httpError(w, http.StatusNotFound, "no client %q is connected", id)
		return
	}
	writeJSON(w, map[string]string{"kicked": id})
}

func (st *Stack) listBans(w http.ResponseWriter, r *http.Request) {
	out := st.Bans.List(time.Now())
	if out == nil {
		out = []trust.Ban{} // an empty list is [], not null
	}
	writeJSON(w, out)
}

func (st *Stack) addBan(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind   string `json:"kind"`
		Value  string `json:"value"`
		For    string `json:"for"` // a duration; "" or "0": permanent
		Reason string `json:"reason"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	kind, err := trust.ParseBanKind(req.Kind)
	if err != nil {
		httpError(w, http.StatusBadRequest, "kind: %v", err)
		return
	}
	now := time.Now()
	ban := trust.Ban{Kind: kind, Value: req.Value, At: now, By: "admin", Reason: req.Reason}
	if req.For != "" && req.For != "0" {
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 {
			httpError(w, http.StatusBadRequest, "for: %q is not a positive duration (\"1h\", \"30m\")", req.For)
			return
		}
		ban.Until = now.Add(d)
	}
	if err := st.Bans.Add(ban); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	st.SaveBans() // on disk before the operator is told it is done
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, ban)
}

func (st *Stack) removeBan(w http.ResponseWriter, r *http.Request) {
	kind, err := trust.ParseBanKind(r.PathValue("kind"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "kind: %v", err)
		return
	}
	if !st.Bans.Lift(trust.Ban{Kind: kind, Value: r.PathValue("value"), Username: r.URL.Query().Get("username")}) {
		httpError(w, http.StatusNotFound, "no %v ban on %q", kind, r.PathValue("value"))
		return
	}
	st.SaveBans()
	writeJSON(w, map[string]string{"lifted": kind.String() + " " + r.PathValue("value")})
}

type pluginInfo struct {
	Name  string          `json:"name"`
	Stats wasmguard.Stats `json:"stats"`
}

func (st *Stack) listPlugins(w http.ResponseWriter, r *http.Request) {
	out := []pluginInfo{}
	for _, p := range st.Guard.Plugins() {
		out = append(out, pluginInfo{Name: p.Name(), Stats: p.Stats()})
	}
	writeJSON(w, out)
}

func (st *Stack) switchPlugin(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	for _, p := range st.Guard.Plugins() {
		if p.Name() != name {
			continue
		}
		switch action {
		case "disable":
			p.Disable()
		case "enable":
			p.Enable()
		default:
			httpError(w, http.StatusNotFound, "no action %q: disable or enable", action)
			return
		}
		writeJSON(w, map[string]any{"plugin": name, "disabled": p.Disabled()})
		return
	}
	httpError(w, http.StatusNotFound, "no plugin %q", name)
}

func (st *Stack) setMode(w http.ResponseWriter, r *http.Request) {
	m, err := trust.ParseMode(r.PathValue("mode"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "unknown mode %q: want observe, light or full", r.PathValue("mode"))
		return
	}
	st.reloadMu.Lock()
	st.Guard.SetMode(m)
	st.Cfg.Security.Mode = m.String() // in force until the next reload reads the file's
	st.reloadMu.Unlock()
	st.Log.Info("security mode changed by the admin API", "mode", m.String())
	writeJSON(w, map[string]string{"mode": m.String()})
}

// reloadResult is what POST /reload answers.
type reloadResult struct {
	Reloaded      []string `json:"reloaded"`       // files read again
	Applied       []string `json:"applied"`        // settings now in force
	RestartNeeded []string `json:"restart_needed"` // changed settings that wait for a restart
}

func (st *Stack) reloadHandler(w http.ResponseWriter, r *http.Request) {
	rep, err := st.reload()
	if err != nil {
		httpError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	res := reloadResult{Reloaded: rep.Reloaded, Applied: []string{}, RestartNeeded: []string{}}
	if res.Reloaded == nil {
		res.Reloaded = []string{}
	}
	for _, c := range rep.Changes {
		if c.Applied {
			res.Applied = append(res.Applied, c.String())
		} else {
			res.RestartNeeded = append(res.RestartNeeded, c.String())
		}
	}
	writeJSON(w, res)
}

// TrustEntry is one punished record as GET /trust lists it.
type TrustEntry struct {
	Dimension string    `json:"dimension"` // client, username or ip
	Key       string    `json:"key"`
	Username  string    `json:"username,omitempty"` // a client's, for a client record
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Score     int       `json:"score"`
	Reason    string    `json:"reason,omitempty"` // the kind of the last violation
}

func (st *Stack) listTrust(w http.ResponseWriter, r *http.Request) {
	least := trust.Throttled
	if q := r.URL.Query().Get("state"); q != "" {
		s, err := trust.ParseState(q)
		if err != nil {
			httpError(w, http.StatusBadRequest, "state: %v", err)
			return
		}
		least = s
	}
	out := []TrustEntry{}
	for _, rec := range st.Tracker.Records(least, time.Now()) {
		out = append(out, TrustEntry{Dimension: rec.Dimension.String(), Key: rec.Key, Username: rec.Username,
			State: rec.State.String(), Since: rec.Since, Score: rec.Score, Reason: rec.Reason})
	}
	writeJSON(w, out)
}

// pardon puts one record back to normal, at once, and logs who was
// pardoned (the Tracker logs the transition; this says it was the API).
func (st *Stack) pardon(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Dimension string `json:"dimension"`
		Key       string `json:"key"`
		Username  string `json:"username"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	dim, err := trust.ParseDimension(req.Dimension)
	if err != nil {
		httpError(w, http.StatusBadRequest, "dimension: %v", err)
		return
	}
	now := time.Now()
	found := st.Tracker.Pardon(dim, req.Key, req.Username, now)
	pardoned := []string{dim.String() + " " + req.Key}
	if dim == trust.ByUsername {
		// A client is in the worst state of its client ID and its
		// username: pardoning an account pardons its punished clients.
		for _, rec := range st.Tracker.Records(trust.Throttled, now) {
			if rec.Dimension == trust.ByClientID && rec.Username == req.Key && st.Tracker.Pardon(trust.ByClientID, rec.Key, rec.Username, now) {
				found = true
				pardoned = append(pardoned, "client "+rec.Key)
			}
		}
	}
	if !found {
		httpError(w, http.StatusNotFound, "no %s record for %q", dim, req.Key)
		return
	}
	st.Log.Info("trust: pardoned through the admin API", "dimension", dim.String(), "key", req.Key, "username", req.Username, "pardoned", pardoned)
	st.SaveTrust()
	writeJSON(w, map[string][]string{"pardoned": pardoned})
}
