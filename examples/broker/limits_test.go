package main

import (
	"fmt"
	"testing"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client holds at most 1,000 filters (by default): the next gets SUBACK
// 0x97 (0x80 in MQTT 3.1.1); a filter it holds may be subscribed again,
// and an UNSUBSCRIBE frees room. (An authenticated client sending 19,200
// distinct filters took 123 MiB.)
func TestSubscriptionQuota(t *testing.T) {
	tb := startBob(t, noFlap)
	for _, v := range versions() {
		t.Run(v.String(), func(t *testing.T) {
			c := login(t, tb, v, user("many-"+v.String(), "bob"))
			subscribeMany(t, c, 0, 1000)
			next := c.Subscribe(e2e.RawSub{Filter: "bob/one-too-many"}, e2e.RawSub{Filter: "bob/f/0"})
			want := byte(0x97)
			if v != packets.V5 {
				want = 0x80
			}
			assert.Equal(t, []byte{want, 0}, next, "past the quota; a filter it holds is fine")
			c.Unsubscribe("bob/f/1")
			assert.Equal(t, []byte{0}, c.Subscribe(e2e.RawSub{Filter: "bob/one-too-many"}), "room again")
		})
	}
}

// subscribeMany subscribes to bob/f/from … bob/f/to-1, 50 a SUBSCRIBE,
// each granted.
func subscribeMany(t *testing.T, c *e2e.Raw, from, to int) {
	t.Helper()
	for i := from; i < to; i += 50 {
		var subs []e2e.RawSub
		for j := i; j < min(i+50, to); j++ {
			subs = append(subs, e2e.RawSub{Filter: fmt.Sprint("bob/f/", j)})
		}
		for _, code := range c.Subscribe(subs...) {
			require.Less(t, code, byte(0x80))
		}
	}
}
