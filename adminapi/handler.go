package adminapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Sessions is what a broker tells the admin API about its connected
// clients.
type Sessions interface {
	// Clients lists the connected clients.
	Clients() []mqttguard.Client
	// Kick disconnects the connected clients the ban matches
	// (trust.Ban.Matches), with code: a DISCONNECT with it for MQTT 5, a
	// plain close for 3.1.1. It says how many there were.
	Kick(match trust.Ban, code reason.Code) int
}

// Handler serves the admin API. Guard is required; every other field is
// optional, and the endpoints that need a nil one are not served (404),
// but for GET /clients, which lists no one. Set the fields before the
// first request.
type Handler struct {
	Guard    *mqttguard.Guard
	Bans     *trust.Bans
	Tracker  *trust.Tracker
	Sessions Sessions
	// Metrics serves GET /metrics (a guardmetrics.Collector through
	// promhttp, say).
	Metrics http.Handler
	// Reload does what SIGHUP does and says what it did (POST /reload).
	Reload func() (ReloadResult, error)
	// SetMode puts a mode in force (POST /mode/{mode}); nil:
	// Guard.SetMode. A program that keeps its configuration in memory
	// records the change there too.
	SetMode func(trust.Mode)
	// SaveBans and SaveTrust are called after the API changed the ban
	// list or a trust record and before it answers, so that what the
	// operator is told is done is on disk.
	SaveBans, SaveTrust func()
	// Log hears what the API changed (nil: nowhere).
	Log *slog.Logger

	once sync.Once
	mux  *http.ServeMux
}

// ServeHTTP serves one request of the admin API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.routes)
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	if h.Metrics != nil {
		mux.Handle("GET /metrics", h.Metrics)
	}
	mux.HandleFunc("GET /clients", h.listClients)
	mux.HandleFunc("POST /clients/{id}/kick", h.kickClient)
	if h.Bans != nil {
		mux.HandleFunc("GET /bans", h.listBans)
		mux.HandleFunc("POST /bans", h.addBan)
		mux.HandleFunc("DELETE /bans/{kind}/{value...}", h.removeBan)
	}
	if h.Tracker != nil {
		mux.HandleFunc("GET /trust", h.listTrust)
		mux.HandleFunc("POST /trust/pardon", h.pardon)
	}
	mux.HandleFunc("GET /plugins", h.listPlugins)
	mux.HandleFunc("POST /plugins/{name}/{action}", h.switchPlugin)
	mux.HandleFunc("POST /mode/{mode}", h.setMode)
	if h.Reload != nil {
		mux.HandleFunc("POST /reload", h.reload)
	}
	h.mux = mux
}

// RequireToken guards h with a bearer token: every request but
// GET /healthz must carry "Authorization: Bearer <token>" (compared in
// constant time), or is answered 401.
func RequireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mqttguard"`)
			httpError(w, http.StatusUnauthorized, "a bearer token is required (the contents of admin.token_file)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Handler) saveBans() {
	if h.SaveBans != nil {
		h.SaveBans()
	}
}

func (h *Handler) saveTrust() {
	if h.SaveTrust != nil {
		h.SaveTrust()
	}
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

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	out := []ClientInfo{}
	sess := h.Sessions
	if sess == nil {
		writeJSON(w, out)
		return
	}
	for _, c := range sess.Clients() {
		v := trust.Verdict{State: trust.Normal}
		if h.Tracker != nil {
			v = h.Tracker.Verdict(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}, now)
		}
		out = append(out, ClientInfo{ID: c.ID, Username: c.Username, Addr: c.Addr.String(), Listener: c.Listener,
			Protocol: c.ProtocolVersion, CertName: c.CertIdentity, State: v.State.String(), Score: v.Score})
	}
	writeJSON(w, out)
}

func (h *Handler) kickClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sess := h.Sessions
	if sess == nil || sess.Kick(trust.Ban{Kind: trust.BanClientID, Value: id}, reason.AdministrativeAction) == 0 {
		httpError(w, http.StatusNotFound, "no client %q is connected", id)
		return
	}
	writeJSON(w, map[string]string{"kicked": id})
}

func (h *Handler) listBans(w http.ResponseWriter, r *http.Request) {
	out := h.Bans.List(time.Now())
	if out == nil {
		out = []trust.Ban{} // an empty list is [], not null
	}
	writeJSON(w, out)
}

