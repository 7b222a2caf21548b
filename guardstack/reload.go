package guardstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/trust"
)

// ReloadReport is what a reload did.
type ReloadReport struct {
	Changes []guardconf.Change
	// Reloaded are the files read again: "acl", "passwords", "tls",
	// "plugins".
	Reloaded []string
}

// Reload does what SIGHUP and POST /reload do: it re-reads the
// configuration file and puts in force what can change under live
// connections — the mode, rate limits, trust factors, flapping
// thresholds, device profiles (when the broker started with some) and
// plugins — and reloads the ACL, the password file and the TLS material.
// Every other changed setting is logged by name as needing a restart.
// What fails to load keeps its old state; the errors are returned
// together.
func (st *Stack) Reload() error {
	_, err := st.reload()
	return err
}

func (st *Stack) reload() (ReloadReport, error) {
	st.reloadMu.Lock()
	defer st.reloadMu.Unlock()
	var rep ReloadReport
	var errs []error
	cfg := st.Cfg
	next := cfg // where the plugin list comes from
	if cfg.Source != "" {
		if nc, err := cfg.Reread(); err != nil {
			errs = append(errs, err)
		} else {
			rep.Changes, errs = st.apply(nc)
			next = nc
		}
	}
	// The files are read again whether or not the configuration changed:
	// reloading them is what SIGHUP is mostly for.
	if st.ACL != nil {
		if _, err := st.ACL.Reload(cfg.Path(cfg.Security.ACLFile)); err != nil {
			errs = append(errs, fmt.Errorf("acl kept: %w", err))
		} else {
			rep.Reloaded = append(rep.Reloaded, "acl")
		}
	}
	if st.Passwords != nil {
		if err := st.Passwords.Reload(cfg.Path(cfg.Security.PasswordFile)); err != nil {
			errs = append(errs, fmt.Errorf("password file kept: %w", err))
		} else {
			rep.Reloaded = append(rep.Reloaded, "passwords")
		}
	}
	if st.TLS != nil {
		if _, err := st.TLS.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("TLS material kept: %w", err))
		} else {
			rep.Reloaded = append(rep.Reloaded, "tls")
		}
	}
	st.pluginsMu.Lock()
	if ps, err := st.loadPlugins(context.Background(), next); err != nil {
		errs = append(errs, fmt.Errorf("plugins kept: %w", err))
		rep.Changes = slices.DeleteFunc(rep.Changes, func(c guardconf.Change) bool { return c.Key == "plugins" }) // the error says it
	} else {
		for _, p := range st.Guard.SetPlugins(ps) {
			p.Close(context.Background())
		}
		cfg.Plugins = next.Plugins
		for i := range rep.Changes {
			if rep.Changes[i].Key == "plugins" {
				rep.Changes[i].Applied = true
			}
		}
		rep.Reloaded = append(rep.Reloaded, "plugins")
	}
	st.pluginsMu.Unlock()

	for _, c := range rep.Changes {
		if c.Applied {
			st.Log.Info(c.String())
		} else {
			st.Log.Warn(c.String())
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		st.Log.Error("reload", "error", err)
	} else {
		st.Log.Info("reloaded", "files", strings.Join(rep.Reloaded, ", "), "settings_changed", len(rep.Changes))
	}
	return rep, err
}

// apply compares the file as it is now (nc) with the configuration in
// force, puts in force what can change at run time (but the plugins,
// which reload loads), and updates st.Cfg to say so. Called with
// reloadMu held.
func (st *Stack) apply(nc *guardconf.Config) ([]guardconf.Change, []error) {
	old := st.Cfg
	changes := guardconf.Diff(old, nc)
	var errs []error
	fail := func(key string, err error) {
		errs = append(errs, fmt.Errorf("%s kept: %w", key, err))
	}
	applied := map[string]bool{}
	section := func(prefix string) bool {
		for _, c := range changes {
			if c.Key == prefix || strings.HasPrefix(c.Key, prefix+".") {
				return true
			}
		}
		return false
	}
	s, ns := &old.Security, &nc.Security

	if section("security.mode") {
		m, _ := trust.ParseMode(ns.Mode) // validated by LoadConfig
		st.Guard.SetMode(m)
		s.Mode = ns.Mode
		applied["security.mode"] = true
	}
	if section("security.rate_limit") {
		rl := rateLimits(nc, st.Guard.Config().RateLimits)
		if err := st.Guard.SetRateLimits(rl); err != nil {
			fail("security.rate_limit", err)
		} else {
			s.RateLimit = ns.RateLimit
			applied["security.rate_limit"] = true
		}
	}
	if section("security.trust") {
		if err := st.Tracker.SetFactors(ns.Trust.UsernameFactor, ns.Trust.IPFactor); err != nil {
			fail("security.trust", err)
		} else {
			s.Trust = ns.Trust
			applied["security.trust"] = true
		}
	}
	if section("security.flapping") {
		f := ns.Flapping
		st.Flapping.SetConfig(anomaly.FlappingConfig{MaxConnects: f.MaxConnects, Window: f.Window, BanFor: f.BanFor})
		s.Flapping = ns.Flapping
		applied["security.flapping"] = true
	}
	// Profiles can change, or go, when the broker started with some; a
	// broker that started without checks no push interval at all, so
	// that its publishes cost nothing for it (a restart turns it on).
	if section("security.devices") && st.Intervals != nil {
		if res, err := resolver(nc); err != nil {
			fail("security.devices", err)
		} else {
			st.Intervals.SetResolver(res)
			s.Devices = ns.Devices
			applied["security.devices"] = true
		}
	}
	// The ACL and password files are read from their new paths; a file
	// that was off (or is now) needs a restart, as the Guard was built
	// with or without it.
	if section("security.acl_file") && st.ACL != nil && ns.ACLFile != "" {
		s.ACLFile = ns.ACLFile
		applied["security.acl_file"] = true
	}
	if section("security.password_file") && st.Passwords != nil && ns.PasswordFile != "" {
		s.PasswordFile = ns.PasswordFile
		applied["security.password_file"] = true
	}
	for i, c := range changes {
		for prefix := range applied {
			if c.Key == prefix || strings.HasPrefix(c.Key, prefix+".") {
				changes[i].Applied = true
			}
		}
	}
	old.UseLinesOf(nc) // for the lines of keys in later errors
	return changes, errs
}
