package packets

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/reason"
)

// ListenerConfig configures Listen.
type ListenerConfig struct {
	// Limits are the packet limits (zero fields take their defaults).
	Limits Limits
	// ConnectTimeout closes a connection that has not sent a complete
	// CONNECT within it of being accepted, TLS handshake included
	// (default 10 s, as HiveMQ; negative: no timeout).
	ConnectTimeout time.Duration
	// TopicAliasMaximum is the Topic Alias Maximum the server behind
	// advertises to MQTT 5.0 clients (0: clients may use no aliases).
	TopicAliasMaximum uint16
	// MaxPendingPerAddress caps the connections from one client address
	// (for IPv6, one /64) that are pending: accepted by the Listener and
	// not yet by the server, which accepts a client by writing a CONNACK
	// with reason code 0 (default 256; negative: no cap). A connection
	// over it closes the address's oldest pending connection. 256 lets
	// the devices behind a NAT gateway connect a hundred at a time while
	// each waits for its password check (the example proxy's tests do),
	// and keeps one address to 256 pending connections: 1.4 MiB here,
	// 7 MiB in the example broker.
	MaxPendingPerAddress int
	// MaxPending caps pending connections in all (default 10,000;
	// negative: no cap); a connection over it closes the oldest pending
	// connection. A pending connection costs this package 1.4 KiB of heap
	// and the goroutine its server reads it with (packets'
	// TestPendingMemory: 5.5 KiB in all), and the example broker 27 KiB
	// with mochi-mqtt's own (stack's TestPendingMemoryOfTheExampleBroker):
	// 10,000 is 55 MiB here, 270 MiB there. It is that large so that an
	// attacker must open 10,000 connections in the time a device takes
	// to be accepted (milliseconds; a second in the password queue) to
	// make the device the oldest. See pending.go for the model.
	MaxPending int
	// OnReject, if set, is called when a connection is closed for a
	// packet the Reader refused, for the connect timeout, or to make
	// room under a pending cap (the error is then a *PendingError),
	// before it is closed, on the goroutine reading the connection. It is
	// how a broker counts the violation against the client and its
	// address.
	OnReject func(c *Conn, err error)
}

// Defaults of the pending caps.
const (
	DefaultMaxPendingPerAddress = 256
	DefaultMaxPending           = 10_000
)

// ErrConnectTimeout is the error a Conn reports when no complete CONNECT
// arrived within ListenerConfig.ConnectTimeout.
var ErrConnectTimeout = errors.New("packets: no CONNECT within the connect timeout")

// Listener wraps a net.Listener so that the connections it accepts hand
// their reader only complete, valid MQTT packets: each Conn reads the
// client's bytes through a Reader, and the first packet the Reader
// refuses closes the connection — after a DISCONNECT with the refusal's
// reason code (0x81 malformed, 0x82 protocol error, 0x95 too large, …)
// to an MQTT 5.0 client. A broker that decodes packets itself (mochi-mqtt,
// say) gets this validation by serving on the Listener instead of the
// net.Listener: it never sees a malformed packet, and no client can make
// it allocate more than the limits allow.
type Listener struct {
	inner   net.Listener
	cfg     ListenerConfig
	pending *pendingSet
}

// Listen wraps inner.
func Listen(inner net.Listener, cfg ListenerConfig) *Listener {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxPendingPerAddress == 0 {
		cfg.MaxPendingPerAddress = DefaultMaxPendingPerAddress
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	return &Listener{inner: inner, cfg: cfg, pending: newPendingSet(cfg.MaxPendingPerAddress, cfg.MaxPending)}
}

// Accept waits for the next connection and returns it as a *Conn. If it
// takes the Listener over a pending cap, the oldest pending connection
// under that cap is closed first.
func (l *Listener) Accept() (net.Conn, error) {
	nc, err := l.inner.Accept()
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: nc, cfg: &l.cfg, ps: l.pending}
	c.r = NewReader(nc, l.cfg.Limits)
	c.r.Session().TopicAliasMaximum = l.cfg.TopicAliasMaximum
	if l.cfg.ConnectTimeout > 0 {
		c.deadline = time.Now().Add(l.cfg.ConnectTimeout)
		nc.SetReadDeadline(c.deadline)
	}
	c.links.addr = addrKey(nc.RemoteAddr())
	for _, v := range l.pending.add(c) {
		if v != nil {
			v.evict()
		}
	}
	return c, nil
}

