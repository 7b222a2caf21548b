package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Load reads and validates the files of cfg once and returns a server
// configuration that does not depend on the Go version of the program
// that uses it: MinVersion and the TLS 1.2 cipher suites are always set
// explicitly; curve preferences are left to Go, so hybrid post-quantum
// key exchange stays on where the toolchain has it.
func Load(cfg Config) (*tls.Config, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	f, err := readAll(&cfg)
	if err != nil {
		return nil, err
	}
	s, err := build(&cfg, f, nil)
	if err != nil {
		return nil, err
	}
	logWarnings(&cfg, s)
	return s.tls, nil
}

func logWarnings(cfg *Config, s *snapshot) {
	if cfg.Logger == nil {
		return
	}
	for _, w := range s.warnings {
		cfg.Logger.Warn("tlsconf: " + w)
	}
}

// Reloader serves TLS from files that may change under it: certificate
// rotation, a new CA bundle, a fresh CRL. Every handshake gets the
// snapshot in force through GetConfigForClient — an immutable
// configuration behind an atomic pointer, so a reload never blocks a
// handshake and a handshake never sees half a reload. A reload that
// fails (a new certificate with the old key, a truncated chain, a CRL
// that does not verify) keeps the previous snapshot serving.
type Reloader struct {
	cfg  Config
	cur  atomic.Pointer[snapshot]
	mu   sync.Mutex // one reload at a time
	base *tls.Config
}

// NewReloader loads cfg's files; the first load must succeed.
func NewReloader(cfg Config) (*Reloader, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	f, err := readAll(&cfg)
	if err != nil {
		return nil, err
	}
	s, err := build(&cfg, f, nil)
	if err != nil {
		return nil, err
	}
	s.gen = 1
	logWarnings(&cfg, s)
	r := &Reloader{cfg: cfg}
	r.cur.Store(s)
	r.base = &tls.Config{
		MinVersion:   s.tls.MinVersion,
		CipherSuites: s.tls.CipherSuites,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().tls, nil
		},
	}
	return r, nil
}

// TLSConfig is the configuration to give a listener
// (tls.NewListener(l, r.TLSConfig())).
func (r *Reloader) TLSConfig() *tls.Config { return r.base }

// Generation counts the snapshots that have been in force, starting at 1.
func (r *Reloader) Generation() uint64 { return r.cur.Load().gen }

// Reload reads every file again. If nothing changed (by content: a copy
// that keeps the modification time is still seen) it returns false; if
// the new files are valid they are in force for the next handshakes;
// otherwise the previous snapshot stays and err says which file and why.
func (r *Reloader) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed, err = r.reloadLocked()
	if r.cfg.OnReload != nil {
		r.cfg.OnReload(changed, err)
	}
	return changed, err
}

func (r *Reloader) reloadLocked() (bool, error) {
	prev := r.cur.Load()
	f, err := readAll(&r.cfg)
	if err != nil {
		return false, err
	}
	if f.hash() == prev.hash {
		return false, nil
	}
	s, err := build(&r.cfg, f, prev)
	if err != nil {
		return false, err
	}
	s.gen = prev.gen + 1
	logWarnings(&r.cfg, s)
	r.cur.Store(s)
	return true, nil
}

// Watch reloads every interval until ctx is done, then returns. A failed
// reload is logged (Config.Logger) and reported to Config.OnReload; the
// next tick tries again. Run it in a goroutine and cancel ctx to stop it.
func (r *Reloader) Watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := r.Reload()
			if l := r.cfg.Logger; l != nil {
				switch {
				case err != nil:
					l.Error("tlsconf: reload failed; the previous certificates keep serving", slog.String("error", err.Error()))
				case changed:
					l.Info("tlsconf: reloaded", slog.Uint64("generation", r.Generation()))
				}
			}
		}
	}
}

// Revoked reports whether the client certificate of a live connection is
// revoked by the CRLs in force now (or, with CRLs configured, has no CRL
// or a stale one), so that a broker can drop live sessions after a CRL
// reload (DISCONNECT 0x98). Connections without a verified client
// certificate are not revoked.
func (r *Reloader) Revoked(cs tls.ConnectionState) (bool, error) {
	s := r.cur.Load()
	if s.crls == nil {
		return false, nil
	}
	err := s.crls.check(cs, r.cfg.now(), r.cfg.AllowStaleCRL)
	var re *RevokedError
	if errors.As(err, &re) {
		return true, err
	}
	return false, err
}

// Identity returns the client's name from its verified certificate,
// taken from where Config.Identity says (see IdentityFrom).
func (r *Reloader) Identity(cs tls.ConnectionState) (string, error) {
	return IdentityFrom(cs, r.cfg.Identity)
}

// Expiry reports how long every certificate in force has left: the
// server chain and the client CAs.
func (r *Reloader) Expiry() []Expiry {
	s := r.cur.Load()
	return expiries(s, r.cfg.now())
}
