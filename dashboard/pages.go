package dashboard

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// pageNames are the dashboard's pages, in the order of its navigation;
// "" is the overview.
var pageNames = []string{"overview", "clients", "bans", "live", "devices", "plugins"}

func (d *Dashboard) parse() error {
	funcs := template.FuncMap{"human": human, "ago": ago, "when": when, "size": func(n uint64) string { return human(float64(n)) + "B" }}
	d.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return fmt.Errorf("dashboard: page %s: %w", name, err)
		}
		d.pages[name] = t
	}
	return nil
}

func (d *Dashboard) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /dashboard.css", files)
	mux.Handle("GET /dashboard.js", files)
	mux.HandleFunc("GET /{$}", d.page("overview", d.overview))
	mux.HandleFunc("GET /clients", d.page("clients", d.clients))
	mux.HandleFunc("GET /bans", d.page("bans", d.bans))
	mux.HandleFunc("GET /live", d.page("live", func(r *http.Request) any { return nil }))
	mux.HandleFunc("GET /devices", d.page("devices", d.devices))
	mux.HandleFunc("GET /plugins", d.page("plugins", d.plugins))
	mux.HandleFunc("GET /events", d.events)
	mux.HandleFunc("POST /kick", d.kick)
	mux.HandleFunc("POST /pardon", d.pardon)
	mux.HandleFunc("POST /ban", d.ban)
	mux.HandleFunc("POST /lift", d.lift)
	mux.HandleFunc("POST /plugin", d.plugin)
	d.mux = mux
}

// view is what the layout needs around a page's own data.
type view struct {
	Page  string
	Pages []string
	CSRF  string
	Done  string // what the last action did
	Error string // or why it could not
	Mode  string
	Now   time.Time
	Data  any
}

