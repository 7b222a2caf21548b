package guardstack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/passwd"
)

// NewAccountsFile keeps the first run's accounts with their passwords
// (mode 0600) until a start has shown them: a first run that fails —
// port 1883 in use, say — must not lose the only copy of a password.
// The password file itself holds only hashes.
const NewAccountsFile = "new-accounts.txt"

const newAccountsHeader = `# The accounts mqttguard's first run created, with their passwords.
# This file is removed once a start has shown them; the password file
# keeps only hashes. Lines: user <TAB> password <TAB> what it may do.
`

// writeNewAccounts saves the accounts to show, before the password file
// is written: a run stopped between the two makes them again.
func writeNewAccounts(dir string, accounts []Account) error {
	var b strings.Builder
	b.WriteString(newAccountsHeader)
	for _, a := range accounts {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", a.User, a.Password, a.Can)
	}
	return writeSecret(filepath.Join(dir, NewAccountsFile), []byte(b.String()))
}

// readNewAccounts returns the accounts not shown yet, those whose
// password still verifies against the password file (an operator may
// have changed one since); nil when there is no such file.
func readNewAccounts(dir, passwdPath string) ([]Account, error) {
	if dir == "" {
		return nil, nil
	}
	f, err := os.Open(filepath.Join(dir, NewAccountsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	pw, err := passwd.LoadFile(passwdPath)
	if err != nil {
		return nil, err
	}
	var out []Account
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		parts := strings.SplitN(l, "\t", 3)
		if len(parts) < 2 {
			continue
		}
		a := Account{User: parts[0], Password: parts[1]}
		if len(parts) == 3 {
			a.Can = parts[2]
		}
		if pw.Verify(a.User, a.Password) {
			out = append(out, a)
		}
	}
	return out, sc.Err()
}

// Shown says the accounts of r were shown to the operator after a
// successful start: their passwords are forgotten.
func (r FirstRun) Shown() error {
	if r.dir == "" || len(r.Accounts) == 0 {
		return nil
	}
	err := os.Remove(filepath.Join(r.dir, NewAccountsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ResetPassword gives an existing user of the configuration's password
// file a new random password and returns it. A running broker or proxy
// uses it after a reload (SIGHUP or POST /reload).
func ResetPassword(cfg *guardconf.Config, user string) (string, error) {
	path := cfg.Path(cfg.Security.PasswordFile)
	if path == "" {
		return "", cfg.Errorf("security.password_file", "no password file is configured")
	}
	f, err := passwd.LoadFile(path)
	if err != nil {
		return "", err
	}
	if !f.Has(user) {
		return "", fmt.Errorf("%s has no user %q; the users are %s", path, user, strings.Join(f.Users(), ", "))
	}
	// The accounts not shown yet must not show a password that no longer
	// works: the new one replaces it there too.
	pending, _ := readNewAccounts(cfg.Dir, path)
	pw := secret(12)
	if err := f.Add(user, pw); err != nil {
		return "", err
	}
	if err := f.WriteFile(path); err != nil {
		return "", err
	}
	if pending != nil {
		a := Account{User: user, Password: pw}
		for _, p := range pending {
			if p.User == user {
				a.Can = p.Can
			}
		}
		if err := writeNewAccounts(cfg.Dir, append(filterOut(pending, user), a)); err != nil {
			return "", err
		}
	}
	return pw, nil
}

func filterOut(as []Account, user string) []Account {
	out := as[:0]
	for _, a := range as {
		if a.User != user {
			out = append(out, a)
		}
	}
	return out
}

// Accounts lists the users of the configuration's password file, with
// their passwords while a start has not shown them yet ("" after).
func Accounts(cfg *guardconf.Config) ([]Account, error) {
	path := cfg.Path(cfg.Security.PasswordFile)
	if path == "" {
		return nil, cfg.Errorf("security.password_file", "no password file is configured")
	}
	f, err := passwd.LoadFile(path)
	if err != nil {
		return nil, err
	}
	shown := map[string]Account{}
	if pending, err := readNewAccounts(cfg.Dir, path); err == nil {
		for _, a := range pending {
			shown[a.User] = a
		}
	}
	var out []Account
	for _, u := range f.Users() {
		a, ok := shown[u]
		if !ok {
			a = Account{User: u}
		}
		out = append(out, a)
	}
	return out, nil
}

// writeSecret writes a file only its owner may read.
func writeSecret(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // WriteFile keeps the mode of a file that existed
}

// PrintResetPassword is a command's -reset-password: a new password for
// user, printed with what to do next. program names the command
// ("broker", "proxy").
func PrintResetPassword(w io.Writer, cfg *guardconf.Config, user, program string) error {
	pw, err := ResetPassword(cfg, user)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "New password for %s: %s\n", user, pw)
	fmt.Fprintf(w, "Saved (as a hash) in %s. A running %s uses it after a reload: kill -HUP its process, or POST /reload on its admin API.\n",
		cfg.Path(cfg.Security.PasswordFile), program)
	return nil
}

// PrintAccounts is a command's -print-accounts: the users of the
// password file, with the first run's passwords while no start has shown
// them. command is how to run the program ("go run ./examples/broker").
func PrintAccounts(w io.Writer, cfg *guardconf.Config, command string) error {
	accounts, err := Accounts(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Users in %s:\n", cfg.Path(cfg.Security.PasswordFile))
	hidden := false
	for _, a := range accounts {
		switch {
		case a.Password != "":
			fmt.Fprintf(w, "  %-10s %s   %s\n", a.User, a.Password, a.Can)
		default:
			fmt.Fprintf(w, "  %-10s (only its hash is kept)\n", a.User)
			hidden = true
		}
	}
	if hidden {
		fmt.Fprintf(w, "A password shown once cannot be shown again: %s -reset-password USER makes a new one.\n", command)
	}
	return nil
}
