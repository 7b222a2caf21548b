// Package loadgen drives an MQTT broker with many raw MQTT 3.1.1
// clients: publishers that send a given number of messages (at a target
// rate, or as fast as the broker takes them) and subscribers that count
// what arrives and measure each message's latency from the timestamp the
// publisher put in its payload. The same generator runs against every
// broker a benchmark compares.
package loadgen

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/packets"
)

// Config is one load.
type Config struct {
	Addr string
	// Publishers and Subscribers are how many clients of each; Topic is
	// the topic publisher i publishes to, Filter what subscribers
	// subscribe to.
	Publishers, Subscribers int
	Topic                   func(i int) string
	Filter                  string
	QoS                     byte
	Payload                 int // bytes (at least 8: the timestamp)
	// Messages is how many each publisher sends; Rate, if > 0, is each
	// publisher's messages per second (paced), else as fast as the
	// broker acknowledges (QoS 1, up to Window in flight) or takes them
	// (QoS 0).
	Messages int
	Rate     float64
	Window   int // QoS 1 messages in flight per publisher (default 64)
	// Credentials for client i ("pub-3", "sub-0"); nil: none.
	Auth func(clientID string) (user, pass string)
	// Settle is how long to wait, once nothing arrives any more, before
	// counting what did not as lost (default 2 s).
	Settle time.Duration
	// Count, if set, says which topics the subscribers count and time
	// (the rest of what they receive is acknowledged and ignored).
	Count func(topic []byte) bool
}

// Result is what the subscribers saw.
type Result struct {
	Sent      int           // messages published
	Expected  int           // Sent × subscribers reached
	Delivered int           // messages the subscribers received
	Elapsed   time.Duration // first publish to last delivery
	Latencies []time.Duration
}

// Lost is what never arrived.
func (r Result) Lost() int { return r.Expected - r.Delivered }

// Throughput is delivered messages per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

// Percentile of the delivery latencies (p in 0–100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// Run connects every client, subscribes, publishes, and waits for the
// deliveries (or until nothing has arrived for Settle).
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Payload < 8 {
		cfg.Payload = 8
	}
	if cfg.Window <= 0 {
		cfg.Window = 64
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	var subs []*subscriber
	defer func() {
		for _, s := range subs {
			s.close()
		}
	}()
	for i := 0; i < cfg.Subscribers; i++ {
		s, err := newSubscriber(cfg, fmt.Sprintf("sub-%d", i))
		if err != nil {
			return Result{}, err
		}
		subs = append(subs, s)
	}
	var pubs []*client
	defer func() {
		for _, p := range pubs {
			p.conn.Close()
		}
	}()
	for i := 0; i < cfg.Publishers; i++ {
		c, err := dial(cfg, fmt.Sprintf("pub-%d", i))
		if err != nil {
			return Result{}, err
		}
		pubs = append(pubs, c)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(pubs))
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.publishAll(ctx, cfg, cfg.Topic(i)); err != nil {
				errs <- fmt.Errorf("publisher %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return Result{}, err
	}
	sent := cfg.Publishers * cfg.Messages
	res := Result{Sent: sent, Expected: sent * cfg.Subscribers}
	// Wait for the deliveries, or for them to stop coming.
	last, lastCount := time.Now(), -1
	for {
		n := 0
		for _, s := range subs {
			n += int(s.count.Load())
		}
		if n >= res.Expected {
			break
		}
		if n != lastCount {
			last, lastCount = time.Now(), n
		} else if time.Since(last) > cfg.Settle {
			break
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	var end time.Time
	for _, s := range subs {
		s.mu.Lock()
		res.Delivered += int(s.count.Load())
		res.Latencies = append(res.Latencies, s.lat...)
		if s.last.After(end) {
			end = s.last
		}
		s.mu.Unlock()
	}
	if end.IsZero() {
		end = time.Now()
	}
	res.Elapsed = end.Sub(start)
	return res, nil
}

type client struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func dial(cfg Config, id string) (*client, error) {
	conn, err := net.DialTimeout("tcp", cfg.Addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriterSize(conn, 64<<10)}
	var user, pass string
	if cfg.Auth != nil {
		user, pass = cfg.Auth(id)
	}
	c.bw.Write(mqttwire.Connect(packets.V311, 60, id, user, pass))
	if err := c.bw.Flush(); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, first, body, err := readPacket(c.br, nil)
	conn.SetReadDeadline(time.Time{})
	if err != nil || first>>4 != 2 || len(body) < 2 || body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("%s: CONNACK %x %v", id, body, err)
	}
	return c, nil
}

// publishAll sends cfg.Messages PUBLISHes to topic.
func (c *client) publishAll(ctx context.Context, cfg Config, topic string) error {
	var acks chan struct{}
	var readErr atomic.Value
	done := make(chan struct{})
	if cfg.QoS > 0 {
		acks = make(chan struct{}, cfg.Window)
		go func() { // PUBACKs free the window
			defer close(done)
			var buf []byte
			for {
				pkt, first, _, err := readPacket(c.br, buf)
				if err != nil {
					readErr.Store(err)
					return
				}
				buf = pkt
				if first>>4 == 4 {
					<-acks
				}
			}
		}()
	} else {
		close(done)
	}
	payload := make([]byte, cfg.Payload)
	var pace time.Duration
	if cfg.Rate > 0 {
		pace = time.Duration(float64(time.Second) / cfg.Rate)
	}
	next := time.Now()
	var pkt []byte
	for i := 0; i < cfg.Messages; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pace > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(pace)
		}
		if acks != nil {
			select {
			case acks <- struct{}{}:
			case <-done:
				return fmt.Errorf("connection lost: %v", readErr.Load())
			}
		}
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		pkt = appendPublish(pkt[:0], topic, payload, cfg.QoS, uint16(i%65535+1))
		if _, err := c.bw.Write(pkt); err != nil {
			return err
		}
		if pace > 0 || cfg.QoS > 0 || c.bw.Buffered() > 32<<10 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if acks != nil { // wait for the window to drain
		for i := 0; i < cfg.Window; i++ {
			select {
			case acks <- struct{}{}:
			case <-done:
				return nil
			case <-time.After(30 * time.Second):
				return errors.New("PUBACKs stopped coming")
			}
		}
	}
	return nil
}

type subscriber struct {
	*client
	track func([]byte) bool
	count atomic.Int64
	mu    sync.Mutex
	lat   []time.Duration
	last  time.Time
	done  chan struct{}
}

func newSubscriber(cfg Config, id string) (*subscriber, error) {
	c, err := dial(cfg, id)
	if err != nil {
		return nil, err
	}
	s := &subscriber{client: c, track: cfg.Count, done: make(chan struct{})}
	c.bw.Write(subscribe(cfg.Filter, cfg.QoS))
	c.bw.Flush()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, first, body, err := readPacket(c.br, nil)
	c.conn.SetReadDeadline(time.Time{})
	if err != nil || first>>4 != 9 || len(body) < 3 || body[2] >= 0x80 {
		c.conn.Close()
		return nil, fmt.Errorf("%s: SUBACK %x %v", id, body, err)
	}
	go s.read()
	return s, nil
}

func (s *subscriber) read() {
	defer close(s.done)
	var buf []byte
	for {
		pkt, first, body, err := readPacket(s.br, buf)
		if err != nil {
			return
		}
		buf = pkt
		if first>>4 != 3 {
			continue
		}
		now := time.Now()
		tl := int(binary.BigEndian.Uint16(body))
		off := 2 + tl
		var id uint16
		if (first>>1)&3 > 0 {
			id = binary.BigEndian.Uint16(body[off:])
			off += 2
		}
		counted := s.track == nil || s.track(body[2:2+tl])
		if counted && len(body) >= off+8 {
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(body[off:])))
			s.mu.Lock()
			s.lat = append(s.lat, now.Sub(sent))
			s.last = now
			s.mu.Unlock()
		}
		if counted {
			s.count.Add(1)
		}
		if id != 0 {
			s.bw.Write([]byte{0x40, 2, byte(id >> 8), byte(id)})
			if s.br.Buffered() == 0 {
				s.bw.Flush()
			}
		}
	}
}

