package guardstack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mqttguard/mqttguard/passwd"
	"github.com/mqttguard/mqttguard/tlsconf"
)

// ConfigFile is the configuration kept in the data directory.
const ConfigFile = "mqttguard.toml"

// DefaultACL is the first run's ACL, least privilege for a sensor
// network: the admin does anything, the dashboard reads every sensor, and
// each sensor writes only its own subtree and reads only its own commands.
const DefaultACL = `# mqttguard example broker ACL, mosquitto acl_file format.
# Reloaded on SIGHUP and POST /reload; a file with an error keeps the old
# rules in force and the error is logged with its line.

# The administrator reads and writes everything.
user admin
topic readwrite #
topic read $SYS/#

# The dashboard reads every sensor.
user dashboard
topic read sensors/#

# Each sensor (%u is its username) publishes only under its own name and
# reads only its own commands.
pattern write sensors/%u/#
pattern read commands/%u/#
`

// Account is a user the first run created, with its password (kept in
// NewAccountsFile until a start has shown it; the password file stores
// only the hash).
type Account struct {
	User, Password, Can string
}

// FirstRun is what Setup created.
type FirstRun struct {
	Created bool // anything at all
	// Accounts are the accounts to show with their passwords: created now,
	// or by an earlier run that did not get to show them. Call Shown once
	// they are.
	Accounts []Account
	Token    bool // a new admin token
	TLS      bool // a new development CA and certificates

	dir string
}

// Setup makes the data directory ready: the configuration
// (defaultConfig), development TLS material, a password file with generated
// passwords, the ACL and the admin token — each only if it is missing,
// so a second run changes nothing and an operator's files are never
// overwritten. The generated passwords are kept in NewAccountsFile until
// the program calls FirstRun.Shown: a run that fails before it could show
// them (a port in use) leaves them for the next one.
func Setup(dir string, defaultConfig []byte) (FirstRun, error) {
	fr := FirstRun{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fr, fmt.Errorf("data directory: %w", err)
	}
	missing := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return errors.Is(err, fs.ErrNotExist)
	}
	if missing(ConfigFile) {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), defaultConfig, 0o600); err != nil {
			return fr, err
		}
		fr.Created = true
	}
	if missing("tls/server.pem") || missing("tls/server-key.pem") || missing("tls/ca.pem") {
		if _, err := tlsconf.GenerateDev(filepath.Join(dir, "tls")); err != nil {
			return fr, fmt.Errorf("development certificates: %w", err)
		}
		fr.Created, fr.TLS = true, true
	}
	if missing("passwd") {
		f := passwd.New()
		for _, a := range []Account{
			{User: "admin", Can: "read and write everything"},
			{User: "sensor1", Can: "publish under sensors/sensor1/, read commands/sensor1/"},
			{User: "dashboard", Can: "read sensors/#"},
		} {
			a.Password = secret(12)
			if err := f.Add(a.User, a.Password); err != nil {
				return fr, err
			}
			fr.Accounts = append(fr.Accounts, a)
		}
		if err := writeNewAccounts(dir, fr.Accounts); err != nil {
			return fr, fmt.Errorf("keeping the new accounts until they are shown: %w", err)
		}
		if err := f.WriteFile(filepath.Join(dir, "passwd")); err != nil {
			return fr, err
		}
		fr.Created = true
	} else {
		var err error
		if fr.Accounts, err = readNewAccounts(dir, filepath.Join(dir, "passwd")); err != nil {
			return fr, fmt.Errorf("the accounts not shown yet (%s): %w", filepath.Join(dir, NewAccountsFile), err)
		}
	}
	if missing("acl") {
		if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(DefaultACL), 0o600); err != nil {
			return fr, err
		}
		fr.Created = true
	}
	if missing("admin.token") {
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(secret(24)+"\n"), 0o600); err != nil {
			return fr, err
		}
		fr.Created, fr.Token = true, true
	}
	return fr, nil
}

// secret returns n random bytes, base64url: easy to paste, no quoting
// needed in a shell.
func secret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