func (h *Handler) addBan(w http.ResponseWriter, r *http.Request) {
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
	if err := h.Bans.Add(ban); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	h.saveBans() // on disk before the operator is told it is done
	h.log().Info("ban added through the admin API", "kind", ban.Kind.String(), "value", ban.Value, "until", ban.Until, "reason", ban.Reason)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, ban)
}

func (h *Handler) removeBan(w http.ResponseWriter, r *http.Request) {
	kind, err := trust.ParseBanKind(r.PathValue("kind"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "kind: %v", err)
		return
	}
	if !h.Bans.Lift(trust.Ban{Kind: kind, Value: r.PathValue("value"), Username: r.URL.Query().Get("username")}) {
		httpError(w, http.StatusNotFound, "no %v ban on %q", kind, r.PathValue("value"))
		return
	}
	h.saveBans()
	h.log().Info("ban lifted through the admin API", "kind", kind.String(), "value", r.PathValue("value"))
	writeJSON(w, map[string]string{"lifted": kind.String() + " " + r.PathValue("value")})
}

type pluginInfo struct {
	Name  string          `json:"name"`
	Stats wasmguard.Stats `json:"stats"`
}

func (h *Handler) listPlugins(w http.ResponseWriter, r *http.Request) {
	out := []pluginInfo{}
	for _, p := range h.Guard.Plugins() {
		out = append(out, pluginInfo{Name: p.Name(), Stats: p.Stats()})
	}
	writeJSON(w, out)
}

func (h *Handler) switchPlugin(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	for _, p := range h.Guard.Plugins() {
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

func (h *Handler) setMode(w http.ResponseWriter, r *http.Request) {
	m, err := trust.ParseMode(r.PathValue("mode"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "unknown mode %q: want observe, light or full", r.PathValue("mode"))
		return
	}
	if h.SetMode != nil {
		h.SetMode(m)
	} else {
		h.Guard.SetMode(m)
	}
	h.log().Info("security mode changed by the admin API", "mode", m.String())
	writeJSON(w, map[string]string{"mode": m.String()})
}

// ReloadResult is what POST /reload answers.
type ReloadResult struct {
	Reloaded      []string `json:"reloaded"`       // files read again
	Applied       []string `json:"applied"`        // settings now in force
	RestartNeeded []string `json:"restart_needed"` // changed settings that wait for a restart
}

func (h *Handler) reload(w http.ResponseWriter, r *http.Request) {
	res, err := h.Reload()
	if err != nil {
		httpError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	for _, l := range []*[]string{&res.Reloaded, &res.Applied, &res.RestartNeeded} {
		if *l == nil {
			*l = []string{} // an empty list is [], not null
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

func (h *Handler) listTrust(w http.ResponseWriter, r *http.Request) {
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
	for _, rec := range h.Tracker.Records(least, time.Now()) {
		out = append(out, TrustEntry{Dimension: rec.Dimension.String(), Key: rec.Key, Username: rec.Username,
			State: rec.State.String(), Since: rec.Since, Score: rec.Score, Reason: rec.Reason})
	}
	writeJSON(w, out)
}

// pardon puts one record back to normal, at once, and logs who was
// pardoned (the Tracker logs the transition; this says it was the API).
func (h *Handler) pardon(w http.ResponseWriter, r *http.Request) {
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
	found := h.Tracker.Pardon(dim, req.Key, req.Username, now)
	pardoned := []string{dim.String() + " " + req.Key}
	if dim == trust.ByUsername {
		// A client is in the worst state of its client ID and its
		// username: pardoning an account pardons its punished clients.
		for _, rec := range h.Tracker.Records(trust.Throttled, now) {
			if rec.Dimension == trust.ByClientID && rec.Username == req.Key && h.Tracker.Pardon(trust.ByClientID, rec.Key, rec.Username, now) {
				found = true
				pardoned = append(pardoned, "client "+rec.Key)
			}
		}
	}
	if !found {
		httpError(w, http.StatusNotFound, "no %s record for %q", dim, req.Key)
		return
	}
	h.log().Info("trust: pardoned through the admin API", "dimension", dim.String(), "key", req.Key, "username", req.Username, "pardoned", pardoned)
	h.saveTrust()
	writeJSON(w, map[string][]string{"pardoned": pardoned})
}