func (s *subscriber) close() {
	s.conn.Close()
	<-s.done
}

// readPacket reads one packet into buf's storage if it is large enough
// and returns it whole (pkt, to reuse as the next buf), its first byte
// (type and flags) and its body.
func readPacket(br *bufio.Reader, buf []byte) (pkt []byte, first byte, body []byte, err error) {
	pkt, hdr, err := mqttwire.ReadPacket(br, buf)
	if err != nil {
		return nil, 0, nil, err
	}
	return pkt, pkt[0], pkt[hdr:], nil
}

func str(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func subscribe(filter string, qos byte) []byte {
	body := append(str([]byte{0, 1}, filter), qos)
	return append(packets.AppendVBI([]byte{0x82}, len(body)), body...)
}

func appendPublish(dst []byte, topic string, payload []byte, qos byte, id uint16) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	dst = packets.AppendVBI(append(dst, 0x30|qos<<1), n)
	dst = str(dst, topic)
	if qos > 0 {
		dst = binary.BigEndian.AppendUint16(dst, id)
	}
	return append(dst, payload...)
}

// Flood publishes QoS 0 messages to topic as fast as the connection takes
// them until ctx ends, reconnecting (every 50 ms at most) when the broker
// drops it, as a compromised device would. It returns how many it sent.
func Flood(ctx context.Context, addr, id, user, pass, topic string, payload int) int {
	sent := 0
	cfg := Config{Addr: addr, Auth: func(string) (string, string) { return user, pass }}
	buf := make([]byte, max(payload, 8))
	var pkt []byte
	for ctx.Err() == nil {
		c, err := dial(cfg, id)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		go func() { io.Copy(io.Discard, c.conn) }() // whatever the broker says
		stop := context.AfterFunc(ctx, func() { c.conn.Close() })
		for ctx.Err() == nil {
			binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
			pkt = appendPublish(pkt[:0], topic, buf, 0, 0)
			if _, err := c.bw.Write(pkt); err != nil {
				break
			}
			if c.bw.Buffered() > 16<<10 {
				if err := c.bw.Flush(); err != nil {
					break
				}
			}
			sent++
		}
		stop()
		c.conn.Close()
	}
	return sent
}
