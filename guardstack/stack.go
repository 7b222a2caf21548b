package guardstack

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/internal/loglimit"
	"github.com/mqttguard/mqttguard/jwtauth"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/redisstore"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Sessions is what a program tells the stack about its connected
// clients, so that bans, trust escalations and the admin API reach them:
// the admin API's interface.
type Sessions = adminapi.Sessions

// Stack is the Guard and its components, built from a guardconf.Config.
type Stack struct {
	// Cfg is the configuration in force. Reload updates the settings it
	// puts in force, in place and under its lock; the others keep their
	// values from the start until a restart.
	Cfg       *guardconf.Config
	Log       *slog.Logger
	Guard     *mqttguard.Guard
	ACL       *acl.Holder
	Passwords *passwd.Holder
	// Tokens verifies JWTs ([security.jwt]); nil when it is off.
	Tokens    *jwtauth.Authenticator
	Bans      *trust.Bans
	Tracker   *trust.Tracker
	Flapping  *anomaly.FlappingDetector
	Intervals *anomaly.IntervalDetector
	TLS       *tlsconf.Reloader // nil without TLS
	// Redis and Fleet are fleet mode ([cluster] redis_url), nil without.
	Redis *redisstore.Client
	Fleet *redisstore.Fleet
	// Feed keeps the Guard's recent refusals for the dashboard's live
	// view; nil when admin.listen is empty or admin.dashboard false.
	Feed *dashboard.Feed
	// Kicks counts clients the program disconnected (for the metrics),
	// unless it counts them itself (SetKicks).
	Kicks   atomic.Uint64
	kicksFn atomic.Pointer[func() uint64]

	sessions    atomic.Pointer[Sessions]
	bansChanged chan struct{} // onBan → banSaver
	rejected    rejectCounts
	pluginsMu   sync.Mutex // serialises plugin reloads
	reloadMu    sync.Mutex // serialises reloads and writes to Cfg

	addrMu    sync.Mutex
	addrs     map[string]string   // listener → address
	listeners []*packets.Listener // for their pending counts

	admin  *http.Server
	adminL net.Listener
	dash   *dashboard.Dashboard

	stop    context.CancelFunc
	workers sync.WaitGroup

	// transitions and perConn bound the trust transition log and the
	// lines written per connection (OnReject); the sweeper writes their
	// summaries.
	transitions, perConn *loglimit.Handler
}

// transitionLimits bound the trust tracker's log: 10 lines a minute per
// client ID, username or address; for each of the three, 200 in all plus
// the first line of up to 200 more; one "N similar records suppressed"
// line a minute. Invented client IDs spend the client IDs' budget, so an
// address's escalation still shows.
var transitionLimits = loglimit.Config{Keys: []string{"ip", "client", "username"}, PerKey: 10, Total: 200, NewKeys: 200}

// perConnLimits bound what the stack logs per connection (the packet
// validator's refusals), by address: 10 lines a minute per address, 100
// in all plus the first of up to 100 more addresses, and a summary.
var perConnLimits = loglimit.Config{Keys: []string{"addr"}, PerKey: 10, Total: 100, NewKeys: 100}

// An Option adjusts the Guard's configuration after the file's settings
// are in it and before the Guard is made: what a host knows and the file
// cannot say (mosquitto's plugin sets CannotDelay).
type Option func(*mqttguard.Config)

