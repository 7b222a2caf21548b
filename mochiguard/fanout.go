package mochiguard

import (
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// fanoutCache remembers how many subscribers a topic has, for a second:
// counting them walks mochi's topic index and allocates four maps, as
// much work as delivering the message, and the fan-out cost only needs
// the order of magnitude (1–10, 11–100, …). Every PUBLISH reads it, so
// reads take no lock (sync.Map); a topic is written once a second.
type fanoutCache struct {
	m sync.Map     // topic → fanoutEntry
	n atomic.Int64 // entries, roughly: bounds the map
}

type fanoutEntry struct {
	n  int
	at time.Time
}

const fanoutCacheMax = 1 << 16

func (f *fanoutCache) subscribers(srv *mqtt.Server, topic string, now time.Time) int {
	if v, ok := f.m.Load(topic); ok {
		if e := v.(fanoutEntry); now.Sub(e.at) < time.Second {
			return e.n
		}
	}
	subs := srv.Topics.Subscribers(topic)
	n := len(subs.Subscriptions) + len(subs.Shared)
	if _, loaded := f.m.Swap(topic, fanoutEntry{n: n, at: now}); !loaded && f.n.Add(1) > fanoutCacheMax {
		f.m.Clear() // a flood of topics: start over rather than grow
		f.n.Store(0)
	}
	return n
}
