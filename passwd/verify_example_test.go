package passwd_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/passwd"
)

// A broker checks a CONNECT's password with a deadline: a success is
// remembered for a while (a device reconnecting in a loop costs one
// hash), and when every hashing slot stays busy past the deadline the
// answer is ErrBusy — refuse with "server busy" rather than late.
func ExampleHolder_VerifyContext() {
	f := passwd.New()
	f.Iterations = 1000 // the default, 210,000, is what you want in production
	f.Add("sensor-1", "s3cret")
	h := passwd.NewHolderWithLimits(f, passwd.VerifyLimits{Concurrency: 2, CacheFor: 5 * time.Minute})

	connect := func(user, pass string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ok, err := h.VerifyContext(ctx, user, pass)
		switch {
		case errors.Is(err, passwd.ErrBusy):
			fmt.Println(user, "CONNACK 0x89 server busy")
		case !ok:
			fmt.Println(user, "CONNACK 0x86 bad username or password")
		default:
			fmt.Println(user, "CONNACK 0x00")
		}
	}
	connect("sensor-1", "s3cret")
	connect("sensor-1", "s3cret") // remembered: no hash
	connect("sensor-1", "guess")  // never remembered: a hash every time
	connect("mallory", "s3cret")  // the same work as a wrong password
	st := h.VerifyStats()
	fmt.Printf("hashes %d, cache hits %d\n", st.Hashes, st.CacheHits)
	// Output:
	// sensor-1 CONNACK 0x00
	// sensor-1 CONNACK 0x00
	// sensor-1 CONNACK 0x86 bad username or password
	// mallory CONNACK 0x86 bad username or password
	// hashes 3, cache hits 1
}