// New builds every component the configuration asks for and starts the
// background work (sweeping, TLS file watching). Close stops it.
func New(cfg *guardconf.Config, log *slog.Logger, opts ...Option) (_ *Stack, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &Stack{Cfg: cfg, Log: log, Bans: &trust.Bans{}, addrs: map[string]string{}, bansChanged: make(chan struct{}, 1)}
	st.perConn = loglimit.New(log.Handler(), perConnLimits)
	ctx, cancel := context.WithCancel(context.Background())
	st.stop = cancel
	defer func() {
		if err != nil {
			st.Close(context.Background())
		}
	}()
	s := &cfg.Security
	mode, _ := trust.ParseMode(s.Mode)
	now := time.Now()

	gcfg := mqttguard.Config{Mode: mode, AllowAnonymous: s.AllowAnonymous, UseIdentityAsUsername: s.UseIdentityAsUsername,
		ShadowBan: s.EnableShadowBan, BanAddresses: s.EnableIPBan, FilterOnDelivery: s.SubscribeCheck == "delivery", Logger: log}
	gcfg.CertIdentity, _ = tlsconf.ParseIdentitySource(s.CertIdentity)
	if s.UseIdentityAsUsername {
		// The certificate alone admits a client, as mosquitto's
		// use_identity_as_username does; a client without one gives a
		// password.
		gcfg.Authenticators = append(gcfg.Authenticators, tlsconf.Authenticator{Identity: gcfg.CertIdentity})
	}
	if s.JWT.Enable {
		// Before the password file: a token is decided by its signature,
		// never hashed as a password guess.
		if st.Tokens, err = newTokens(cfg, log); err != nil {
			return nil, err
		}
		gcfg.Authenticators = append(gcfg.Authenticators, st.Tokens)
		gcfg.DropWillOnExpiry = s.JWT.DropWillOnExpiry
	}
	if s.PasswordFile != "" {
		f, err := passwd.LoadFile(cfg.Path(s.PasswordFile))
		if err != nil {
			return nil, err
		}
		st.Passwords = passwd.NewHolder(f)
		gcfg.Authenticators = append(gcfg.Authenticators, st.Passwords)
	}
	if s.ACLFile != "" {
		p, err := acl.LoadFile(cfg.Path(s.ACLFile))
		if err != nil {
			return nil, err
		}
		st.ACL = acl.NewHolder(p)
		gcfg.ACL = st.ACL
	}
	if s.BanFile != "" {
		if err := st.Bans.LoadFile(cfg.Path(s.BanFile), now); err != nil {
			log.Error("ban file: some lines were not loaded; the others are in force", "error", err)
		}
	}
	st.Bans.WatchAdded(st.onBan)
	gcfg.Bans = st.Bans
	if cfg.Admin.Listen != "" && cfg.Admin.DashboardOn() {
		// Only when StartAdmin will serve a live view to read it.
		st.Feed = dashboard.NewFeed(0)
		gcfg.OnRefusal = st.Feed.Add
	}

	tcfg := trust.Preset(mode)
	tcfg.UsernameFactor, tcfg.IPFactor = s.Trust.UsernameFactor, s.Trust.IPFactor
	if tcfg.UsernameFactor == 0 {
		tcfg.UsernameFactor = -1 // the file's 0 is off; the package's zero is its default
	}
	// Trust transitions are logged per client ID, username and address,
	// and an attacker invents client IDs at will: the lines go through
	// a bound per key and in total, with a summary of what was dropped
	// (see transitionLimits).
	st.transitions = loglimit.New(log.Handler(), transitionLimits)
	tcfg.Logger = slog.New(st.transitions)
	tcfg.OnTransition = st.onTransition
	if st.Tracker, err = trust.New(tcfg); err != nil {
		return nil, err
	}
	gcfg.Trust = st.Tracker
	st.loadTrust(now)
	if gcfg.AuthGate, err = trust.NewAuthGate(s.AuthFailures.AuthGate()); err != nil {
		return nil, cfg.Errorf("security.auth_failures", "%v", err)
	}
	gcfg.MaxSubscriptions, gcfg.MaxSubscriptionBytes = s.MaxSubscriptions, s.MaxSubscriptionBytes
	f := s.Flapping
	st.Flapping = anomaly.NewFlappingDetector(anomaly.FlappingConfig{MaxConnects: f.MaxConnects, Window: f.Window, BanFor: f.BanFor})
	gcfg.Flapping = st.Flapping
	if len(s.Devices) > 0 {
		res, err := resolver(cfg)
		if err != nil {
			return nil, err
		}
		st.Intervals = anomaly.NewIntervalDetector(anomaly.Config{Resolver: res})
		gcfg.Intervals = st.Intervals
	}
	if err := st.joinFleet(&gcfg); err != nil {
		return nil, err
	}
	var fleet mqttguard.RateLimits
	if st.Redis != nil {
		fleet.Store = st.Redis
		fleet.WhenStoreDown, _ = ratelimit.ParseDownPolicy(cmp.Or(cfg.Cluster.WhenDown, "local"))
	}
	gcfg.RateLimits = rateLimits(cfg, fleet)
	if gcfg.Plugins, err = st.loadPlugins(ctx, cfg); err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&gcfg)
	}
	if st.Guard, err = mqttguard.New(gcfg); err != nil {
		for _, p := range gcfg.Plugins {
			p.Close(ctx)
		}
		return nil, err
	}

	m := cfg.MQTT
	if m.EnableTLS && m.TLSPort >= 0 {
		ca, _ := cfg.ClientAuth()
		var crls []string
		for _, p := range m.TLSCRLPaths {
			crls = append(crls, cfg.Path(p))
		}
		st.TLS, err = tlsconf.NewReloader(tlsconf.Config{CertFile: cfg.Path(m.TLSCertPath), KeyFile: cfg.Path(m.TLSKeyPath),
			ClientCAFile: cfg.Path(m.TLSCACertPath), ClientAuth: ca, CRLFiles: crls, Identity: gcfg.CertIdentity, Logger: log})
		if err != nil {
			return nil, err
		}
		st.workers.Add(1)
		go func() {
			defer st.workers.Done()
			st.TLS.Watch(ctx, 10*time.Second)
		}()
	}
	st.workers.Add(2)
	go st.sweeper(ctx)
	go st.banSaver(ctx)
	if st.Fleet != nil {
		st.Fleet.Start()
		// Start with the fleet's bans if Redis answers soon; serve from
		// the ban file if it does not (the Fleet keeps trying).
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := st.Fleet.WaitSynced(wctx); err != nil {
			log.Warn("fleet: serving before the first sync with Redis", "error", err)
		}
		cancel()
	}
	return st, nil
}

