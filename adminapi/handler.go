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
	writeJSON(w, h.Clients(time.Now()))
}

// Clients lists the connected clients with their trust state at now:
// what GET /clients answers (an empty list, never nil).
func (h *Handler) Clients(now time.Time) []ClientInfo {
	out := []ClientInfo{}
	sess := h.Sessions
	if sess == nil {
		return out
	}
	for _, c := range sess.Clients() {
		v := trust.Verdict{State: trust.Normal}
		if h.Tracker != nil {
			v = h.Tracker.Verdict(trust.Identity{ClientID: c.ID, Username: c.Username, Addr: c.Addr}, now)
		}
		out = append(out, ClientInfo{ID: c.ID, Username: c.Username, Addr: c.Addr.String(), Listener: c.Listener,
			Protocol: c.ProtocolVersion, CertName: c.CertIdentity, State: v.State.String(), Score: v.Score})
	}
	return out
}

func (h *Handler) kickClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.Kick(id, "admin API") {
		httpError(w, http.StatusNotFound, "no client %q is connected", id)
		return
	}
	writeJSON(w, map[string]string{"kicked": id})
}

// Kick disconnects the client with this ID (DISCONNECT 0x98 for MQTT
// 5) and logs that by asked for it: what POST /clients/{id}/kick does.
// It reports whether such a client was connected.
func (h *Handler) Kick(id, by string) bool {
	sess := h.Sessions
	if sess == nil || sess.Kick(trust.Ban{Kind: trust.BanClientID, Value: id}, reason.AdministrativeAction) == 0 {
		return false
	}
	h.log().Info("client kicked", "client", id, "by", by)
	return true
}

func (h *Handler) listBans(w http.ResponseWriter, r *http.Request) {
	out := h.Bans.List(time.Now())
	if out == nil {
		out = []trust.Ban{} // an empty list is [], not null
	}
	writeJSON(w, out)
}

// BanRequest is a ban as an operator asks for it (the body of
// POST /bans, a dashboard's form).
type BanRequest struct {
	Kind   string `json:"kind"`   // client, username or ip (trust.ParseBanKind)
	Value  string `json:"value"`  // the client ID, username, address or prefix
	For    string `json:"for"`    // a duration ("1h", "30m"); "" or "0": permanent
	Reason string `json:"reason"` // what the ban list says about it
}

// Ban is the ban the request asks for, made at now by by, or an error
// that names the field that is wrong and what it should be.
func (q BanRequest) Ban(now time.Time, by string) (trust.Ban, error) {
	kind, err := trust.ParseBanKind(q.Kind)
	if err != nil {
		return trust.Ban{}, fmt.Errorf("kind: %v", err)
	}
	ban := trust.Ban{Kind: kind, Value: q.Value, At: now, By: by, Reason: q.Reason}
	if q.For != "" && q.For != "0" {
		d, err := time.ParseDuration(q.For)
		if err != nil || d <= 0 {
			return trust.Ban{}, fmt.Errorf("for: %q is not a positive duration (\"1h\", \"30m\")", q.For)
		}
		ban.Until = now.Add(d)
	}
	return ban, nil
}

// Ban adds b to the ban list (which kicks the clients it matches, where
// the program watches the list), saves the list and logs the change:
// what POST /bans does. The error says what is wrong with b.
func (h *Handler) Ban(b trust.Ban) error {
	if h.Bans == nil {
		return fmt.Errorf("this server keeps no ban list")
	}
	if err := h.Bans.Add(b); err != nil {
		return err
	}
	h.saveBans() // on disk before the operator is told it is done
	h.log().Info("ban added", "kind", b.Kind.String(), "value", b.Value, "until", b.Until, "reason", b.Reason, "by", b.By)
	return nil
}

// Lift removes the ban that matches b's kind, value and username,
// saves the list and logs it: what DELETE /bans/… does. It reports
// whether there was one.
func (h *Handler) Lift(b trust.Ban, by string) bool {
	if h.Bans == nil || !h.Bans.Lift(b) {
		return false
	}
	h.saveBans()
	h.log().Info("ban lifted", "kind", b.Kind.String(), "value", b.Value, "username", b.Username, "by", by)
	return true
}

