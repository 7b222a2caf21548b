package bench

import (
	"testing"

	"github.com/mqttguard/mqttguard/passwd"
)

// BenchmarkPasswdVerify: the cost of one CONNECT's password check at
// mosquitto 2.0's default (101 iterations) and 2.1's (210,000), and for an
// unknown user, which must cost the same as a wrong password (no timing
// oracle for usernames).
func BenchmarkPasswdVerify(b *testing.B) {
	for _, it := range []int{101, passwd.DefaultIterations} {
		f := passwd.New()
		f.Iterations = it
		if err := f.Add("alice", "secret"); err != nil {
			b.Fatal(err)
		}
		name := "iterations=101"
		if it != 101 {
			name = "iterations=210000"
		}
		b.Run(name+"/user=known-wrong-password/impl=mqttguard", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f.Verify("alice", "wrong")
			}
		})
		b.Run(name+"/user=unknown/impl=mqttguard", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f.Verify("mallory", "wrong")
			}
		})
	}
}