// rateLimits are the Guard's limits from [security.rate_limit], with
// the store settings of fleet (fixed when the Guard is built).
func rateLimits(cfg *guardconf.Config, fleet mqttguard.RateLimits) mqttguard.RateLimits {
	r := cfg.Security.RateLimit
	rl := fleet
	rl.ConnectionsPerAddr = mqttguard.Rate{PerSecond: r.IPConnectionsPerSecond}
	rl.ConnectionsPerListener = mqttguard.Rate{}
	rl.MessagesPerClient = mqttguard.Rate{PerSecond: r.ClientMessagesPerSecond, Burst: int(r.ClientBurstCapacity)}
	rl.BytesPerClient = mqttguard.Rate{PerSecond: r.ClientBytesPerSecond, Burst: int(r.ClientBytesPerSecond)}
	rl.MessagesPerUser = mqttguard.Rate{PerSecond: r.UserTokensPerSecond, Burst: int(r.UserBurstCapacity)}
	rl.MessagesPerTopic = mqttguard.Rate{PerSecond: r.ChannelMessagesPerSecond, Burst: int(r.ChannelBurstCapacity)}
	rl.MessagesTotal = mqttguard.Rate{PerSecond: r.TotalMessagesPerSecond}
	return rl
}

// resolver is the push-interval profiles of [[security.devices]].
func resolver(cfg *guardconf.Config) (anomaly.Resolver, error) {
	rules := profileRules(cfg)
	if len(rules) == 0 {
		return nil, nil
	}
	res, err := anomaly.NewResolver(rules)
	if err != nil {
		return nil, cfg.Errorf("security.devices", "%v", err)
	}
	return res, nil
}

// profileRules are [[security.devices]] as the anomaly package reads
// them.
func profileRules(cfg *guardconf.Config) []anomaly.ProfileRule {
	var rules []anomaly.ProfileRule
	for _, d := range cfg.Security.Devices {
		rules = append(rules, anomaly.ProfileRule{ClientID: d.ClientID, Username: d.Username, TopicFilter: d.Topic,
			Profile: anomaly.Profile{Interval: d.Interval, Tolerance: d.Tolerance}})
	}
	return rules
}

