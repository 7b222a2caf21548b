package stack

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/trust"
)

// Change is one setting whose value differs between the configuration
// in force and the file as it is now.
type Change struct {
	Key      string // "mqtt.port", "security.rate_limit.user_burst_capacity"
	Old, New string // as the file spells them; "" for a secret
	// Applied is true when the reload put the new value in force; false
	// when it takes a restart.
	Applied bool
}

func (c Change) String() string {
	s := c.Key + " changed"
	if c.Old != "" || c.New != "" {
		s += " from " + c.Old + " to " + c.New
	}
	if !c.Applied {
		s += ": restart to apply"
	}
	return s
}

// ReloadReport is what a reload did.
type ReloadReport struct {
	Changes []Change
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
		if nc, err := LoadConfig(cfg.Source); err != nil {
			errs = append(errs, err)
		} else {
			for _, f := range cfg.overrides {
				f(nc)
			}
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
		rep.Changes = slices.DeleteFunc(rep.Changes, func(c Change) bool { return c.Key == "plugins" }) // the error says it
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
func (st *Stack) apply(nc *Config) ([]Change, []error) {
	old := st.Cfg
	changes := diffConfig(old, nc)
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
	old.text = nc.text // for the lines of keys in later errors
	return changes, errs
}

// diffConfig lists the settings whose values differ, by the key a file
// spells them with. Tables and arrays of tables (devices, plugins) are
// one setting each; values that may hold a secret are not shown.
func diffConfig(a, b *Config) []Change {
	var out []Change
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		t := x.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			xv, yv := x.Field(i), y.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
				walk(key, xv, yv)
				continue
			}
			if reflect.DeepEqual(xv.Interface(), yv.Interface()) {
				continue
			}
			c := Change{Key: key}
			switch {
			case secretKeys[key]:
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				c.Old, c.New = fmt.Sprintf("%d entries", xv.Len()), fmt.Sprintf("%d entries", yv.Len())
			default:
				c.Old, c.New = show(xv.Interface()), show(yv.Interface())
			}
			out = append(out, c)
		}
	}
	walk("", reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
	return out
}

// secretKeys are settings whose values are not logged.
var secretKeys = map[string]bool{"upstream.password": true, "cluster.redis_url": true}

// show prints a value as a configuration file spells it.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case nil:
		return "(unset)"
	}
	return fmt.Sprint(v)
}
