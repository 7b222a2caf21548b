package guest

import (
	"encoding/binary"
	"fmt"
	"time"
)

// ABIVersion is the event record version this package decodes.
const ABIVersion = 1

// Kind is an event record's kind.
type Kind byte

const (
	KindConnect   Kind = 1
	KindSubscribe Kind = 2
	KindPublish   Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindConnect:
		return "connect"
	case KindSubscribe:
		return "subscribe"
	case KindPublish:
		return "publish"
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

// Connect is a client's connection attempt. The password is never shown
// to a plugin, only whether there was one.
type Connect struct {
	Time            time.Time
	ClientID        string
	Username        string
	HasPassword     bool
	RemoteAddr      string // "ip:port"
	ProtocolVersion byte   // 3 (MQTT 3.1), 4 (3.1.1) or 5
	CleanStart      bool
	KeepAlive       uint16
	CertIdentity    string // from a verified client certificate, or ""
}

// Subscribe is one filter of a SUBSCRIBE.
type Subscribe struct {
	Time     time.Time
	ClientID string
	Username string
	Filter   string
	QoS      byte
}

// Publish is one PUBLISH. Payload points into the host's event buffer:
// it is valid only until the handler returns; copy what you keep.
type Publish struct {
	Time     time.Time
	ClientID string
	Username string
	Topic    string
	QoS      byte
	Retain   bool
	Payload  []byte
}

// DecodeError is an event record this package cannot read: a host
// speaking another ABI version, or a truncated record.
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("mqttguard event record: offset %d: %s", e.Offset, e.Msg)
}

// recordReader reads the record's fields in order.
type recordReader struct {
	b   []byte
	pos int
	err error
}

const headerSize = 16

// header checks the fixed 16-byte head and returns its flags and the
// four kind-specific bytes.
func header(rec []byte, want Kind) (r recordReader, flags byte, fixed [4]byte, t time.Time, err error) {
	if len(rec) < headerSize {
		return r, 0, fixed, t, &DecodeError{0, fmt.Sprintf("%d bytes, shorter than the %d-byte header", len(rec), headerSize)}
	}
	if v := binary.LittleEndian.Uint16(rec); v != ABIVersion {
		return r, 0, fixed, t, &DecodeError{0, fmt.Sprintf("ABI version %d; this package reads version %d (update wasmguard/guest)", v, ABIVersion)}
	}
	if k := Kind(rec[2]); k != want {
		return r, 0, fixed, t, &DecodeError{2, fmt.Sprintf("a %v event, not %v", k, want)}
	}
	copy(fixed[:], rec[4:8])
	t = time.Unix(0, int64(binary.LittleEndian.Uint64(rec[8:])))
	return recordReader{b: rec, pos: headerSize}, rec[3], fixed, t, nil
}

func (r *recordReader) bytes() []byte {
	lo, hi := r.span()
	return r.b[lo:hi:hi]
}

// span reads a length-prefixed field and returns its bounds.
func (r *recordReader) span() (lo, hi int) {
	if r.err != nil {
		return 0, 0
	}
	if len(r.b)-r.pos < 4 {
		r.err = &DecodeError{r.pos, "truncated length"}
		return 0, 0
	}
	n := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.err = &DecodeError{r.pos - 4, fmt.Sprintf("a field of %d bytes, %d remain", n, len(r.b)-r.pos)}
		return 0, 0
	}
	lo, hi = r.pos, r.pos+int(n)
	r.pos = hi
	return lo, hi
}

// strings reads n consecutive string fields. They are copies, never
// views of the buffer: a plugin may keep what it decodes (as a map key,
// say) while the next event overwrites the buffer, and Go code assumes a
// string never changes. Copies of values seen before come from an intern
// table, because an allocation costs a Go guest 0.4–1 µs (its garbage
// collector runs inline) and a fleet repeats its client IDs, usernames
// and topics.
func (r *recordReader) strings(out ...*string) {
	for _, p := range out {
		lo, hi := r.span()
		if r.err != nil {
			return
		}
		*p = intern(r.b[lo:hi])
	}
}

// The intern table is direct-mapped: slot = FNV-1a of the bytes. A map
// costs a Go guest about 250 ns a lookup; this, a hash and a compare.
const (
	internSlots    = 4096
	internMaxBytes = 256 // longer strings are copied, not kept
)

var interned [internSlots]string

func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &interned[h%internSlots]
	if *slot == string(b) { // compared in place, not converted
		return *slot
	}
	s := string(b)
	if len(b) <= internMaxBytes {
		*slot = s
	}
	return s
}

func (r *recordReader) done() error {
	if r.err == nil && r.pos != len(r.b) {
		r.err = &DecodeError{r.pos, fmt.Sprintf("%d bytes after the last field", len(r.b)-r.pos)}
	}
	return r.err
}

// DecodeConnect reads a connect event record.
func DecodeConnect(rec []byte) (Connect, error) {
	r, flags, fixed, t, err := header(rec, KindConnect)
	if err != nil {
		return Connect{}, err
	}
	c := Connect{
		Time:            t,
		CleanStart:      flags&1 != 0,
		HasPassword:     flags&2 != 0,
		ProtocolVersion: fixed[0],
		KeepAlive:       binary.LittleEndian.Uint16(fixed[2:]),
	}
	r.strings(&c.ClientID, &c.Username, &c.RemoteAddr, &c.CertIdentity)
	if err := r.done(); err != nil {
		return Connect{}, err
	}
	return c, nil
}

// DecodeSubscribe reads a subscribe event record.
func DecodeSubscribe(rec []byte) (Subscribe, error) {
	r, _, fixed, t, err := header(rec, KindSubscribe)
	if err != nil {
		return Subscribe{}, err
	}
	s := Subscribe{Time: t, QoS: fixed[0]}
	r.strings(&s.ClientID, &s.Username, &s.Filter)
	if err := r.done(); err != nil {
		return Subscribe{}, err
	}
	return s, nil
}

// DecodePublish reads a publish event record. The payload aliases rec.
func DecodePublish(rec []byte) (Publish, error) {
	r, flags, fixed, t, err := header(rec, KindPublish)
	if err != nil {
		return Publish{}, err
	}
	p := Publish{Time: t, QoS: fixed[0], Retain: flags&1 != 0}
	r.strings(&p.ClientID, &p.Username, &p.Topic)
	p.Payload = r.bytes()
	if err := r.done(); err != nil {
		return Publish{}, err
	}
	return p, nil
}
