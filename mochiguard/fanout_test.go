package mochiguard

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	mpackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/assert"
)

func TestFanoutCache(t *testing.T) {
	srv := mqtt.New(nil)
	srv.Topics.Subscribe("a", mpackets.Subscription{Filter: "sensors/#"})
	srv.Topics.Subscribe("b", mpackets.Subscription{Filter: "sensors/+/t"})
	var f fanoutCache
	now := time.Unix(1_800_000_000, 0)
	assert.Equal(t, 2, f.subscribers(srv, "sensors/x/t", now))

	srv.Topics.Subscribe("c", mpackets.Subscription{Filter: "#"})
	assert.Equal(t, 2, f.subscribers(srv, "sensors/x/t", now.Add(999*time.Millisecond)), "counted again at most once a second")
	assert.Equal(t, 3, f.subscribers(srv, "sensors/x/t", now.Add(time.Second)))
	assert.Equal(t, 1, f.subscribers(srv, "other", now), "a topic of its own: only # matches it")

	for i := range fanoutCacheMax + 10 {
		f.subscribers(srv, fmt.Sprint("flood/", i), now)
	}
	assert.LessOrEqual(t, f.n.Load(), int64(fanoutCacheMax), "a flood of topics does not grow it without bound")
}
