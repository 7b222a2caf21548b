package mochiguard

import (
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Publishers wait for a subscriber that is reading, instead of losing
// its messages.
//
// mochi hands each delivery to the subscriber's outbound queue (a
// channel of MaximumClientWritesPending packets, written out by one
// goroutine) and drops it, at any QoS, when that queue is full. Every
// publisher has a goroutine of its own, so a hundred publishers
// outrun the one writer of a subscriber they share by far: on 2 cores,
// 100 → 1 at QoS 0 lost 76–90% of the messages, to a subscriber that
// mosquitto serves at 187,000 a second without losing one. mosquitto
// loses nothing because one thread both reads the publishers and writes
// the subscriber, so it never reads faster than it writes.
//
// The hook does the same for each delivery, in the publisher's
// goroutine (OnACLCheck, just before mochi queues it): when the
// subscriber's queue is three quarters full, the publisher waits until
// the subscriber's writer has brought it down to half, and stops
// reading its own connection meanwhile (TCP slows it down in turn).
// The bound on what a subscriber makes the broker hold is unchanged:
// the queue's length.
//
// A subscriber that does not read must not stall the publishers of
// every topic it may read: a wait lasts at most Options.DeliveryWait.
// A subscriber whose queue did not drain in that time is congested: no
// delivery waits for it again, and mochi drops what does not fit, until
// its queue is back at half. So a subscriber that stops reading costs
// each publisher sending it messages one wait, once per time it fills
// its queue.
//
// The queue's length is read from mochi's client through reflect
// (mochi has no accessor for it); if a mochi release renames it,
// queueLength finds nothing, and deliveries are not paced (the test
// TestQueueLengthIsFound fails first).

// queueField is the index of mochi's outbound queue in its ClientState,
// or nil.
var queueField = func() []int {
	f, ok := reflect.TypeFor[mqtt.ClientState]().FieldByName("outbound")
	if !ok || f.Type != reflect.TypeFor[chan *packets.Packet]() {
		return nil
	}
	return f.Index
}()

// queueLength is the number of packets waiting in cl's outbound queue,
// and its capacity.
func queueLength(cl *mqtt.Client) (n, capacity int) {
	if queueField == nil {
		return 0, 0
	}
	q := reflect.ValueOf(&cl.State).Elem().FieldByIndex(queueField)
	return q.Len(), q.Cap()
}

// pacing is a session's side of the wait: publishers waiting for its
// queue to drain, and whether it is congested.
type pacing struct {
	waiting   atomic.Int32
	congested atomic.Bool
	mu        sync.Mutex
	room      chan struct{} // closed when the queue is back at half
}

// roomChan is the channel the next drain closes.
func (p *pacing) roomChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.room == nil {
		p.room = make(chan struct{})
	}
	return p.room
}

// drained wakes every waiting publisher.
func (p *pacing) drained() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// pace waits, in a publisher's goroutine, until cl's queue has room for
// one more delivery, cl is congested or gone.
func (h *Hook) pace(cl *mqtt.Client, s *session) {
	n, capacity := queueLength(cl)
	p := &s.pacing
	if h.deliveryWait <= 0 || n < capacity*3/4 || cl.Net.Inline || p.congested.Load() {
		return
	}
	timer := time.NewTimer(h.deliveryWait)
	defer timer.Stop()
	for {
		room := p.roomChan()
		p.waiting.Add(1)
		// Looked at again after counting in: a drain between the first
		// look and now did not know to wake this one.
		n, _ = queueLength(cl)
		if n < capacity*3/4 || cl.Closed() {
			p.waiting.Add(-1)
			return
		}
		select {
		case <-room:
			// The queue went from three quarters to half within
			// deliveryWait: the subscriber reads. Other publishers
			// woken with this one may have filled it again.
			p.waiting.Add(-1)
			timer.Reset(h.deliveryWait)
		case <-timer.C:
			p.waiting.Add(-1)
			p.congested.Store(true)
			return
		}
	}
}

// written is called by cl's writer for each PUBLISH it takes from the
// queue: once the queue is back at half, the waiting publishers go on,
// and a congested subscriber is waited for again.
func (h *Hook) written(cl *mqtt.Client, s *session) {
	p := &s.pacing
	if p.waiting.Load() == 0 && !p.congested.Load() {
		return
	}
	if n, capacity := queueLength(cl); n > capacity/2 {
		return
	}
	p.congested.Store(false)
	p.drained()
}
