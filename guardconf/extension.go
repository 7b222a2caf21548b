package guardconf

import (
	"reflect"
	"slices"

	"github.com/BurntSushi/toml"
)

// An Extension is a program's own tables in the configuration file,
// beside the Guard's: the example proxy's [upstream], say. It is a
// pointer to a struct whose fields carry toml tags, as Config's do.
// ParseConfig decodes the file into it too, so that its keys are not
// unknown keys, then calls Validate, which reports a bad value with
// Config.Errorf (file, line, key and what to do).
//
// A reload decodes the file again into a fresh value of the same type;
// its fields take part in the comparison that says which settings
// changed (see Diff).
type Extension interface {
	Validate(c *Config) error
}

// A HostTLS extension is a program whose host broker owns the TLS
// listeners and verifies client certificates itself (the mosquitto
// plugin: mosquitto's require_certificate): security.use_identity_as_username
// is valid without this file's [mqtt] TLS settings, and admits only
// the certificates the host verified.
type HostTLS interface {
	Extension
	VerifiesClientCertificates() bool
}

func hostVerifiesCertificates(ext Extension) bool {
	h, ok := ext.(HostTLS)
	return ok && h.VerifiesClientCertificates()
}

// undecodedByBoth keeps the keys that neither decoding used.
func undecodedByBoth(a, b []toml.Key) []toml.Key {
	var out []toml.Key
	for _, k := range a {
		if slices.ContainsFunc(b, func(x toml.Key) bool { return x.String() == k.String() }) {
			out = append(out, k)
		}
	}
	return out
}

// Reread reads the file c came from again, decoding the program's tables
// into a fresh Extension of the same type, and makes the command line's
// changes (Override) to it again: what a reload compares with c.
func (c *Config) Reread() (*Config, error) {
	var ext Extension
	if c.Extension != nil {
		ext = reflect.New(reflect.TypeOf(c.Extension).Elem()).Interface().(Extension)
	}
	nc, err := LoadConfig(c.Source, ext)
	if err != nil {
		return nil, err
	}
	for _, f := range c.overrides {
		f(nc)
	}
	nc.overrides = c.overrides
	return nc, nil
}
