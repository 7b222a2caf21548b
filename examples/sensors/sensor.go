package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// sensorStats are a sensor's counts: the aggregator's counts are
// compared against Acked to show nothing a good device sent was lost.
type sensorStats struct {
	Sent, Acked, Refused atomic.Int64
	Err                  atomic.Value // string: why it stopped early
}

// runSensor publishes d's readings at QoS 1 every d.Interval until ctx
// ends; it connects as d.ID with its own account and reconnects after a
// dropped connection.
func runSensor(ctx context.Context, addr string, tc *tls.Config, d *Device, a account, seed uint64, st *sensorStats) {
	rng := rand.New(rand.NewPCG(seed, 0x5e5))
	var c *client
	defer func() {
		if c != nil {
			c.Disconnect(&paho.Disconnect{})
		}
	}()
	// Each reading is due an interval after the last one went out, not
	// on a ticker started before the connection: a first reading late
	// from a slow handshake and the next on the tick would arrive too
	// close together, and the broker's push-interval profile drops what
	// comes early.
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(d.Interval)
		if c == nil {
			var err error
			if c, err = dial(ctx, addr, tc, d.ID, a, nil); err != nil {
				st.Err.Store(err.Error())
				c = nil
			}
			t.Reset(d.Interval)
		}
		if c != nil {
			payload, _ := json.Marshal(d.next(rng, time.Now()))
			st.Sent.Add(1)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r, err := c.Publish(pctx, &paho.Publish{Topic: d.Topic(), QoS: 1, Payload: payload})
			cancel()
			switch {
			case err == nil && r != nil && r.ReasonCode < 0x80:
				st.Acked.Add(1)
			case r != nil:
				st.Refused.Add(1)
			default:
				if ctx.Err() == nil {
					st.Err.Store("publish: " + err.Error())
				}
				c.Disconnect(&paho.Disconnect{})
				c = nil
			}
		}
	}
}
