package dashboard

import (
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/reason"
)

// DefaultFeedSize is how many refusals a Feed made with NewFeed(0)
// keeps: about 2.5 MiB.
const DefaultFeedSize = 2048

// The text a slot keeps of each field, in bytes; longer values are cut
// (and marked with "…" when read).
const (
	capClient   = 128
	capUsername = 128
	capTopic    = 256
	capRule     = 160
	capFile     = 96
	capDetail   = 256
	capListener = 64
	slotText    = capClient + capUsername + capTopic + capRule + capFile + capDetail + capListener
)

// Fields of a slot's text, in order.
const (
	fClient = iota
	fUsername
	fTopic
	fRule
	fFile
	fDetail
	fListener
	numFields
)

var fieldCaps = [numFields]int{capClient, capUsername, capTopic, capRule, capFile, capDetail, capListener}

// slot is one refusal, copied: the Guard's strings may point into a
// broker's reused buffers, so a slot keeps its own bytes, in a fixed
// array, and the Feed never allocates on the Guard's path.
type slot struct {
	at        int64
	addr      netip.Addr
	line      int32
	lens      [numFields]uint16
	cut       uint8 // bit i: field i was cut
	point     mqttguard.Point
	verdict   mqttguard.Verdict
	component mqttguard.Component
	code      reason.Code
	observed  bool
	text      [slotText]byte
}

// A Feed is a bounded ring of the Guard's most recent refusals: what
// the live view streams and the clients and devices pages look up. Set
// Config.OnRefusal to its Add. It holds a fixed number of refusals of a
// fixed size each, allocated once by NewFeed, so a flood of refusals
// overwrites the oldest and costs the Guard a copy under a short lock,
// never memory or a wait on a reader (readers copy out in small
// batches). A Feed is safe for concurrent use.
type Feed struct {
	mu    sync.Mutex
	slots []slot
	next  uint64 // the sequence number the next refusal gets; the first is 1

	anomalies anomalyLog
}

// NewFeed returns a Feed that keeps the last n refusals (n ≤ 0:
// DefaultFeedSize).
func NewFeed(n int) *Feed {
	if n <= 0 {
		n = DefaultFeedSize
	}
	return &Feed{slots: make([]slot, n), next: 1, anomalies: anomalyLog{max: maxAnomalous}}
}

// Add copies r into the ring, overwriting the oldest refusal when it is
// full. It is Config.OnRefusal's shape.
func (f *Feed) Add(r mqttguard.Refusal) {
	var c mqttguard.Client
	if r.Client != nil {
		c = *r.Client // the struct only; the strings are copied below
	}
	d := &r.Decision
	verdict, code := d.Verdict, d.Code
	if d.Observed {
		verdict, code = d.Would, d.WouldCode
	}
	f.mu.Lock()
	s := &f.slots[f.next%uint64(len(f.slots))]
	f.next++
	s.at = r.At.UnixNano()
	s.addr = c.Addr
	s.line = int32(min(d.Cause.Line, 1<<31-1))
	s.point, s.verdict, s.component, s.code, s.observed = r.Point, verdict, d.Cause.Component, code, d.Observed
	s.cut = 0
	off := 0
	for i, v := range [numFields]string{c.ID, c.Username, r.Topic, d.Cause.Rule, d.Cause.File, d.Cause.Detail, c.Listener} {
		n := copy(s.text[off:off+fieldCaps[i]], v)
		s.lens[i] = uint16(n)
		if n < len(v) {
			s.cut |= 1 << i
		}
		off += fieldCaps[i]
	}
	if d.Cause.Component == mqttguard.ByAnomaly {
		f.anomalies.add(s, r.At)
	}
	f.mu.Unlock()
}

// Event is one refusal as the dashboard shows it.
type Event struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	Point     string    `json:"point"` // connect, publish, subscribe or will
	Client    string    `json:"client"`
	Username  string    `json:"username,omitempty"`
	Addr      string    `json:"addr,omitempty"`
	Listener  string    `json:"listener,omitempty"`
	Topic     string    `json:"topic,omitempty"`
	Verdict   string    `json:"verdict"`            // reject, drop or disconnect
	Observed  bool      `json:"observed,omitempty"` // ObserveOnly: what enforcement would have done
	Code      string    `json:"code"`               // "0x87"
	CodeName  string    `json:"code_name"`          // "not authorized"
	Component string    `json:"component"`          // acl, rate-limit, trust, …
	Cause     string    `json:"cause"`              // the component, rule, file:line and detail
}

