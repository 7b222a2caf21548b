package mochiguard

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
)

// Wills.
//
// mochi publishes a will without any check (OnWill can change it, not
// stop it: an error is only logged), so a refused will is redirected to
// droppedWill, which nobody receives. A will with a delay (MQTT 5 Will
// Delay Interval) mochi keeps to itself and publishes when the delay is
// over without asking anyone again — though a ban or an ACL reload in
// between should stop it. So the hook keeps delayed wills itself: mochi
// gets the dropped one, and when the delay (or the session, if it ends
// first) is over the Guard decides the real one as it would go out, and
// the hook publishes it. A connection that resumes the session within
// the delay cancels it [MQTT-3.1.3-9]; one that does not (another
// identity, or a clean start) ends the session, and the will goes out
// then [MQTT-3.1.2-8].

func (h *Hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	dropped := mqtt.Will{TopicName: droppedWill}
	s := h.session(cl)
	if s == nil {
		return dropped, nil
	}
	if will.WillDelayInterval > 0 {
		// mochi delays a will with an interval whatever else happens,
		// and sends it without asking again, stamped with an expiry the
		// delivery gate then refuses: the hook keeps every such will.
		delay := willDelay(cl, will)
		switch {
		case s.superseded.Load() == supersededResumed:
			return dropped, nil // a new connection to the session within the delay [MQTT-3.1.3-9]
		case delay > 0 && s.superseded.Load() == 0:
			h.wills.schedule(cl.ID, s, will, delay)
		case h.willAllowed(&s.c, will): // the session ends now: so does the wait
			h.publishWill(will)
		}
		return dropped, nil
	}
	if !h.willAllowed(&s.c, will) {
		return dropped, nil
	}
	return will, nil
}

func (h *Hook) willAllowed(c *mqttguard.Client, will mqtt.Will) bool {
	d := h.g.Disconnect(c, &mqttguard.Message{Topic: will.TopicName, Payload: will.Payload,
		QoS: will.Qos, Retain: will.Retain}, time.Now())
	return d.Verdict == mqttguard.Allow
}

// willDelay is how long a will waits: its Will Delay Interval, or the
// Session Expiry Interval if the session ends first (0: it ends now,
// and so does the wait).
func willDelay(cl *mqtt.Client, will mqtt.Will) time.Duration {
	if will.WillDelayInterval == 0 {
		return 0
	}
	return time.Duration(min(will.WillDelayInterval, cl.Properties.Props.SessionExpiryInterval)) * time.Second
}

// delayedWills are the wills waiting for their delay, one per client ID
// at most (a later connection settles the earlier one's). Close stops
// them; none fires after it returns.
type delayedWills struct {
	h       *Hook
	mu      sync.Mutex
	pending map[string]*delayedWill
	closed  bool
	firing  sync.WaitGroup
}

type delayedWill struct {
	client mqttguard.Client
	owner  owner
	will   mqtt.Will
	timer  *time.Timer
}

func (w *delayedWills) schedule(id string, s *session, will mqtt.Will, delay time.Duration) {
	dw := &delayedWill{client: s.c, owner: s.owner, will: will}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.pending == nil {
		w.pending = map[string]*delayedWill{}
	}
	if old := w.pending[id]; old != nil {
		old.timer.Stop()
	}
	w.pending[id] = dw
	dw.timer = time.AfterFunc(delay, func() { w.fire(id, dw) })
}

// reconnected settles the pending will of a client ID that has just
// connected again: cancelled if the connection resumes the session,
// sent now (if the Guard allows it) if the session ended.
func (w *delayedWills) reconnected(id string, o owner, resumes bool) {
	w.mu.Lock()
	dw := w.pending[id]
	w.mu.Unlock()
	if dw == nil {
		return
	}
	if resumes && dw.owner == o {
		w.mu.Lock()
		if w.pending[id] == dw {
			dw.timer.Stop()
			delete(w.pending, id)
		}
		w.mu.Unlock()
		return
	}
	w.fire(id, dw)
}

// fire sends dw if it is still the pending will of id and the Guard
// allows it now.
func (w *delayedWills) fire(id string, dw *delayedWill) {
	w.mu.Lock()
	if w.closed || w.pending[id] != dw {
		w.mu.Unlock()
		return
	}
	dw.timer.Stop()
	delete(w.pending, id)
	w.firing.Add(1)
	w.mu.Unlock()
	defer w.firing.Done()
	if !w.h.willAllowed(&dw.client, dw.will) {
		return
	}
	w.h.publishWill(dw.will)
}

func (w *delayedWills) close() {
	w.mu.Lock()
	w.closed = true
	for _, dw := range w.pending {
		dw.timer.Stop()
	}
	w.pending = nil
	w.mu.Unlock()
	w.firing.Wait()
}

// publishWill publishes a will as the broker: through an inline client,
// which mochi does not check and OnPublish lets through (the Guard has
// just decided), with the will's user properties.
func (h *Hook) publishWill(will mqtt.Will) {
	h.inlineOnce.Do(func() { h.inline = h.srv.NewClient(nil, "local", "mqttguard-wills", true) })
	err := h.srv.InjectPacket(h.inline, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: will.Qos, Retain: will.Retain},
		TopicName:   will.TopicName,
		Payload:     will.Payload,
		Properties:  packets.Properties{User: will.User},
		PacketID:    uint16(will.Qos), // an inline client's identifiers are never used, but QoS 1 and 2 need one
		Created:     time.Now().Unix(),
	})
	if err != nil {
		h.srv.Log.Error("a delayed will could not be published", "topic", will.TopicName, "error", err)
	}
}