func (h *Handler) addBan(w http.ResponseWriter, r *http.Request) {
	var req BanRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "body: %v", err)
		return
	}
	ban, err := req.Ban(time.Now(), "admin")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := h.Ban(ban); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, ban)
}

func (h *Handler) removeBan(w http.ResponseWriter, r *http.Request) {
	kind, err := trust.ParseBanKind(r.PathValue("kind"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "kind: %v", err)
		return
	}
	if !h.Lift(trust.Ban{Kind: kind, Value: r.PathValue("value"), Username: r.URL.Query().Get("username")}, "admin API") {
		httpError(w, http.StatusNotFound, "no %v ban on %q", kind, r.PathValue("value"))
		return
	}
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
	name := r.PathValue("name")
	disabled, err := h.SwitchPlugin(name, r.PathValue("action"), "admin API")
	if err != nil {
		httpError(w, http.StatusNotFound, "%v", err)
		return
	}
	writeJSON(w, map[string]any{"plugin": name, "disabled": disabled})
}

// SwitchPlugin takes the plugin out (action "disable": its calls allow)
// or puts it back ("enable", which lifts a quarantine too), and logs
// that by did it: what POST /plugins/{name}/{action} does. It returns
// whether the plugin is disabled now; the error names the plugin or
// action that does not exist.
func (h *Handler) SwitchPlugin(name, action, by string) (disabled bool, err error) {
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
			return p.Disabled(), fmt.Errorf("no action %q: disable or enable", action)
		}
		h.log().Info("plugin switched", "plugin", name, "action", action, "by", by)
		return p.Disabled(), nil
	}
	return false, fmt.Errorf("no plugin %q", name)
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
	writeJSON(w, h.Trust(least, time.Now()))
}

// Trust lists the trust records in state least or worse at now: what
// GET /trust answers (an empty list, never nil).
func (h *Handler) Trust(least trust.State, now time.Time) []TrustEntry {
	out := []TrustEntry{}
	if h.Tracker == nil {
		return out
	}
	for _, rec := range h.Tracker.Records(least, now) {
		out = append(out, TrustEntry{Dimension: rec.Dimension.String(), Key: rec.Key, Username: rec.Username,
			State: rec.State.String(), Since: rec.Since, Score: rec.Score, Reason: rec.Reason})
	}
	return out
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
	pardoned := h.Pardon(dim, req.Key, req.Username, "admin API", time.Now())
	if pardoned == nil {
		httpError(w, http.StatusNotFound, "no %s record for %q", dim, req.Key)
		return
	}
	writeJSON(w, map[string][]string{"pardoned": pardoned})
}

// Pardon puts one trust record back to normal at now, saves the records
// and logs that by did it: what POST /trust/pardon does. Pardoning a
// username pardons its punished clients too (a client is in the worst
// state of its client ID and its username). It returns what it
// pardoned ("client x", "username u"), nil when there was no such
// record.
func (h *Handler) Pardon(dim trust.Dimension, key, username, by string, now time.Time) []string {
	if h.Tracker == nil {
		return nil
	}
	found := h.Tracker.Pardon(dim, key, username, now)
	pardoned := []string{dim.String() + " " + key}
	if dim == trust.ByUsername {
		for _, rec := range h.Tracker.Records(trust.Throttled, now) {
			if rec.Dimension == trust.ByClientID && rec.Username == key && h.Tracker.Pardon(trust.ByClientID, rec.Key, rec.Username, now) {
				found = true
				pardoned = append(pardoned, "client "+rec.Key)
			}
		}
	}
	if !found {
		return nil
	}
	h.log().Info("trust: pardoned", "dimension", dim.String(), "key", key, "username", username, "pardoned", pardoned, "by", by)
	h.saveTrust()
	return pardoned
}