// field returns field i of s as a string, valid UTF-8, with "…" when
// it was cut.
func (s *slot) field(i int) string {
	off := 0
	for j := range i {
		off += fieldCaps[j]
	}
	b := s.text[off : off+int(s.lens[i])]
	if s.cut&(1<<i) != 0 {
		// The cut may have gone through a character: drop its start.
		for n := 1; n <= utf8.UTFMax-1 && n <= len(b); n++ {
			if utf8.RuneStart(b[len(b)-n]) {
				if r, _ := utf8.DecodeRune(b[len(b)-n:]); r == utf8.RuneError {
					b = b[:len(b)-n]
				}
				break
			}
		}
		return strings.ToValidUTF8(string(b), "\uFFFD") + "…"
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func (s *slot) event(seq uint64) Event {
	cause := mqttguard.Cause{Component: s.component, Rule: s.field(fRule), File: s.field(fFile), Line: int(s.line), Detail: s.field(fDetail)}
	e := Event{Seq: seq, At: time.Unix(0, s.at), Point: s.point.String(), Client: s.field(fClient), Username: s.field(fUsername),
		Listener: s.field(fListener), Topic: s.field(fTopic), Verdict: s.verdict.String(), Observed: s.observed,
		Code: hexCode(s.code), CodeName: s.code.String(), Component: s.component.String(), Cause: cause.String()}
	if s.addr.IsValid() {
		e.Addr = s.addr.String()
	}
	return e
}

func hexCode(c reason.Code) string {
	const digits = "0123456789ABCDEF"
	return "0x" + string([]byte{digits[c>>4], digits[c&15]})
}

// readBatch is how many slots a reader copies under one hold of the
// lock: the longest a reader makes the Guard wait is one such copy.
const readBatch = 64

// Since returns up to max refusals from sequence number seq on, oldest
// first, that keep accepts (nil: all), and the sequence number to ask
// for next time. missed counts the refusals from seq on that were
// overwritten before they could be read. Since(0, …) starts at the
// oldest refusal kept.
func (f *Feed) Since(seq uint64, max int, keep func(*Event) bool) (events []Event, next, missed uint64) {
	var batch [readBatch]slot
	for len(events) < max {
		f.mu.Lock()
		oldest := uint64(1)
		if f.next > uint64(len(f.slots)) {
			oldest = f.next - uint64(len(f.slots))
		}
		if seq < oldest {
			if seq > 0 {
				missed += oldest - seq
			}
			seq = oldest
		}
		n := int(min(f.next-seq, readBatch))
		for i := range n {
			batch[i] = f.slots[(seq+uint64(i))%uint64(len(f.slots))]
		}
		f.mu.Unlock()
		if n == 0 {
			break
		}
		for i := range n {
			e := batch[i].event(seq + uint64(i))
			if keep != nil && !keep(&e) {
				continue
			}
			if len(events) == max {
				// Full: the next read starts at this one.
				return events, seq + uint64(i), missed
			}
			events = append(events, e)
		}
		seq += uint64(n)
	}
	return events, seq, missed
}

// end is the sequence number the next refusal will get.
func (f *Feed) end() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// Latest returns up to max of the most recent refusals that keep
// accepts, newest first, looking at no more than the ring holds.
func (f *Feed) Latest(max int, keep func(*Event) bool) []Event {
	return f.latest(max, nil, keep)
}

// lastOf returns the most recent refusal of each of the client IDs
// the ring holds one of, decoding only those.
func (f *Feed) lastOf(ids map[string]bool) map[string]Event {
	out := map[string]Event{}
	f.latest(len(ids), func(s *slot) bool {
		id := s.text[:s.lens[fClient]] // the first field
		_, dup := out[string(id)]
		return ids[string(id)] && !dup
	}, func(e *Event) bool {
		out[e.Client] = *e
		return true
	})
	return out
}

// latest walks the ring from the newest refusal back and returns up to
// max events: raw (nil: all) picks slots before they are decoded, keep
// (nil: all) the decoded events.
func (f *Feed) latest(max int, raw func(*slot) bool, keep func(*Event) bool) []Event {
	var out []Event
	var batch [readBatch]slot
	f.mu.Lock()
	end := f.next
	f.mu.Unlock()
	for seq := end; seq > 1 && len(out) < max; {
		f.mu.Lock()
		oldest := uint64(1)
		if f.next > uint64(len(f.slots)) {
			oldest = f.next - uint64(len(f.slots))
		}
		if seq <= oldest {
			f.mu.Unlock()
			break
		}
		n := int(min(seq-oldest, readBatch))
		for i := range n {
			batch[i] = f.slots[(seq-1-uint64(i))%uint64(len(f.slots))]
		}
		f.mu.Unlock()
		for i := 0; i < n && len(out) < max; i++ {
			if raw != nil && !raw(&batch[i]) {
				continue
			}
			e := batch[i].event(seq - 1 - uint64(i))
			if keep == nil || keep(&e) {
				out = append(out, e)
			}
		}
		seq -= uint64(n)
	}
	return out
}