// Pending counts the pending connections and those closed to make room.
func (l *Listener) Pending() PendingStats { return l.pending.stats() }

// Close closes the inner listener.
func (l *Listener) Close() error { return l.inner.Close() }

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Conn is a connection accepted by a Listener. Read returns the client's
// bytes one validated packet at a time; Write is the inner connection's,
// serialised so that the DISCONNECT a Conn sends never lands inside a
// packet the server is writing. It is safe for one reader and concurrent
// writers, as a net.Conn is.
type Conn struct {
	net.Conn
	cfg      *ListenerConfig
	r        *Reader
	deadline time.Time // the connect deadline, until CONNECT arrives
	pending  []byte    // the rest of the packet being handed out
	err      error     // sticky: the connection is done

	clientID, username string

	ps    *pendingSet // the Listener's pending connections
	links links       // c's place among them, under ps.mu

	wmu    sync.Mutex
	closed bool         // a DISCONNECT was sent: no more writes
	watch  connackWatch // the server's writes until its CONNACK

	closing atomic.Bool // Close was called: Read reports the connection closed
}

// Read hands out the client's packets, each only once the Reader has
// read and validated all of it.
func (c *Conn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.closing.Load() {
			return 0, net.ErrClosed
		}
		pkt, err := c.ReadPacket()
		if err != nil {
			return 0, err
		}
		c.pending = pkt.Raw
		if pkt.Type == CONNECT && pkt.Connect.Level == V31 {
			c.pending = clean31(pkt)
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// ReadPacket returns the next validated packet, for a server that works
// with packets rather than bytes (a proxy): the same Reader, the same
// rules, no copy. The packet is valid until the next ReadPacket or Read.
// Use one or the other: ReadPacket refuses to run while Read has part of
// a packet left to hand out.
func (c *Conn) ReadPacket() (*Packet, error) {
	if len(c.pending) > 0 {
		return nil, errors.New("packets: ReadPacket called with part of a packet not yet Read")
	}
	if c.err != nil {
		return nil, c.err
	}
	pkt, err := c.r.Read()
	if c.closing.Load() {
		return nil, net.ErrClosed // closed while the Reader waited: what it read is not the server's
	}
	if err != nil {
		c.err = c.fail(err)
		return nil, c.err
	}
	if pkt.Type == CONNECT {
		c.clientID, c.username = string(pkt.Connect.ClientID), string(pkt.Connect.Username)
		if !c.deadline.IsZero() {
			c.deadline = time.Time{}
			c.Conn.SetReadDeadline(time.Time{}) // the server's keep-alive takes over
		}
	}
	return pkt, nil
}

// fail ends the connection after the Reader's error and returns what
// Read reports.
func (c *Conn) fail(err error) error {
	if perr := c.links.evicted.Load(); perr != nil {
		err = perr // closed under the Reader to make room
	} else if errors.Is(err, io.EOF) {
		return io.EOF // the client closed between packets
	}
	if !c.deadline.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ErrConnectTimeout
	}
	var perr *Error
	tell := ReasonCode(0)
	switch {
	case errors.As(err, &perr):
		tell = perr.Code
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A deadline the server set after CONNECT is its keep-alive.
		tell = reason.KeepAliveTimeout
	}
	if tell != 0 && c.r.Session().Version() == V5 {
		c.wmu.Lock()
		if !c.closed {
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write(AppendDisconnect(nil, V5, tell))
			c.closed = true
		}
		c.wmu.Unlock()
	}
	if perr != nil || errors.Is(err, ErrConnectTimeout) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrTooManyPending) {
		if c.cfg.OnReject != nil {
			c.cfg.OnReject(c, err)
		}
	}
	c.Close()
	return err
}

