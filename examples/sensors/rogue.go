package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// Rogue is a compromised device with valid credentials. It tries, in
// turn, what attackers on MQTT fleets try, each attack under a client ID
// of its own, and says what the broker did:
//
//  1. topics it may not publish to: another sensor's readings, the
//     aggregator's alerts, another device's commands;
//  2. wildcard client IDs ("#", "+"), hoping an ACL pattern with %c
//     expands to a wildcard that reads every device's commands;
//  3. reporting too often: a temperature reading every 100 ms where the
//     fleet's profile says every 2 s, until the broker disconnects it;
//  4. a flood, QoS 0 as fast as the connection goes, under a fresh
//     client ID: rotating client IDs does not wipe the slate, the
//     violations count against the username too, so the broker
//     refuses it at CONNECT (or, if attack 3 stopped short, ends the
//     flood);
//  5. coming back after all that, with three ordinary readings.
//
// The attacks go from the least punished to the most, so that each of
// the first three meets its own defence before the account is shut out.
type Rogue struct {
	Account  account
	TooOften int           // readings in attack 1
	FloodFor time.Duration // longest the flood goes on
	Out      io.Writer     // one line per outcome (Demo.Run sets it)
	// Received counts the rogue's readings that reached the aggregator.
	Received func() int

	// The outcomes, for a test: how attacks 1 and 4 ended (the broker's
	// DISCONNECT code, 0 if the rogue stopped first) and what reached
	// the aggregator; the SUBACK or CONNACK code per wildcard client ID;
	// the PUBACK code per forbidden topic; attack 5's CONNACK code (0:
	// it connected) and what of it reached the aggregator.
	TooOftenSent, TooOftenReceived int
	TooOftenEnd                    byte
	Wildcard                       map[string]byte
	Forbidden                      map[string]byte
	FloodSent, FloodReceived       int
	FloodEnd                       byte
	Comeback                       byte
	ComebackAcked, ComebackRecvd   int
}

func (r *Rogue) say(format string, args ...any) {
	fmt.Fprintf(r.Out, "rogue: "+format+"\n", args...)
}

// settle lets what the broker passed on reach the aggregator.
const settle = 300 * time.Millisecond

// run goes through the attacks; it stops early when ctx ends.
func (r *Rogue) run(ctx context.Context, addr string, tc *tls.Config) {
	r.Wildcard, r.Forbidden = map[string]byte{}, map[string]byte{}
	r.forbidden(ctx, addr, tc)
	for _, id := range []string{"#", "+"} {
		r.Wildcard[id] = r.wildcard(ctx, addr, tc, id)
	}
	before := r.Received()
	r.TooOftenSent, r.TooOftenEnd = r.publishLoop(ctx, addr, tc, "rogue-1", "sensors/temperature/rogue-1", 1, r.TooOften, 100*time.Millisecond)
	time.Sleep(settle)
	r.TooOftenReceived = r.Received() - before
	r.say("too often: %d readings 100 ms apart (the profile says 2 s ± 1 s), %d delivered; %s",
		r.TooOftenSent, r.TooOftenReceived, ending(r.TooOftenEnd))
	before = r.Received()
	r.FloodSent, r.FloodEnd = r.publishLoop(ctx, addr, tc, "rogue-1-flood", "sensors/motion/rogue-1", 0, 1<<30, 0)
	time.Sleep(settle)
	r.FloodReceived = r.Received() - before
	if r.FloodSent > 0 {
		r.say("flood: %d QoS 0 messages as fast as it could, %d delivered; %s", r.FloodSent, r.FloodReceived, ending(r.FloodEnd))
	} // else publishLoop said why it could not connect
	r.comeback(ctx, addr, tc)
}

// comeback connects as rogue-1 again and publishes three readings.
func (r *Rogue) comeback(ctx context.Context, addr string, tc *tls.Config) {
	c, err := dial(ctx, addr, tc, "rogue-1", r.Account, nil)
	if err != nil {
		r.Comeback = refusedCode(err)
		r.say("come back as rogue-1: %v", err)
		return
	}
	defer c.Disconnect(&paho.Disconnect{})
	before := r.Received()
	for range 3 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, _ := c.Publish(pctx, &paho.Publish{Topic: "sensors/motion/rogue-1", QoS: 1, Payload: []byte(`{"device":"rogue-1","kind":"motion","motion":false}`)})
		cancel()
		if res != nil && res.ReasonCode < 0x80 {
			r.ComebackAcked++
		}
	}
	time.Sleep(settle)
	r.ComebackRecvd = r.Received() - before
	r.say("come back as rogue-1: connected; 3 readings, %d acknowledged, %d delivered", r.ComebackAcked, r.ComebackRecvd)
}

func ending(code byte) string {
	if code == 0 {
		return "it stopped on its own"
	}
	return "the broker disconnected it: " + reason(code)
}

// wildcard connects with a wildcard client ID and subscribes to
// commands/#: the SUBACK's code, or the CONNACK's if it was refused.
func (r *Rogue) wildcard(ctx context.Context, addr string, tc *tls.Config, id string) byte {
	c, err := dial(ctx, addr, tc, id, r.Account, nil)
	if err != nil {
		r.say("client ID %q: %v", id, err)
		return refusedCode(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "commands/#", QoS: 1}}})
	if sa == nil {
		r.say("client ID %q: subscribe commands/#: %v", id, err)
		return 0
	}
	r.say("client ID %q: subscribe commands/# (every device's commands): %s", id, reason(sa.Reasons[0]))
	return sa.Reasons[0]
}

// forbidden publishes where the rogue may not.
func (r *Rogue) forbidden(ctx context.Context, addr string, tc *tls.Config) {
	c, err := dial(ctx, addr, tc, "rogue-1-spoof", r.Account, nil)
	if err != nil {
		r.say("forbidden topics: %v", err)
		return
	}
	defer c.Disconnect(&paho.Disconnect{})
	for _, topic := range []string{"sensors/door/door-1", "alerts/critical", "commands/temp-1/reboot"} {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := c.Publish(pctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(`{"device":"door-1","kind":"door","open":false}`)})
		cancel()
		if res == nil {
			r.say("publish to %s: %v", topic, err)
			return
		}
		r.Forbidden[topic] = res.ReasonCode
		r.say("publish to %s: %s", topic, reason(res.ReasonCode))
	}
}

// publishLoop publishes n messages, every gap (0: no pause), until the
// broker ends the connection or r.FloodFor passes; it returns how many
// went out and the broker's DISCONNECT code.
func (r *Rogue) publishLoop(ctx context.Context, addr string, tc *tls.Config, id, topic string, qos byte, n int, gap time.Duration) (int, byte) {
	c, err := dial(ctx, addr, tc, id, r.Account, nil)
	if err != nil {
		r.say("%s: %v", id, err)
		return 0, refusedCode(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	deadline := time.Now().Add(r.FloodFor)
	payload := []byte(`{"device":"rogue-1","kind":"temperature","celsius":20}`)
	if qos == 0 {
		payload = []byte(`{"device":"rogue-1","kind":"motion","motion":true}`)
	}
	sent := 0
	for ; sent < n && time.Now().Before(deadline) && ctx.Err() == nil; sent++ {
		if len(c.gone) > 0 {
			return sent, c.ended(200 * time.Millisecond)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := c.Publish(pctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
		cancel()
		if err != nil && res == nil { // a refusal in a PUBACK is an answer; no answer is the end
			break
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	return sent, c.ended(200 * time.Millisecond)
}
