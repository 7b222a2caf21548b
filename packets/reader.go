package packets

import (
	"errors"
	"fmt"
	"io"

	"github.com/mqttguard/mqttguard/reason"
)

// Reader reads the packets a client sends, one at a time, and lets
// through only complete, valid ones. It reads the fixed header, refuses
// a packet larger than the limit before allocating or reading its body
// (and the first packet, before authentication, against the smaller
// MaxConnectSize; a first packet that is not CONNECT is refused from its
// first byte), then reads the body into a buffer it reuses, decodes and
// validates it, and checks the connection rules (Session).
//
// A Reader holds no buffer until bytes arrive, and then buffers by what
// arrives, not by what a header claims: a connection that sends nothing
// costs a Reader of under 200 bytes and nothing more, and one that
// announces a 64 KiB CONNECT and sends 10 bytes of it holds a packet
// buffer of 128 (a large body is read straight into its buffer). Once a
// whole fixed header has arrived, the read-ahead starts at 512 bytes and
// doubles, up to 4 KiB, while reads fill it. A packet buffer grows, up
// to the announced size, as the body's bytes come in, and is reused for
// the packets after it.
//
// After an error the connection must be closed: the error's reason code
// (CodeOf) is what an MQTT 5.0 client should be told in a DISCONNECT.
// A Reader is for one goroutine.
type Reader struct {
	src     io.Reader
	in      []byte // read-ahead; first is its storage until the first bytes arrive
	r, w    int    // in[r:w] is read and not yet handed out
	full    bool   // the last read filled in: a busy connection, read more at once
	rerr    error  // an error that came with bytes, reported once they are read
	framed  bool   // a whole fixed header has arrived: read-ahead may be allocated
	first   [8]byte
	lim     Limits
	buf     []byte
	pkt     *Packet
	session Session
	server  bool // reads what a server sends (NewServerReader)
}

// Read-ahead sizes: the first read waits with the Reader's own 8 bytes
// (enough for a fixed header and the start of a CONNECT); the buffer
// allocated after that starts at minReadAhead and doubles up to
// maxReadAhead while reads fill it.
const (
	minReadAhead = 512
	maxReadAhead = 4096
	// firstPacketBuf is the most a packet buffer is given before the
	// bytes it is for arrive: a larger packet's buffer doubles from
	// there as they do.
	firstPacketBuf = 128
)

// NewReader returns a Reader over r (usually a net.Conn) with the given
// limits (zero fields take their defaults).
func NewReader(r io.Reader, limits Limits) *Reader {
	return &Reader{src: r, lim: limits.withDefaults()}
}

// NewServerReader returns a Reader of what a server sends its client —
// a proxy's connection to the broker it guards — for protocol version v:
// each packet framed, within limits and decoded and validated as Parse
// does, with the same buffering. The client's session rules (CONNECT
// first, its packet identifiers, its topic aliases) do not apply.
func NewServerReader(r io.Reader, v Version, limits Limits) *Reader {
	rd := NewReader(r, limits)
	rd.server = true
	rd.session.version, rd.session.connected = v, true
	return rd
}

// Session returns the connection state the Reader keeps; set
// TopicAliasMaximum on it when the server advertises one.
func (r *Reader) Session() *Session { return &r.session }

// Limits returns the limits in force, defaults filled in.
func (r *Reader) Limits() Limits { return r.lim }

// Buffered returns the bytes read from the underlying reader but not yet
// returned in a packet (a read-ahead).
func (r *Reader) Buffered() int { return r.w - r.r }

// Read returns the next packet. The packet and its slices are valid
// until the next call. At a clean end of the stream between packets it
// returns io.EOF; a stream that ends inside a packet is
// io.ErrUnexpectedEOF.
func (r *Reader) Read() (*Packet, error) {
	first, err := r.readByte()
	if err != nil {
		return nil, err // io.EOF between packets
	}
	t := Type(first >> 4)
	if !r.session.connected && t != CONNECT {
		return nil, protocolErr(t, 0, "[MQTT-3.1.0-1]", "the first packet must be CONNECT")
	}
	var hdr [5]byte
	hdr[0] = first
	rem, mult, n := 0, 1, 1
	for {
		b, err := r.readByte()
		if err != nil {
			return nil, unexpected(err)
		}
		hdr[n] = b
		n++
		if n > 2 && b == 0 {
			return nil, malformed(t, 1, "[MQTT-1.5.5-1]", "remaining length: variable byte integer not in its shortest form")
		}
		rem += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		if n == 5 {
			return nil, malformed(t, 1, "[MQTT-1.5.5]", "remaining length: variable byte integer longer than 4 bytes")
		}
		mult <<= 7
	}
	total := n + rem
	r.framed = true
	limit := r.lim.MaxPacketSize
	what := "maximum packet size"
	if !r.session.connected {
		limit, what = r.lim.MaxConnectSize, "maximum size of a CONNECT before authentication"
	}
	if total > limit {
		return nil, &Error{Code: reason.PacketTooLarge, Type: t, Offset: 1,
			Msg: fmt.Sprintf("packet of %d bytes is over the %s (%d)", total, what, limit)}
	}
	buf, err := r.body(hdr[:n], total)
	if err != nil {
		return nil, unexpected(err)
	}
	if r.pkt == nil { // decoded fields take a kilobyte: not before a packet is in
		r.pkt = &Packet{limits: r.lim}
	}
	if err := r.pkt.decode(buf, r.session.version); err != nil {
		return nil, err
	}
	if r.server {
		return r.pkt, nil
	}
	if err := r.session.Check(r.pkt); err != nil {
		return nil, err
	}
	return r.pkt, nil
}