// joinFleet connects the bans and the trust tracker to Redis when
// [cluster] redis_url is set. Nothing is started yet: Start waits until
// the Guard exists.
func (st *Stack) joinFleet(gcfg *mqttguard.Config) error {
	cl := st.Cfg.Cluster
	if cl.RedisURL == "" {
		return nil
	}
	var err error
	st.Redis, err = redisstore.New(redisstore.Options{URL: cl.RedisURL, Prefix: cl.Prefix, Node: cl.Node, Logger: st.Log})
	if err != nil {
		return st.Cfg.Errorf("cluster.redis_url", "%v", err)
	}
	st.Fleet, err = st.Redis.NewFleet(redisstore.FleetConfig{Bans: st.Bans, Trust: st.Tracker, SeedBans: cl.SeedBans})
	return err
}

// SetSessions tells the stack where the connected clients are.
func (st *Stack) SetSessions(s Sessions) { st.sessions.Store(&s) }

// SetKicks makes the metrics count kicks with n (a mochiguard.Hook's
// Kicks) instead of Stack.Kicks.
func (st *Stack) SetKicks(n func() uint64) { st.kicksFn.Store(&n) }

func (st *Stack) kicks() uint64 {
	if f := st.kicksFn.Load(); f != nil {
		return (*f)()
	}
	return st.Kicks.Load()
}

func (st *Stack) sessionsOrNil() Sessions {
	if p := st.sessions.Load(); p != nil {
		return *p
	}
	return nil
}

// PacketLimits are the packet validator's limits from the configuration.
func (st *Stack) PacketLimits() packets.Limits {
	lim := packets.DefaultLimits()
	if st.Cfg.MQTT.MaxPacketSize > 0 {
		lim.MaxPacketSize = st.Cfg.MQTT.MaxPacketSize
	}
	if st.Cfg.MQTT.MaxConnectSize > 0 {
		lim.MaxConnectSize = st.Cfg.MQTT.MaxConnectSize
	}
	return lim
}

// Listener is one of the configured MQTT listeners, packet validator
// included.
type Listener struct {
	ID string // "tcp" or "tls"
	net.Listener
}

// Listen opens the configured MQTT listeners (plain and TLS), each
// wrapped in the packet validator. topicAliasMaximum is what the server
// behind will advertise to MQTT 5 clients.
func (st *Stack) Listen(topicAliasMaximum uint16) ([]Listener, error) {
	var out []Listener
	m := st.Cfg.MQTT
	open := func(id string, port int, tc *tls.Config) error {
		addr := net.JoinHostPort(m.Bind, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "address already in use") {
				hint = " (is another broker, mosquitto say, running? stop it or change mqtt.port / mqtt.tls_port)"
			}
			return fmt.Errorf("listener %s: %w%s", id, err, hint)
		}
		st.setAddr(id, ln.Addr().String())
		var inner net.Listener = ln
		if tc != nil {
			inner = tls.NewListener(ln, tc)
		}
		pl := packets.Listen(inner, packets.ListenerConfig{
			Limits:               st.PacketLimits(),
			ConnectTimeout:       m.ConnectTimeout,
			MaxPendingPerAddress: m.MaxPendingPerAddress,
			MaxPending:           m.MaxPending,
			TopicAliasMaximum:    topicAliasMaximum,
			OnReject:             st.OnReject,
		})
		st.addrMu.Lock()
		st.listeners = append(st.listeners, pl)
		st.addrMu.Unlock()
		out = append(out, Listener{ID: id, Listener: pl})
		return nil
	}
	closeAll := func() {
		for _, l := range out {
			l.Close()
		}
	}
	if m.Port >= 0 {
		if err := open("tcp", m.Port, nil); err != nil {
			return nil, err
		}
	}
	if st.TLS != nil {
		if err := open("tls", m.TLSPort, st.TLS.TLSConfig()); err != nil {
			closeAll()
			return nil, err
		}
	}
	return out, nil
}

