package mochiguard

import (
	"bytes"
	"reflect"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Flow control toward a client: its Receive Maximum [MQTT-3.3.4-9].
//
// mochi-mqtt 2.7.9 honours a client's Receive Maximum by parking
// deliveries past it in the client's in-flight store and sending one
// each time the client's connection has processed a packet
// (Inflight.NextImmediate). That path takes the store's read lock twice
// (NextImmediate, then GetAll), and a publisher waiting for the write
// lock in between deadlocks the client, its publishers and mochi's
// event loop for good: a client with a Receive Maximum, a PING flood and
// QoS 1 traffic hang the broker. The hook turns mochi's quota off
// (ResetSendQuota(0), after mochi sets it at CONNECT and again when it
// hands a session over), so that path is never taken, and honours the
// Receive Maximum itself as each QoS 1 and 2 PUBLISH is written: the
// connection's writer waits for an acknowledgement when the client has
// as many unacknowledged as it allows. Only that client's writes wait;
// what queues behind them is bounded by mochi's pending writes, past
// which mochi drops.

// flowWait bounds how long a delivery waits for the client to free a
// slot: a client that never acknowledges is sent the rest anyway (and
// may disconnect with 0x93, as MQTT tells it to) rather than holding
// its writer forever.
const flowWait = 30 * time.Second

// flow is one connection's window.
type flow struct {
	slots chan struct{} // nil: the client set no Receive Maximum
}

func newFlow(receiveMaximum uint16) flow {
	if receiveMaximum == 0 {
		return flow{}
	}
	return flow{slots: make(chan struct{}, receiveMaximum)}
}

// take waits for a slot for a QoS 1 or 2 delivery to cl.
func (f flow) take(cl *mqtt.Client) {
	if f.slots == nil {
		return
	}
	select {
	case f.slots <- struct{}{}:
		return
	default:
	}
	// The deliveries that hold the slots may not be out: mochi gathers a
	// busy client's packets and writes them when the gathered bytes
	// reach ClientNetWriteBufferSize or its queue is empty. Waiting for
	// their acknowledgements before they are sent would wait flowWait
	// each time (a client with Receive Maximum 1 got nothing under a
	// steady load).
	flushGathered(cl)
	deadline := time.NewTimer(flowWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case f.slots <- struct{}{}:
			return
		case <-deadline.C:
			return
		case <-tick.C:
			if cl.Closed() {
				return
			}
		}
	}
}

// gatheredField is the index of mochi's write buffer (the packets it
// gathers for one write) in its ClientConnection, or nil.
var gatheredField = func() []int {
	f, ok := reflect.TypeFor[mqtt.ClientConnection]().FieldByName("outbuf")
	if !ok || f.Type != reflect.TypeFor[*bytes.Buffer]() {
		return nil
	}
	return f.Index
}()

// flushGathered writes what mochi has gathered for cl, under the
// client's lock, as mochi does. mochi has no call for it: the buffer is
// reached through reflect (TestGatheredIsFound fails first if a release
// renames it).
func flushGathered(cl *mqtt.Client) {
	if gatheredField == nil || cl.Net.Conn == nil {
		return
	}
	cl.Lock()
	defer cl.Unlock()
	v := reflect.ValueOf(&cl.Net).Elem().FieldByIndex(gatheredField)
	if v.IsNil() {
		return
	}
	if buf := (*bytes.Buffer)(v.UnsafePointer()); buf.Len() > 0 {
		buf.WriteTo(cl.Net.Conn) // drains it; mochi appends to it, or drops it, next
	}
}

// give frees a slot: the client acknowledged a delivery.
func (f flow) give() {
	if f.slots == nil {
		return
	}
	select {
	case <-f.slots:
	default:
	}
}

// acked frees the slot of the delivery an acknowledgement from the
// client ends: a PUBACK, a PUBCOMP, or a PUBREC that refuses.
func (h *Hook) acked(cl *mqtt.Client, pk *packets.Packet) {
	s := h.session(cl)
	if s == nil {
		return
	}
	switch pk.FixedHeader.Type {
	case packets.Puback, packets.Pubcomp:
	case packets.Pubrec:
		if pk.ReasonCode < 0x80 {
			return // the flow goes on to PUBREL and PUBCOMP
		}
	default:
		return
	}
	if _, ok := cl.State.Inflight.Get(pk.PacketID); ok {
		s.flow.give()
	}
}

// connackFirst holds a PUBLISH until the connection's CONNACK is out:
// mochi adds a client where publishers find it before it writes its
// CONNACK, and a delivery could otherwise go first [MQTT-3.2.0-1].
func (s *session) connackFirst() {
	select {
	case <-s.connacked:
	default:
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-s.connacked:
		case <-t.C:
		}
	}
}
