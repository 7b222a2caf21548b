package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/passwd"
)

// demoConfig is the example broker's default configuration with what the
// demo changes: free ports, so it runs beside a broker already on 1883;
// a push-interval profile for the temperature sensors; SUBSCRIBE checked
// against the ACL. (Every device of the demo lives on 127.0.0.1, as
// behind a NAT: the default counts no violation against addresses, so
// the rogue does not take its neighbours down with it.)
func demoConfig() ([]byte, error) {
	cfg := string(guardconf.DefaultConfig)
	for _, r := range []struct{ old, new string }{
		{"\nport = 1883 ", "\nport = 0    "},
		{"\ntls_port = 8883", "\ntls_port = 0"},
		{`listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:0"`},
		{`subscribe_check = "delivery"`, `subscribe_check = "covers"`},
		{"topic = \"sensors/+/report\"\ninterval = \"5m\"\ntolerance = \"30s\"",
			"topic = \"sensors/temperature/+\"\ninterval = \"2s\"\ntolerance = \"1s\""},
	} {
		if !strings.Contains(cfg, r.old) {
			return nil, fmt.Errorf("the example broker's default configuration changed: %q is gone; update demoConfig", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	return []byte(cfg), nil
}

// demoACL is added to the example broker's ACL.
const demoACL = `
# sensors demo (examples/sensors)
# The aggregator reads every sensor and raises alerts.
user aggregator
topic read sensors/#
topic write alerts/#

# A device publishes its readings on sensors/<kind>/<its username> and
# reads the commands addressed to its client ID (%c never stands for a
# client ID with a wildcard in it).
pattern write sensors/+/%u
pattern read commands/%c/#
`

// demoUsers are the demo's accounts.
var demoUsers = []string{"temp-1", "temp-2", "motion-1", "door-1", "aggregator", "rogue-1"}

// provision adds the demo's accounts to the password file and its rules
// to the ACL in the data directory, once; the passwords are kept in
// sensors-demo.json (0600) beside them, so a second run reuses them.
func provision(dir string) (map[string]account, error) {
	keep := filepath.Join(dir, "sensors-demo.json")
	known := map[string]string{}
	if b, err := os.ReadFile(keep); err == nil {
		if err := json.Unmarshal(b, &known); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it to start over)", keep, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	pwPath := filepath.Join(dir, "passwd")
	f, err := passwd.LoadFile(pwPath)
	if err != nil {
		return nil, err
	}
	out, changed := map[string]account{}, false
	for _, u := range demoUsers {
		pw, ok := known[u]
		if !ok || !f.Has(u) {
			b := make([]byte, 12)
			rand.Read(b)
			pw = base64.RawURLEncoding.EncodeToString(b)
			if err := f.Add(u, pw); err != nil {
				return nil, err
			}
			known[u], changed = pw, true
		}
		out[u] = account{User: u, Password: pw}
	}
	if changed {
		if err := f.WriteFile(pwPath); err != nil {
			return nil, err
		}
		b, _ := json.MarshalIndent(known, "", "  ")
		if err := os.WriteFile(keep, b, 0o600); err != nil {
			return nil, err
		}
	}
	aclPath := filepath.Join(dir, "acl")
	acl, err := os.ReadFile(aclPath)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(acl), "# sensors demo") {
		if err := os.WriteFile(aclPath, append(acl, demoACL...), 0o600); err != nil {
			return nil, err
		}
	}
	return out, nil
}
