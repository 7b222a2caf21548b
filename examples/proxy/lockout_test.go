package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/examples/internal/e2e"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The proxy decides CONNECTs with the same Guard as the broker; these
// are the broker's lockout attacks (examples/broker/lockout_test.go),
// shortened, against the proxy: guesses and impostors from 127.0.0.2
// ban that address only, and the victim behind its own address keeps
// publishing to mosquitto.
func TestProxyGuessingLocksOutOnlyTheGuesser(t *testing.T) {
	tp := startProxy(t, func(c *guardconf.Config) {
		c.Security.AuthFailures = guardconf.AuthFailuresConfig{Free: 5, Delay: time.Millisecond, MaxDelay: 20 * time.Millisecond, BanAfter: 50}
	})
	watcher := tp.raw(t, "watcher")
	watcher.Sub(t, "sensors/#")
	victim := e2e.DialRawFrom(t, tp.Addr("tcp"), "127.0.0.3", packets.V5)
	victim.Send(victim.ConnectPacket(e2e.RawOpts{ID: "sensor1", User: "sensor1", Pass: passwords["sensor1"]}))
	require.Equal(t, reason.Success, victim.Expect(packets.CONNACK).ReasonCode)

	var mu sync.Mutex
	codes := map[byte]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				o := e2e.RawOpts{ID: "sensor1", User: "sensor1", Pass: fmt.Sprint("guess-", w, "-", i)}
				if i%2 == 1 {
					o = e2e.RawOpts{ID: "sensor1"} // anonymous, the victim's client ID
				}
				code, err := e2e.TryConnect(tp.Addr("tcp"), "127.0.0.2", o)
				mu.Lock()
				if err == nil {
					codes[code]++
				} else {
					codes[0xFF]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := 0; codes[0x8A] == 0 && i < 2000; i++ { // then one at a time, each in its turn, until banned
		code, err := e2e.TryConnect(tp.Addr("tcp"), "127.0.0.2", e2e.RawOpts{ID: "sensor1", User: "sensor1", Pass: fmt.Sprint("more-", i)})
		require.NoError(t, err)
		codes[code]++
	}
	t.Logf("the guesser's CONNACKs: %v", codes)
	assert.Zero(t, codes[0xFF], "every attempt answered")
	assert.Zero(t, codes[0])
	assert.Positive(t, codes[0x8A], "the guessing address is banned")

	assert.Equal(t, reason.Success, victim.Publish("sensors/sensor1/t", "still here", 1, false).ReasonCode, "not kicked")
	again := e2e.DialRawFrom(t, tp.Addr("tcp"), "127.0.0.3", packets.V5)
	again.Send(again.ConnectPacket(e2e.RawOpts{ID: "sensor1-b", User: "sensor1", Pass: passwords["sensor1"]}))
	require.Equal(t, reason.Success, again.Expect(packets.CONNACK).ReasonCode, "not refused")
	got := watcher.Received(time.Second)
	assert.Contains(t, got, "sensors/sensor1/t still here")
	code, body := tp.Admin(t, "GET", "/trust", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "[]", body[:2], "nobody punished: %s", body)
}