func (st *Stack) setAddr(id, addr string) {
	st.addrMu.Lock()
	st.addrs[id] = addr
	st.addrMu.Unlock()
}

// Pending adds up the MQTT listeners' pending connections (accepted,
// not yet given a successful CONNACK) and those closed to make room.
func (st *Stack) Pending() packets.PendingStats {
	st.addrMu.Lock()
	defer st.addrMu.Unlock()
	var sum packets.PendingStats
	for _, l := range st.listeners {
		p := l.Pending()
		sum.Pending += p.Pending
		sum.Addresses += p.Addresses
		sum.EvictedPerAddress += p.EvictedPerAddress
		sum.EvictedTotal += p.EvictedTotal
	}
	return sum
}

// Addr is a listener's address ("tcp", "tls", "admin"), "" if none.
func (st *Stack) Addr(id string) string {
	st.addrMu.Lock()
	defer st.addrMu.Unlock()
	return st.addrs[id]
}

// OnReject counts what the packet validator refused against the client
// and its address.
func (st *Stack) OnReject(c *packets.Conn, err error) {
	if errors.Is(err, packets.ErrTooManyPending) {
		// Closed to make room for a newer connection: the metrics count
		// it (mqttguard_pending_evicted_total), and nothing is held
		// against an address the total cap may have picked by age alone.
		st.connLog().Debug("connection closed by the packet validator", "addr", addrOnly(c.RemoteAddr()), "error", err.Error())
		return
	}
	code := packets.CodeOf(err)
	kind := trust.Malformed
	if errors.Is(err, packets.ErrConnectTimeout) {
		code, kind = reason.KeepAliveTimeout, trust.Other // the closest code
	}
	st.rejected.add(code)
	addr, _ := netipAddr(c.RemoteAddr())
	cl := mqttguard.Client{ID: c.ClientID(), Username: c.Username(), Addr: addr}
	st.Guard.Violation(&cl, kind, time.Now())
	st.connLog().Warn("connection closed by the packet validator", "addr", addrOnly(c.RemoteAddr()), "client", cl.ID, "error", err.Error())
}

// connLog is the log for lines written per connection: bounded per
// address and in total (perConnLimits).
func (st *Stack) connLog() *slog.Logger { return slog.New(st.perConn) }

// addrOnly is a remote address without its port: the port changes with
// every connection, and the per-address log bound counts by the address.
func addrOnly(a net.Addr) string {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return a.String()
}

func (st *Stack) onTransition(t trust.Transition) {
	if st.Fleet != nil {
		st.Fleet.Transition(t)
	}
	if t.To == trust.Disconnected && t.Escalation {
		if s := st.sessionsOrNil(); s != nil {
			switch t.Dimension {
			case trust.ByClientID: // that user's client, not another's with the same client ID
				s.Kick(trust.Ban{Kind: trust.BanClientID, Value: t.Key, Username: t.Username}, 0x98)
			case trust.ByUsername:
				s.Kick(trust.Ban{Kind: trust.BanUsername, Value: t.Key}, 0x98)
			}
		}
	}
	select { // the trust file follows (banSaver saves both)
	case st.bansChanged <- struct{}{}:
	default:
	}
}

// onBan kicks the clients a new ban matches and asks for the list to be
// saved. The file is written by banSaver, not here: onBan runs on the
// publish path (automatic bans) and once per ban of a fleet resync.
func (st *Stack) onBan(ban trust.Ban) {
	if s := st.sessionsOrNil(); s != nil {
		s.Kick(ban, reason.AdministrativeAction) // 0x8A banned is a CONNACK code, not a DISCONNECT one
	}
	select {
	case st.bansChanged <- struct{}{}:
	default: // a save is pending already; it will include this ban
	}
}

