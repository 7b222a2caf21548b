//go:build cgo && mosquittobench

package bench

import (
	"testing"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/bench/internal/mosqc"
)

func init() {
	matchImpls["mosquitto"] = func(b *testing.B, vectors [][2]string) {
		filters := make([]string, len(vectors))
		topics := make([]string, len(vectors))
		for i, v := range vectors {
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
	for _, set := range matchSets {
		filters := make([]string, len(set.vectors))
		topics := make([]string, len(set.vectors))
		ours := 0
		for i, v := range set.vectors {
			filters[i], topics[i] = v[0], v[1]
			if acl.Match(v[0], v[1]) {
				ours++
			}
		}
		v := mosqc.NewVectors(filters, topics)
		if got := v.Loop(1); got != ours {
			t.Errorf("%s: mosquitto matched %d vectors, mqttguard %d", set.name, got, ours)
		}
		v.Free()
	}
}
