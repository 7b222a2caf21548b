package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Broker is mochi-mqtt with the Guard in front of every decision and a
// packet validator in front of every listener.
type Broker struct {
	cfg *Config
	log *slog.Logger

	srv      *mqtt.Server
	hook     *guardHook
	guard    *mqttguard.Guard
	acl      *acl.Holder
	pw       *passwd.Holder
	bans     *trust.Bans
	tracker  *trust.Tracker
	flapping *anomaly.FlappingDetector
	interval *anomaly.IntervalDetector
	tls      *tlsconf.Reloader
	token    string

	pluginsMu sync.Mutex // serialises plugin reloads
	rejected  rejectCounts

	addrs  map[string]string // listener → address
	admin  *http.Server
	adminL net.Listener

	stop    context.CancelFunc
	workers sync.WaitGroup
}

// rejectCounts counts connections the packet validator closed, by reason
// code.
type rejectCounts struct {
	mu sync.Mutex
	by map[byte]uint64
}

func (r *rejectCounts) add(code byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[byte]uint64{}
	}
	r.by[code]++
}

func (r *rejectCounts) snapshot() map[byte]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[byte]uint64, len(r.by))
	for k, v := range r.by {
		out[k] = v
	}
	return out
}

// Start builds everything from cfg and starts serving. Close stops it.
func Start(cfg *Config, log *slog.Logger) (_ *Broker, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{cfg: cfg, log: log, bans: &trust.Bans{}, addrs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	defer func() {
		if err != nil {
			b.Close(context.Background())
		}
	}()
	s := &cfg.Security
	mode, _ := trust.ParseMode(s.Mode)
	now := time.Now()

	if s.PasswordFile != "" {
		f, err := passwd.LoadFile(cfg.path(s.PasswordFile))
		if err != nil {
			return nil, err
		}
		b.pw = passwd.NewHolder(f)
	}
	if s.ACLFile != "" {
		p, err := acl.LoadFile(cfg.path(s.ACLFile))
		if err != nil {
			return nil, err
		}
		b.acl = acl.NewHolder(p)
	}
	if s.BanFile != "" {
		if err := b.bans.LoadFile(cfg.path(s.BanFile), now); err != nil {
			log.Error("ban file: some lines were not loaded; the others are in force", "error", err)
		}
	}
	tcfg := trust.Preset(mode)
	tcfg.UsernameFactor, tcfg.IPFactor = s.Trust.UsernameFactor, s.Trust.IPFactor
	tcfg.Logger = log
	tcfg.OnTransition = b.onTransition
	if b.tracker, err = trust.New(tcfg); err != nil {
		return nil, err
	}
	f := s.Flapping
	b.flapping = anomaly.NewFlappingDetector(anomaly.FlappingConfig{MaxConnects: f.MaxConnects, Window: f.Window, BanFor: f.BanFor})
	if len(s.Devices) > 0 {
		var rules []anomaly.ProfileRule
		for _, d := range s.Devices {
			rules = append(rules, anomaly.ProfileRule{ClientID: d.ClientID, Username: d.Username, TopicFilter: d.Topic,
				Profile: anomaly.Profile{Interval: d.Interval, Tolerance: d.Tolerance}})
		}
		res, err := anomaly.NewResolver(rules)
		if err != nil {
			return nil, cfg.errorf("security.devices", "%v", err)
		}
		b.interval = anomaly.NewIntervalDetector(anomaly.Config{Resolver: res})
	}
	plugins, err := b.loadPlugins(ctx)
	if err != nil {
		return nil, err
	}
	identity, _ := tlsconf.ParseIdentitySource(s.CertIdentity)
	r := s.RateLimit
	gcfg := mqttguard.Config{
		Mode:                  mode,
		AllowAnonymous:        s.AllowAnonymous,
		CertIdentity:          identity,
		UseIdentityAsUsername: s.UseIdentityAsUsername,
		Bans:                  b.bans,
		Trust:                 b.tracker,
		Flapping:              b.flapping,
		Intervals:             b.interval,
		Plugins:               plugins,
		ShadowBan:             s.EnableShadowBan,
		FilterOnDelivery:      s.SubscribeCheck == "delivery",
		BanAddresses:          s.EnableIPBan,
		Logger:                log,
		RateLimits: mqttguard.RateLimits{
			ConnectionsPerAddr: mqttguard.Rate{PerSecond: r.IPConnectionsPerSecond},
			MessagesPerClient:  mqttguard.Rate{PerSecond: r.ClientMessagesPerSecond, Burst: int(r.ClientBurstCapacity)},
			BytesPerClient:     mqttguard.Rate{PerSecond: r.ClientBytesPerSecond, Burst: int(r.ClientBytesPerSecond)},
			MessagesPerUser:    mqttguard.Rate{PerSecond: r.UserTokensPerSecond, Burst: int(r.UserBurstCapacity)},
			MessagesPerTopic:   mqttguard.Rate{PerSecond: r.ChannelMessagesPerSecond, Burst: int(r.ChannelBurstCapacity)},
		},
	}
	if b.pw != nil {
		gcfg.Passwords = b.pw
	}
	if b.acl != nil {
		gcfg.ACL = b.acl
	}
	if b.guard, err = mqttguard.New(gcfg); err != nil {
		return nil, err
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(packetLimits(cfg).MaxPacketSize)
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60 // mochi's default keeps sessions forever
	if cfg.MQTT.MaxClients > 0 {
		caps.MaximumClients = int64(cfg.MQTT.MaxClients)
	}
	b.srv = mqtt.New(&mqtt.Options{Capabilities: caps, Logger: log.With("component", "mochi")})
	b.hook = &guardHook{g: b.guard, srv: b.srv}
	if err := b.srv.AddHook(b.hook, nil); err != nil {
		return nil, err
	}
	b.bans.OnAdd = b.onBan

	m := cfg.MQTT
	if m.Port >= 0 {
		if err := b.listen("tcp", m.Bind, m.Port, nil); err != nil {
			return nil, err
		}
	}
	if m.EnableTLS && m.TLSPort >= 0 {
		ca, _ := cfg.clientAuth()
		var crls []string
		for _, p := range m.TLSCRLPaths {
			crls = append(crls, cfg.path(p))
		}
		b.tls, err = tlsconf.NewReloader(tlsconf.Config{CertFile: cfg.path(m.TLSCertPath), KeyFile: cfg.path(m.TLSKeyPath),
			ClientCAFile: cfg.path(m.TLSCACertPath), ClientAuth: ca, CRLFiles: crls, Identity: identity, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := b.listen("tls", m.Bind, m.TLSPort, b.tls.TLSConfig()); err != nil {
			return nil, err
		}
		b.workers.Add(1)
		go func() {
			defer b.workers.Done()
			b.tls.Watch(ctx, 10*time.Second)
		}()
	}
	if err := b.srv.Serve(); err != nil {
		return nil, err
	}
	if err := b.startAdmin(); err != nil {
		return nil, err
	}
	b.workers.Add(1)
	go b.sweeper(ctx)
	return b, nil
}

func packetLimits(cfg *Config) packets.Limits {
	lim := packets.DefaultLimits()
	if cfg.MQTT.MaxPacketSize > 0 {
		lim.MaxPacketSize = cfg.MQTT.MaxPacketSize
	}
	if cfg.MQTT.MaxConnectSize > 0 {
		lim.MaxConnectSize = cfg.MQTT.MaxConnectSize
	}
	return lim
}

// listen opens a listener and hands mochi its connections through the
// packet validator.
func (b *Broker) listen(id, bind string, port int, tc *tls.Config) error {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "address already in use") {
			hint = " (is another broker, mosquitto say, running? stop it or change mqtt.port / mqtt.tls_port)"
		}
		return fmt.Errorf("listener %s: %w%s", id, err, hint)
	}
	b.addrs[id] = ln.Addr().String()
	var inner net.Listener = ln
	if tc != nil {
		inner = tls.NewListener(ln, tc)
	}
	guarded := packets.Listen(inner, packets.ListenerConfig{
		Limits:            packetLimits(b.cfg),
		ConnectTimeout:    b.cfg.MQTT.ConnectTimeout,
		TopicAliasMaximum: b.srv.Options.Capabilities.TopicAliasMaximum,
		OnReject:          b.onReject,
	})
	return b.srv.AddListener(listeners.NewNet(id, guarded))
}

// onReject counts what the packet validator refused against the client
// and its address.
func (b *Broker) onReject(c *packets.Conn, err error) {
	code := byte(packets.CodeOf(err))
	if errors.Is(err, packets.ErrConnectTimeout) {
		code = 0x8D // keep alive timeout: the closest code
	}
	b.rejected.add(code)
	addr, _ := netipAddr(c.RemoteAddr())
	cl := mqttguard.Client{ID: c.ClientID(), Username: c.Username(), Addr: addr}
	kind := trust.Malformed
	if errors.Is(err, packets.ErrConnectTimeout) {
		kind = trust.Other
	}
	b.guard.Violation(&cl, kind, time.Now())
	b.log.Warn("connection closed by the packet validator", "addr", c.RemoteAddr().String(), "client", cl.ID, "error", err.Error())
}

func (b *Broker) onTransition(t trust.Transition) {
	if t.To == trust.Disconnected && t.Escalation && t.Dimension == trust.ByClientID && b.hook != nil {
		b.hook.kickID(t.Key, 0x98)
	}
}

// onBan kicks the clients a new ban matches and saves the list.
func (b *Broker) onBan(ban trust.Ban) {
	if b.hook != nil {
		b.hook.kickMatching(ban)
	}
	b.saveBans()
}

func (b *Broker) saveBans() {
	if b.cfg.Security.BanFile == "" {
		return
	}
	if err := b.bans.SaveFile(b.cfg.path(b.cfg.Security.BanFile), time.Now()); err != nil {
		b.log.Error("saving the ban list", "error", err)
	}
}

// sweeper gives memory back every half minute.
func (b *Broker) sweeper(ctx context.Context) {
	defer b.workers.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.guard.Sweep(now)
		}
	}
}

