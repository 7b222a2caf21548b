package packets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Reader reads the packets a client sends, one at a time, and lets
// through only complete, valid ones. It reads the fixed header, refuses
// a packet larger than the limit before allocating or reading its body
// (and the first packet, before authentication, against the smaller
// MaxConnectSize; a first packet that is not CONNECT is refused from its
// first byte), then reads the body into a buffer it reuses, decodes and
// validates it, and checks the connection rules (Session).
//
// After an error the connection must be closed: the error's reason code
// (CodeOf) is what an MQTT 5.0 client should be told in a DISCONNECT.
// A Reader is for one goroutine.
type Reader struct {
	br      *bufio.Reader
	lim     Limits
	buf     []byte
	pkt     Packet
	session Session
}

// NewReader returns a Reader over r (usually a net.Conn) with the given
// limits (zero fields take their defaults).
func NewReader(r io.Reader, limits Limits) *Reader {
	rd := &Reader{br: bufio.NewReaderSize(r, 4096), lim: limits.withDefaults()}
	rd.pkt.limits = rd.lim
	return rd
}

// Session returns the connection state the Reader keeps; set
// TopicAliasMaximum on it when the server advertises one.
func (r *Reader) Session() *Session { return &r.session }

// Limits returns the limits in force, defaults filled in.
func (r *Reader) Limits() Limits { return r.lim }

// Buffered returns the bytes read from the underlying reader but not yet
// returned in a packet (a bufio read-ahead).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Read returns the next packet. The packet and its slices are valid
// until the next call. At a clean end of the stream between packets it
// returns io.EOF; a stream that ends inside a packet is
// io.ErrUnexpectedEOF.
func (r *Reader) Read() (*Packet, error) {
	first, err := r.br.ReadByte()
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
		b, err := r.br.ReadByte()
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
	limit := r.lim.MaxPacketSize
	what := "maximum packet size"
	if !r.session.connected {
		limit, what = r.lim.MaxConnectSize, "maximum size of a CONNECT before authentication"
	}
	if total > limit {
		return nil, &Error{Code: PacketTooLarge, Type: t, Offset: 1,
			Msg: fmt.Sprintf("packet of %d bytes is over the %s (%d)", total, what, limit)}
	}
	if cap(r.buf) < total {
		r.buf = make([]byte, total, max(total, 2*cap(r.buf)))
	}
	buf := r.buf[:total]
	copy(buf, hdr[:n])
	if _, err := io.ReadFull(r.br, buf[n:]); err != nil {
		return nil, unexpected(err)
	}
	if err := r.pkt.decode(buf, r.session.version); err != nil {
		return nil, err
	}
	if err := r.session.Check(&r.pkt); err != nil {
		return nil, err
	}
	return &r.pkt, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
