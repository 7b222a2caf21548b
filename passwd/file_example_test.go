package passwd_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mqttguard/mqttguard/passwd"
)

// writeFile makes a password file as mosquitto_passwd would (with few
// iterations, for a quick example).
func writeFile(path string, users ...string) {
	f := passwd.New()
	f.Iterations = 1000
	for i := 0; i+1 < len(users); i += 2 {
		f.Add(users[i], users[i+1])
	}
	f.WriteFile(path)
}

func ExampleLoadFile() {
	dir, _ := os.MkdirTemp("", "passwd-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "passwd")
	writeFile(path, "alice", "secret", "bob", "hunter2")

	f, err := passwd.LoadFile(path) // a file mosquitto_passwd wrote works as well
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Users(), f.Verify("alice", "secret"), f.Verify("bob", "secret"))

	_, err = passwd.LoadFile(filepath.Join(dir, "missing"))
	var pe *passwd.ParseError
	fmt.Println(errors.As(err, &pe), pe.Source == filepath.Join(dir, "missing"))
	// Output:
	// [alice bob] true false
	// true true
}

// A Holder is what a broker checks passwords against: Reload swaps in a
// new file atomically under live connections, and a file that does not
// load leaves the old one in force.
func ExampleHolder() {
	dir, _ := os.MkdirTemp("", "passwd-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "passwd")
	writeFile(path, "alice", "secret")
	f, _ := passwd.LoadFile(path)
	h := passwd.NewHolder(f)
	fmt.Println("alice:", h.Verify("alice", "secret"))

	writeFile(path, "alice", "changed") // the operator changes the password, then SIGHUP
	fmt.Println("reload:", h.Reload(path), "- old:", h.Verify("alice", "secret"), "new:", h.Verify("alice", "changed"))

	os.WriteFile(path, []byte("alice:not a hash\n"), 0o600) // a bad edit
	fmt.Println("reload failed:", h.Reload(path) != nil, "- still in force:", h.Verify("alice", "changed"))
	// Output:
	// alice: true
	// reload: <nil> - old: false new: true
	// reload failed: true - still in force: true
}
