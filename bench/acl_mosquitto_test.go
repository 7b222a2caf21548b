//go:build cgo && mosquittobench

package bench

import (
	"testing"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/bench/internal/mosqc"
)

func init() {
	matchImpls["mosquitto"] = func(b *testing.B) {
		filters := make([]string, len(matchVectors))
		topics := make([]string, len(matchVectors))
		for i, v := range matchVectors {
			filters[i], topics[i] = v[0], v[1]
		}
		v := mosqc.NewVectors(filters, topics)
		defer v.Free()
		b.ResetTimer()
		sink = v.Loop(b.N)
	}
}

// TestMosquittoMatcherAgrees makes sure the two matchers answer the same
// on the benchmark's vectors, so the timing compares like with like.
func TestMosquittoMatcherAgrees(t *testing.T) {
	filters := make([]string, len(matchVectors))
	topics := make([]string, len(matchVectors))
	ours := 0
	for i, v := range matchVectors {
		filters[i], topics[i] = v[0], v[1]
		if acl.Match(v[0], v[1]) {
			ours++
		}
	}
	v := mosqc.NewVectors(filters, topics)
	defer v.Free()
	if got := v.Loop(1); got != ours {
		t.Fatalf("mosquitto matched %d vectors, mqttguard %d", got, ours)
	}
}