// page serves one page: the whole of it, or only its <main> for the
// script's refresh (?part=main).
func (d *Dashboard) page(name string, data func(*http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := view{Page: name, Pages: pageNames, CSRF: d.csrfToken(w, r), Mode: d.cfg.Admin.Guard.Mode().String(), Now: time.Now(), Data: data(r)}
		// What the last action said, if the dashboard said it: a link
		// cannot make the page say something else.
		q := r.URL.Query()
		if msg := q.Get("done"); msg != "" && hmac.Equal([]byte(q.Get("sig")), []byte(d.sign("done", msg))) {
			v.Done = msg
		}
		if msg := q.Get("error"); msg != "" && hmac.Equal([]byte(q.Get("sig")), []byte(d.sign("error", msg))) {
			v.Error = msg
		}
		tmpl := "layout"
		if r.URL.Query().Get("part") == "main" {
			tmpl = "main"
		}
		var buf bytes.Buffer
		if err := d.pages[name].ExecuteTemplate(&buf, tmpl, v); err != nil {
			d.cfg.Log.Error("dashboard: rendering a page", "page", name, "error", err)
			http.Error(w, "the page could not be rendered; the log says why", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	}
}

// after answers an action: back to the page it came from (one of the
// dashboard's own, never a URL the form names), saying what happened,
// signed so that only the dashboard can make a page say it.
func (d *Dashboard) after(w http.ResponseWriter, r *http.Request, done string, err error) {
	back := r.PostFormValue("back")
	if !slices.Contains(pageNames, back) || back == "overview" {
		back = ""
	}
	q := url.Values{}
	if err != nil {
		q.Set("error", err.Error())
		q.Set("sig", d.sign("error", err.Error()))
	} else {
		q.Set("done", done)
		q.Set("sig", d.sign("done", done))
	}
	if f := r.PostFormValue("q"); f != "" {
		q.Set("q", f)
	}
	w.Header().Set("Location", cookiePath(r)+back+"?"+q.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

type overviewData struct {
	Clients              int
	ClientsChart         template.HTML
	DecisionsChart       template.HTML
	Allowed, Refused     float64
	Verdicts             []verdictRate // the refusals' verdicts, per second
	Components           []componentRow
	Fleet                *FleetStatus
	Plugins, Quarantined int
	Window               time.Duration
	Punished             []stateCount // clients, usernames and addresses by trust state
	Bans                 int
	Latest               []Event // the most recent refusals
	Watching             bool    // a Feed is set
}

type stateCount struct {
	State string
	N     int
}

// latestOnOverview is how many of the latest refusals the overview
// lists (the live view has them all).
const latestOnOverview = 12

type verdictRate struct {
	Verdict string
	Rate    float64
}

type componentRow struct {
	Name  string
	Total uint64
	Rate  float64
	Chart template.HTML
}

// chartComponents are the overview's refusal charts, one each; the
// other components share the "other" chart.
var chartComponents = []mqttguard.Component{mqttguard.ByACL, mqttguard.ByRateLimit, mqttguard.ByTrust, mqttguard.ByAnomaly, mqttguard.ByPlugin}

func (d *Dashboard) overview(r *http.Request) any {
	ss := d.hist.all()
	clients := make([]float64, len(ss))
	for i, s := range ss {
		clients[i] = float64(s.clients)
	}
	allowed := series{Name: "allowed", Class: "allow", Values: rates(ss, func(s sample) uint64 { return s.verdicts[mqttguard.Allow] })}
	refused := series{Name: "refused", Class: "refuse", Values: rates(ss, func(s sample) uint64 {
		return s.verdicts[mqttguard.Reject] + s.verdicts[mqttguard.Drop] + s.verdicts[mqttguard.Disconnect]
	})}
	o := overviewData{Clients: d.connected(), ClientsChart: chart(240, 48, series{Class: "clients", Values: clients}),
		DecisionsChart: chart(480, 96, allowed, refused), Allowed: allowed.Last(), Refused: refused.Last(),
		Window: time.Duration(d.cfg.Keep) * d.cfg.SampleEvery}
	for _, v := range []mqttguard.Verdict{mqttguard.Reject, mqttguard.Drop, mqttguard.Disconnect} {
		r := rates(ss, func(s sample) uint64 { return s.verdicts[v] })
		o.Verdicts = append(o.Verdicts, verdictRate{Verdict: v.String(), Rate: series{Values: r}.Last()})
	}
	st := d.cfg.Admin.Guard.Stats()
	charted := map[mqttguard.Component]bool{}
	for _, c := range chartComponents {
		charted[c] = true
		v := rates(ss, func(s sample) uint64 { return s.by[c] })
		o.Components = append(o.Components, componentRow{Name: c.String(), Total: st.By(c), Rate: series{Values: v}.Last(),
			Chart: chart(240, 40, series{Class: "refuse", Values: v})})
	}
	other := func(s sample) uint64 {
		var n uint64
		for c, v := range s.by {
			if !charted[mqttguard.Component(c)] {
				n += v
			}
		}
		return n
	}
	v := rates(ss, other)
	var total uint64
	for _, c := range mqttguard.Components() {
		if !charted[c] {
			total += st.By(c)
		}
	}
	o.Components = append(o.Components, componentRow{Name: "other (ban, password, connection rate, packets, …)", Total: total,
		Rate: series{Values: v}.Last(), Chart: chart(240, 40, series{Class: "refuse", Values: v})})
	if d.cfg.Fleet != nil {
		f := d.cfg.Fleet()
		o.Fleet = &f
	}
	counts := map[string]int{}
	for _, e := range d.cfg.Admin.Trust(trust.Throttled, time.Now()) {
		counts[e.State]++
	}
	for _, st := range []trust.State{trust.Throttled, trust.WriteDisabled, trust.ShadowBanned, trust.Disconnected} {
		o.Punished = append(o.Punished, stateCount{State: st.String(), N: counts[st.String()]})
	}
	if b := d.cfg.Admin.Bans; b != nil {
		o.Bans = len(b.List(time.Now()))
	}
	if f := d.cfg.Feed; f != nil {
		o.Watching = true
		o.Latest = f.Latest(latestOnOverview, nil)
	}
	for _, p := range d.cfg.Admin.Guard.Plugins() {
		o.Plugins++
		if p.Stats().QuarantinedUntil.After(time.Now()) {
			o.Quarantined++
		}
	}
	return o
}

type clientRow struct {
	ID, Username, Addr, Listener string
	Connected                    bool
	State                        string
	Score                        int
	Since                        time.Time
	Reason                       string // the trust record's last violation
	LastRefusal                  *Event
}

type clientsData struct {
	Query    string
	Clients  []clientRow
	Accounts []adminapi.TrustEntry // punished usernames and addresses
	Total    int                   // before the filter
}

// maxRows bounds a table: a page is for looking, the admin API for
// exporting.
const maxRows = 500

// clients lists the connected clients and the punished client IDs that
// are not connected, the punished first.
func (d *Dashboard) clients(r *http.Request) any {
	now := time.Now()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	a := d.cfg.Admin
	records := map[string]adminapi.TrustEntry{}
	var accounts []adminapi.TrustEntry
	for _, e := range a.Trust(trust.Throttled, now) {
		if e.Dimension == trust.ByClientID.String() {
			records[e.Key] = e
		} else {
			accounts = append(accounts, e)
		}
	}
	var rows []clientRow
	seen := map[string]bool{}
	for _, c := range a.Clients(now) {
		row := clientRow{ID: c.ID, Username: c.Username, Addr: c.Addr, Listener: c.Listener, Connected: true, State: c.State, Score: c.Score}
		if e, ok := records[c.ID]; ok {
			row.Since, row.Reason = e.Since, e.Reason
		}
		seen[c.ID] = true
		rows = append(rows, row)
	}
	for id, e := range records {
		if !seen[id] {
			rows = append(rows, clientRow{ID: id, Username: e.Username, State: e.State, Score: e.Score, Since: e.Since, Reason: e.Reason})
		}
	}
	out := clientsData{Query: q, Total: len(rows), Accounts: accounts}
	for _, row := range rows {
		if q == "" || matches(q, row.ID, row.Username, row.Addr, row.State, row.Listener) {
			out.Clients = append(out.Clients, row)
		}
	}
	rank := func(s string) int { st, _ := trust.ParseState(s); return int(st) }
	slices.SortFunc(out.Clients, func(x, y clientRow) int {
		return cmp.Or(cmp.Compare(rank(y.State), rank(x.State)), cmp.Compare(x.ID, y.ID))
	})
	out.Clients = out.Clients[:min(len(out.Clients), maxRows)]
	if f := d.cfg.Feed; f != nil && len(out.Clients) > 0 {
		ids := map[string]bool{}
		for _, c := range out.Clients {
			ids[c.ID] = true
		}
		last := f.lastOf(ids)
		for i := range out.Clients {
			if e, ok := last[out.Clients[i].ID]; ok {
				out.Clients[i].LastRefusal = &e
			}
		}
	}
	return out
}

// matches reports whether any of the fields contains q, ignoring case.
func matches(q string, fields ...string) bool {
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

type bansData struct {
	Bans []trust.Ban
	Form adminapi.BanRequest // the form, filled from the query (a client row's "ban…")
	Kept bool                // a ban list is kept
}

func (d *Dashboard) bans(r *http.Request) any {
	out := bansData{Kept: d.cfg.Admin.Bans != nil, Form: adminapi.BanRequest{Kind: r.URL.Query().Get("kind"),
		Value: r.URL.Query().Get("value"), For: "1h"}}
	if out.Form.Kind == "" {
		out.Form.Kind = "client"
	}
	if d.cfg.Admin.Bans != nil {
		out.Bans = d.cfg.Admin.Bans.List(time.Now())
		out.Bans = out.Bans[:min(len(out.Bans), maxRows)]
	}
	return out
}

type devicesData struct {
	Profiles  []profileRow
	Anomalous []Anomalous
	Window    time.Duration
	Watching  bool // a Feed is set
}

type profileRow struct {
	ClientID, Username, TopicFilter string
	Interval, Tolerance             time.Duration
}

// anomalousFor is how long a device stays on the devices page after its
// last anomaly.
const anomalousFor = 10 * time.Minute

func (d *Dashboard) devices(r *http.Request) any {
	out := devicesData{Window: anomalousFor, Watching: d.cfg.Feed != nil}
	for _, p := range d.cfg.Profiles {
		out.Profiles = append(out.Profiles, profileRow{ClientID: p.ClientID, Username: p.Username, TopicFilter: p.TopicFilter,
			Interval: p.Profile.Interval, Tolerance: p.Profile.Tolerance})
	}
	if d.cfg.Feed != nil {
		out.Anomalous = d.cfg.Feed.Anomalous(time.Now().Add(-anomalousFor))
	}
	return out
}

type pluginRow struct {
	Name     string
	Disabled bool
	Stats    wasmguard.Stats
	Breaker  string
}

func (d *Dashboard) plugins(r *http.Request) any {
	var out []pluginRow
	now := time.Now()
	for _, p := range d.cfg.Admin.Guard.Plugins() {
		st := p.Stats()
		row := pluginRow{Name: p.Name(), Disabled: p.Disabled(), Stats: st, Breaker: "closed"}
		if st.QuarantinedUntil.After(now) {
			row.Breaker = "open until " + st.QuarantinedUntil.Format("15:04:05")
		}
		out = append(out, row)
	}
	return out
}

func (d *Dashboard) kick(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("client")
	if !d.cfg.Admin.Kick(id, "dashboard") {
		d.after(w, r, "", fmt.Errorf("no client %q is connected", id))
		return
	}
	d.after(w, r, fmt.Sprintf("kicked %q", id), nil)
}

func (d *Dashboard) pardon(w http.ResponseWriter, r *http.Request) {
	dim, err := trust.ParseDimension(r.PostFormValue("dimension"))
	if err != nil {
		d.after(w, r, "", fmt.Errorf("dimension: %v", err))
		return
	}
	key := r.PostFormValue("key")
	done := d.cfg.Admin.Pardon(dim, key, r.PostFormValue("username"), "dashboard", time.Now())
	if done == nil {
		d.after(w, r, "", fmt.Errorf("no %s record for %q: nothing to pardon", dim, key))
		return
	}
	d.after(w, r, "pardoned "+strings.Join(done, ", "), nil)
}

func (d *Dashboard) ban(w http.ResponseWriter, r *http.Request) {
	q := adminapi.BanRequest{Kind: r.PostFormValue("kind"), Value: r.PostFormValue("value"), For: r.PostFormValue("for"), Reason: r.PostFormValue("reason")}
	b, err := q.Ban(time.Now(), "dashboard")
	if err == nil {
		err = d.cfg.Admin.Ban(b)
	}
	if err != nil {
		d.after(w, r, "", err)
		return
	}
	until := "for good"
	if !b.Until.IsZero() {
		until = "until " + b.Until.Format("15:04:05")
	}
	d.after(w, r, fmt.Sprintf("banned %s %q %s", b.Kind, b.Value, until), nil)
}

func (d *Dashboard) lift(w http.ResponseWriter, r *http.Request) {
	kind, err := trust.ParseBanKind(r.PostFormValue("kind"))
	if err != nil {
		d.after(w, r, "", fmt.Errorf("kind: %v", err))
		return
	}
	b := trust.Ban{Kind: kind, Value: r.PostFormValue("value"), Username: r.PostFormValue("username")}
	if !d.cfg.Admin.Lift(b, "dashboard") {
		d.after(w, r, "", fmt.Errorf("no %s ban on %q", kind, b.Value))
		return
	}
	d.after(w, r, fmt.Sprintf("lifted the %s ban on %q", kind, b.Value), nil)
}

func (d *Dashboard) plugin(w http.ResponseWriter, r *http.Request) {
	name, action := r.PostFormValue("name"), r.PostFormValue("action")
	if _, err := d.cfg.Admin.SwitchPlugin(name, action, "dashboard"); err != nil {
		d.after(w, r, "", err)
		return
	}
	d.after(w, r, fmt.Sprintf("plugin %s: %sd", name, action), nil)
}

// ago says how long before now t was, briefly.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t).Round(time.Second)
	if d < time.Second {
		return "now"
	}
	return d.String() + " ago"
}

// when is a time of day, or a date and time when it is not today.
func when(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if y1, m1, d1 := now.Date(); true {
		if y2, m2, d2 := t.Date(); y1 == y2 && m1 == m2 && d1 == d2 {
			return t.Format("15:04:05")
		}
	}
	return t.Format("2006-01-02 15:04")
}