// banSaver writes the ban and trust files after changes: once for a
// burst of them, and at most once every saveSpacing, so an attacker
// who earns a ban or a state change per connection costs one write of
// each file a second, not one per connection. (An API ban is saved
// before the API answers; Close saves whatever is pending.)
func (st *Stack) banSaver(ctx context.Context) {
	defer st.workers.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.bansChanged:
			st.SaveBans()
			st.SaveTrust()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(saveSpacing):
		}
	}
}

const saveSpacing = time.Second

// SaveBans writes the ban list to its file.
func (st *Stack) SaveBans() {
	if st.Cfg.Security.BanFile == "" {
		return
	}
	if err := st.Bans.SaveFile(st.Cfg.Path(st.Cfg.Security.BanFile), time.Now()); err != nil {
		st.Log.Error("saving the ban list", "error", err)
	}
}

// sweeper gives memory back every half minute.
func (st *Stack) sweeper(ctx context.Context) {
	defer st.workers.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st.Guard.Sweep(now)
			st.transitions.Flush(now)
			st.perConn.Flush(now)
		}
	}
}

func (st *Stack) loadPlugins(ctx context.Context, cfg *guardconf.Config) ([]*wasmguard.Plugin, error) {
	var out []*wasmguard.Plugin
	for i, pc := range cfg.Plugins {
		p, err := st.loadPlugin(ctx, cfg, i, pc)
		if err != nil {
			for _, q := range out {
				q.Close(ctx)
			}
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (st *Stack) loadPlugin(ctx context.Context, cfg *guardconf.Config, i int, pc guardconf.PluginConfig) (*wasmguard.Plugin, error) {
	key := fmt.Sprintf("plugins[%d]", i)
	wasm, err := os.ReadFile(cfg.Path(pc.Path))
	if err != nil {
		return nil, cfg.Errorf(key+".path", "%v", err)
	}
	config := []byte(pc.Config)
	if pc.ConfigFile != "" {
		if config, err = os.ReadFile(cfg.Path(pc.ConfigFile)); err != nil {
			return nil, cfg.Errorf(key+".config_file", "%v", err)
		}
	}
	name := pc.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(pc.Path), ".wasm")
	}
	policy := wasmguard.FailClosed
	if pc.Failure == "open" {
		policy = wasmguard.FailOpen
	}
	lim := wasmguard.Limits{MaxInstances: pc.MaxInstances, MaxMemoryBytes: uint64(pc.MaxMemoryMB) << 20, Timeout: pc.Timeout}
	p, err := wasmguard.Load(ctx, wasm, lim, wasmguard.WithName(name), wasmguard.WithLogger(st.Log),
		wasmguard.WithFailurePolicy(policy), wasmguard.WithConfig(config),
		wasmguard.WithCacheDir(filepath.Join(cfg.Dir, "wasm-cache")))
	if err != nil {
		return nil, cfg.Errorf(key, "%v", err)
	}
	return p, nil
}

// Close stops the admin API and the background work, saves the bans and
// closes the plugins. The program closes its listeners and clients
// first.
func (st *Stack) Close(ctx context.Context) error {
	if st.dash != nil {
		st.dash.Close() // its live views end, or Shutdown would wait for them
	}
	if st.admin != nil {
		st.admin.Shutdown(ctx)
	}
	st.stop()
	st.workers.Wait()
	if st.Fleet != nil {
		st.Fleet.Close()
	}
	if st.Redis != nil {
		st.Redis.Close()
	}
	if st.Tokens != nil {
		st.Tokens.Close()
	}
	if st.Guard != nil {
		for _, p := range st.Guard.SetPlugins(nil) {
			p.Close(ctx)
		}
		st.SaveBans()
		st.SaveTrust()
	}
	return nil
}

// rejectCounts counts connections the packet validator closed, by reason
// code.
type rejectCounts struct {
	mu sync.Mutex
	by map[reason.Code]uint64
}

func (r *rejectCounts) add(code reason.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[reason.Code]uint64{}
	}
	r.by[code]++
}

func (r *rejectCounts) snapshot() map[reason.Code]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[reason.Code]uint64, len(r.by))
	for k, v := range r.by {
		out[k] = v
	}
	return out
}