// loadPlugins loads the configured plugins.
func (b *Broker) loadPlugins(ctx context.Context) ([]*wasmguard.Plugin, error) {
	var out []*wasmguard.Plugin
	for i, pc := range b.cfg.Plugins {
		p, err := b.loadPlugin(ctx, i, pc)
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

func (b *Broker) loadPlugin(ctx context.Context, i int, pc PluginConfig) (*wasmguard.Plugin, error) {
	key := fmt.Sprintf("plugins[%d]", i)
	wasm, err := os.ReadFile(b.cfg.path(pc.Path))
	if err != nil {
		return nil, b.cfg.errorf(key+".path", "%v", err)
	}
	config := []byte(pc.Config)
	if pc.ConfigFile != "" {
		if config, err = os.ReadFile(b.cfg.path(pc.ConfigFile)); err != nil {
			return nil, b.cfg.errorf(key+".config_file", "%v", err)
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
	p, err := wasmguard.Load(ctx, wasm, lim, wasmguard.WithName(name), wasmguard.WithLogger(b.log),
		wasmguard.WithFailurePolicy(policy), wasmguard.WithConfig(config),
		wasmguard.WithCacheDir(filepath.Join(b.cfg.Dir, "wasm-cache")))
	if err != nil {
		return nil, b.cfg.errorf(key, "%v", err)
	}
	return p, nil
}

// Reload re-reads the ACL, the password file, the TLS material, the
// plugins and the security mode from the configuration file, without
// dropping a connection. What fails to load keeps its old state; the
// errors are returned together.
func (b *Broker) Reload() error {
	var errs []error
	cfg := b.cfg
	if cfg.Source != "" && cfg.Source != "(embedded default)" {
		nc, err := LoadConfig(cfg.Source)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg = nc
			if m, err := trust.ParseMode(nc.Security.Mode); err == nil && m != b.guard.Mode() {
				b.guard.SetMode(m)
				b.log.Info("security mode changed", "mode", m.String())
			}
		}
	}
	if b.acl != nil {
		if _, err := b.acl.Reload(cfg.path(cfg.Security.ACLFile)); err != nil {
			errs = append(errs, fmt.Errorf("acl kept: %w", err))
		}
	}
	if b.pw != nil {
		if err := b.pw.Reload(cfg.path(cfg.Security.PasswordFile)); err != nil {
			errs = append(errs, fmt.Errorf("password file kept: %w", err))
		}
	}
	if b.tls != nil {
		if _, err := b.tls.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("TLS material kept: %w", err))
		}
	}
	b.pluginsMu.Lock()
	old := b.cfg
	b.cfg = cfg
	ps, err := b.loadPlugins(context.Background())
	if err != nil {
		b.cfg = old
		errs = append(errs, fmt.Errorf("plugins kept: %w", err))
	} else {
		for _, p := range b.guard.SetPlugins(ps) {
			p.Close(context.Background())
		}
	}
	b.pluginsMu.Unlock()
	err = errors.Join(errs...)
	if err != nil {
		b.log.Error("reload", "error", err)
	} else {
		b.log.Info("reloaded the ACL, passwords, TLS material, plugins and mode")
	}
	return err
}

// Addr is a listener's address ("tcp", "tls", "admin").
func (b *Broker) Addr(id string) string { return b.addrs[id] }

// Close stops accepting, disconnects every client (wills go out as usual
// for an unexpected close), stops the admin API and the background work,
// saves the bans and closes the plugins.
func (b *Broker) Close(ctx context.Context) error {
	if b.admin != nil {
		b.admin.Shutdown(ctx)
	}
	if b.srv != nil {
		b.srv.Close()
	}
	b.stop()
	b.workers.Wait()
	if b.guard != nil {
		for _, p := range b.guard.SetPlugins(nil) {
			p.Close(ctx)
		}
		b.saveBans()
	}
	return nil
}
