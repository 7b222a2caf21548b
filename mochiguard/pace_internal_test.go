package mochiguard

import "testing"

// TestQueueLengthIsFound: pacing reads mochi's outbound queue by name;
// a mochi release that renames it must fail here, not silently stop
// pacing.
func TestQueueLengthIsFound(t *testing.T) {
	if queueField == nil {
		t.Fatal("mochi's ClientState has no outbound chan *packets.Packet: deliveries are not paced (pace.go)")
	}
}