// Write writes to the inner connection. Until the server's CONNACK has
// gone through, Write also reads what it writes: a CONNACK with reason
// code 0 ends the connection's pending time.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if !c.watch.decided {
		if decided, accepted := c.watch.feed(p); decided && accepted {
			c.untrack()
		}
	}
	return c.Conn.Write(p)
}

// Close closes the connection; it is no longer pending. What the
// server wrote goes out first, and what the client still sends is read
// and thrown away for a moment (lingerFor, lingerBytes) before the
// socket closes: closing a TCP socket with unread bytes makes it send a
// reset, which can destroy what the client has not read yet — the
// DISCONNECT or CONNACK that says why it is refused — and a client that
// pipelines its publishes always has bytes in flight. Close does not
// wait for that; Read reports the connection closed at once.
func (c *Conn) Close() error {
	c.untrack()
	if !c.closing.CompareAndSwap(false, true) {
		return nil
	}
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok || lingering.Add(1) > maxLingering {
		if ok {
			lingering.Add(-1)
		}
		return c.Conn.Close()
	}
	if err := tc.CloseWrite(); err != nil {
		lingering.Add(-1)
		return tc.Close()
	}
	tc.SetReadDeadline(time.Now().Add(lingerFor))
	go func() { // ends within lingerFor
		defer lingering.Add(-1)
		io.Copy(io.Discard, io.LimitReader(tc, lingerBytes))
		tc.Close()
	}()
	return nil
}

// lingering counts the closing connections still draining, in the
// whole process; past maxLingering a Close is immediate, so a flood of
// connections that are refused cannot hold more than that many sockets
// (and goroutines) open for lingerFor.
var lingering atomic.Int64

const maxLingering = 1024

// How long, and how much, a closing connection reads and discards.
const (
	lingerFor   = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// Admit ends the connection's pending time, for a server that does not
// write its CONNACK through the Conn; one that does needs not call it.
func (c *Conn) Admit() {
	c.wmu.Lock()
	c.watch.decided = true
	c.wmu.Unlock()
	c.untrack()
}

// Pending reports whether the connection is still pending: tracked by
// the Listener's caps, because the server has not accepted it (no
// CONNACK with reason code 0 yet) and it is not closed.
func (c *Conn) Pending() bool {
	c.ps.mu.Lock()
	defer c.ps.mu.Unlock()
	return c.links.set != nil
}

func (c *Conn) untrack() { c.ps.untrack(c) }

// Buffered is how many bytes the Conn has read from the client and not
// yet handed out: more packets are (at least partly) in. A relay flushes
// its writes when there is nothing buffered, and batches them when there
// is.
func (c *Conn) Buffered() int { return len(c.pending) + c.r.Buffered() }

// ClientID and Username are the CONNECT's, once it has been read ("" before).
func (c *Conn) ClientID() string { return c.clientID }

// Username is the CONNECT's username ("" before it has been read).
func (c *Conn) Username() string { return c.username }

// Version is the connection's protocol version (0 before CONNECT).
func (c *Conn) Version() Version { return c.r.Session().Version() }

// ConnectionState is the TLS state of a connection accepted from a TLS
// listener (the zero state otherwise), so that a server that looks for
// tls.Conn's method finds it through the wrapper.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// NetConn is the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// clean31 returns an MQTT 3.1 CONNECT without the flag bits 3.1 left
// unreserved and 3.1.1 reserved (fixed header flags, connect flag bit 0):
// the Reader accepts them as 3.1 did, and the server behind, which may
// apply 3.1.1's rule to every level (mochi-mqtt does), never sees them.
func clean31(p *Packet) []byte {
	flagsAt := len(p.Raw) - p.Remaining + 2 + len(p.Connect.ProtocolName) + 1
	if p.Raw[0]&0x0f == 0 && p.Raw[flagsAt]&0x01 == 0 {
		return p.Raw
	}
	raw := append([]byte(nil), p.Raw...)
	raw[0] &^= 0x0f
	raw[flagsAt] &^= 0x01
	return raw
}
