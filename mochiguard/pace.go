package mochiguard

import (
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/mqttguard/mqttguard/ratelimit"
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
// the topics it may read. A wait is over when the queue has drained a
// quarter (from three quarters to half) within Options.DeliveryWait:
// with a queue of 1,024 and the 50ms default, the subscriber reads
// 5,120 messages a second or more. When it has not, the hook looks for
// why: the subscriber's writer, and what the kernel holds that the
// subscriber has not read (TIOCOUTQ on Linux).
//
//   - 256 KiB or more, or its writer has been inside one write (to
//     the socket) all along: the subscriber is slow. It is congested: no
//     delivery waits for it (mochi drops what does not fit) until it
//     writes a quarter of its queue within DeliveryWait again, or for a
//     probation of 10 waits, doubled for each wait in a row that ended
//     congested, up to 160 (8 s at 50ms).
//   - Otherwise the subscriber has read all it was sent, and it is its
//     writer that did not run. A hundred publishers with data to read
//     keep both cores busy, and the writer, a goroutine among them, can
//     wait its turn for 50 ms (measured). The publisher waits on: this
//     gives the writer the CPU. It waits 20 DeliveryWaits at most.
//
// So a subscriber that stops reading, or reads under that rate, costs
// each publisher sending it messages one wait in a probation: at most
// 50 ms in the first 500 ms, then 50 ms in 8 s (0.6%). Many such
// subscribers cost a publisher no more than the broker-wide budget of
// waits that end congested (newWaitBudget): a tenth of its time. One
// that reads faster paces the publishers of what it reads to its speed, as a fast
// subscriber paces mosquitto's single thread. Elsewhere than Linux, or
// on a connection that is not TCP, what is unread is not known and a
// queue that does not drain in time means congested. On a long fat
// network a fast subscriber can have 256 KiB in flight: it is then
// taken for slow, and loses what mochi would have dropped anyway.
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
	// writes counts the PUBLISH packets the writer took from the queue;
	// while congested, the window is where the writes since windowAt
	// (unix ns) are counted from (written).
	writes, windowWrites, windowAt atomic.Int64
	// inWrite: the writer is inside mochi's WritePacket for a PUBLISH
	// (from OnPacketEncode to OnPacketSent), where a socket that is not
	// read blocks it.
	inWrite atomic.Bool
	// probation is when a congested subscriber is tried again (unix
	// ns); strikes the waits in a row that ended congested.
	probation atomic.Int64
	strikes   atomic.Int32

	mu   sync.Mutex
	room chan struct{} // closed when the queue is back at half
}

// congest marks the subscriber congested, at now, starts the window its
// drain rate is measured over, and sets its probation.
func (p *pacing) congest(now time.Time, wait time.Duration) {
	strikes := min(p.strikes.Add(1), 5)
	p.windowAt.Store(now.UnixNano())
	p.windowWrites.Store(p.writes.Load())
	p.probation.Store(now.Add(10 * wait << (strikes - 1)).UnixNano())
	p.congested.Store(true)
}

// drains marks the subscriber as one that drains at the rate.
func (p *pacing) drains() {
	p.strikes.Store(0)
	p.congested.Store(false)
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
	if h.deliveryWait <= 0 || n < capacity*3/4 || cl.Net.Inline {
		return
	}
	start := time.Now()
	if (p.congested.Load() && start.UnixNano() < p.probation.Load()) || h.budget.Delay("", start, 1) > 0 {
		return
	}
	timer := time.NewTimer(h.deliveryWait)
	defer timer.Stop()
	giveUp := start.Add(starvedWaits * h.deliveryWait)
	writes := p.writes.Load()
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
			p.drains()
			timer.Reset(h.deliveryWait)
			writes = p.writes.Load()
		case <-timer.C:
			p.waiting.Add(-1)
			now := time.Now()
			stuck := p.inWrite.Load() && p.writes.Load() == writes // in one write all along
			if now.Before(giveUp) && !stuck && !backedUp(cl) {
				// The subscriber has read all it was sent: it is its
				// writer that did not run. Waiting gives it the CPU.
				timer.Reset(h.deliveryWait)
				writes = p.writes.Load()
				continue
			}
			h.budget.AllowN("", now, 1)
			p.congest(now, h.deliveryWait)
			return
		}
	}
}

// written is called by cl's writer for each PUBLISH it takes from the
// queue: once the queue is back at half, the waiting publishers go on;
// a congested subscriber that wrote a quarter of its queue within
// deliveryWait is waited for again.
func (h *Hook) written(cl *mqtt.Client, s *session) {
	p := &s.pacing
	p.inWrite.Store(true)
	w := p.writes.Add(1)
	congested, waiting := p.congested.Load(), p.waiting.Load() > 0
	if !congested && !waiting {
		return
	}
	n, capacity := queueLength(cl)
	if congested && w-p.windowWrites.Load() >= int64(capacity/4) {
		now := time.Now().UnixNano()
		if now-p.windowAt.Load() <= int64(h.deliveryWait) {
			p.congested.Store(false) // its strikes stay until a wait succeeds
		} else {
			p.windowAt.Store(now)
			p.windowWrites.Store(w)
		}
	}
	if waiting && n <= capacity/2 {
		p.drained()
	}
}

// starvedWaits bounds, in waits, how long a publisher waits for a
// subscriber that reads but whose writer does not run: whatever holds
// it up, a publisher does not stop reading its own connection for
// longer than that.
const starvedWaits = 20

// tcpConn finds the TCP connection under c's wrappers (the packet
// validator's, TLS).
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			return x, true
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

// backedUp says whether cl's subscriber has left a backlog in its
// socket: the subscriber is slow, not its writer starved of CPU. Not
// known (another OS, not TCP): yes.
func backedUp(cl *mqtt.Client) bool {
	n, size, ok := unsentBytes(cl.Net.Conn)
	return !ok || n >= min(unreadBacklog, size/4)
}

// unreadBacklog is the unsent bytes from which a subscriber counts as
// not keeping up: four of mochi's batched writes at the example
// broker's 64 KiB (loopback and LAN peers acknowledge one in
// microseconds), or a quarter of the socket's send queue if that is
// less (a subscriber that keeps its receive window small keeps the
// queue small: 29–66 KB unread, measured).
const unreadBacklog = 256 << 10

// newWaitBudget bounds the waits that end with a congested subscriber,
// broker-wide. Each costs the publishers that made it one wait, and a
// publisher waits for its subscribers one after the other: a hundred
// stalled subscribers of one topic would cost its publishers a hundred
// waits a probation. The budget is a tenth of the time (2 waits a
// second at 50ms), in bursts of 4 waits: past it, no delivery waits
// until it is back, and full queues drop, as mochi does.
func newWaitBudget(wait time.Duration) *ratelimit.Limiter {
	return ratelimit.New(rate.Limit(0.1/wait.Seconds()), 4)
}