// body returns the packet's total bytes: hdr, then the body read from
// the connection. A packet that fits the buffer of earlier packets reuses
// it; a larger one grows the buffer as its bytes arrive, so a header
// that claims more than the client sends costs only what it sent.
func (r *Reader) body(hdr []byte, total int) ([]byte, error) {
	if cap(r.buf) >= total {
		buf := r.buf[:total]
		copy(buf, hdr)
		return buf, r.readFull(buf[len(hdr):])
	}
	buf := r.buf[:0]
	if cap(buf) < min(total, firstPacketBuf) {
		buf = make([]byte, 0, min(total, firstPacketBuf))
	}
	buf = append(buf, hdr...)
	for len(buf) < total {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(total, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.readSome(buf[len(buf):min(cap(buf), total)], total-len(buf))
		buf = buf[:len(buf)+k]
		if err != nil {
			r.buf = buf[:0]
			return nil, err
		}
	}
	r.buf = buf
	return buf, nil
}

// readByte returns the next byte of the stream.
func (r *Reader) readByte() (byte, error) {
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	b := r.in[r.r]
	r.r++
	return b, nil
}

// readFull fills p from the stream.
func (r *Reader) readFull(p []byte) error {
	for len(p) > 0 {
		k, err := r.readSome(p, len(p))
		p = p[k:]
		if err != nil {
			return err
		}
	}
	return nil
}

// readSome reads at least one byte into p (len(p) > 0), part of a packet
// of which rest bytes are still to come: from the read-ahead, or straight
// from the connection when rest is at least as large as the read-ahead
// would be. So a large packet's body is not copied twice, and one that
// claims more than arrives (a CONNECT announcing 64 KiB) holds no
// read-ahead; a small one goes through the read-ahead, which takes in
// what the client sent after it too — a server that refuses the CONNECT
// and closes leaves no unread bytes behind, which would make the close
// a reset that can cost the client the refusal's CONNACK.
func (r *Reader) readSome(p []byte, rest int) (int, error) {
	if r.r == r.w && r.rerr == nil && rest >= r.nextSize() {
		return r.readSrc(p)
	}
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	k := copy(p, r.in[r.r:r.w])
	r.r += k
	return k, nil
}

// nextSize is the size of the read-ahead the next fill reads into.
func (r *Reader) nextSize() int {
	switch {
	case r.in == nil, !r.framed:
		// Until a whole fixed header is in, a connection has proven
		// nothing: its bytes wait in first, and it holds no
		// read-ahead.
		return len(r.first)
	case len(r.in) < minReadAhead:
		return minReadAhead
	case r.full && len(r.in) < maxReadAhead:
		return 2 * len(r.in)
	}
	return len(r.in)
}

// fill reads into the empty read-ahead, allocating it once bytes have
// arrived (a connection that sends nothing holds none) and growing it
// while reads fill it.
func (r *Reader) fill() error {
	r.r, r.w = 0, 0
	if err := r.rerr; err != nil {
		r.rerr = nil
		return err
	}
	if size := r.nextSize(); size != len(r.in) {
		if r.in == nil {
			r.in = r.first[:]
		} else {
			r.in = make([]byte, size)
		}
	}
	k, err := r.readSrc(r.in)
	r.w = k
	r.full = k == len(r.in)
	if k > 0 {
		r.rerr = err // for the read after these bytes
		return nil
	}
	return err
}

// readSrc reads from the connection; a reader that returns neither bytes
// nor an error a hundred times in a row is broken.
func (r *Reader) readSrc(p []byte) (int, error) {
	for range 100 {
		k, err := r.src.Read(p)
		if k > 0 || err != nil {
			return k, err
		}
	}
	return 0, io.ErrNoProgress
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
