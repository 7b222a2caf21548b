package packets

// Limits bound what a packet may contain beyond what the specification
// allows. A zero field means its default; the defaults suit a broker for
// IoT fleets and stop every allocation-by-claim attack before a client
// has authenticated.
type Limits struct {
	// MaxPacketSize is the largest packet, fixed header included (default
	// 1 MiB; the protocol allows 256 MiB). Checked from the fixed header,
	// before the body is allocated or read.
	MaxPacketSize int
	// MaxConnectSize is the largest first packet, which arrives before the
	// client is authenticated (default 64 KiB; mosquitto uses 100,000).
	MaxConnectSize int
	// MaxTopicLength and MaxTopicLevels bound topic names and filters
	// (defaults 4096 bytes and 64 levels; mosquitto allows 200 levels,
	// VerneMQ 10).
	MaxTopicLength int
	MaxTopicLevels int
	// MaxClientIDLength bounds client identifiers (default 256 bytes; the
	// specification requires servers to accept at least 23).
	MaxClientIDLength int
	// MaxSubscriptions bounds the filters of one SUBSCRIBE or UNSUBSCRIBE
	// (default 64).
	MaxSubscriptions int
	// MaxProperties and MaxUserProperties bound the properties of one
	// packet, and the user properties among them (defaults 64 and 32).
	MaxProperties     int
	MaxUserProperties int
	// AllowControlChars accepts the control characters U+0001–U+001F and
	// U+007F–U+009F and Unicode non-characters in strings. The
	// specification says they SHOULD NOT be sent and a receiver MAY
	// treat them as malformed; by default they are refused, as mosquitto
	// refuses them.
	AllowControlChars bool

	complete bool // the defaults are filled in
}

// DefaultLimits returns the defaults, for inspection or to change one
// field.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.complete {
		return l
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxPacketSize, 1<<20)
	def(&l.MaxConnectSize, 64<<10)
	def(&l.MaxTopicLength, 4096)
	def(&l.MaxTopicLevels, 64)
	def(&l.MaxClientIDLength, 256)
	def(&l.MaxSubscriptions, 64)
	def(&l.MaxProperties, 64)
	def(&l.MaxUserProperties, 32)
	// A packet cannot exceed what its length field can say.
	l.MaxPacketSize = min(l.MaxPacketSize, maxRemaining+5)
	l.MaxConnectSize = min(l.MaxConnectSize, l.MaxPacketSize)
	l.complete = true
	return l
}

// maxRemaining is the largest remaining length four bytes can encode.
const maxRemaining = 268_435_455
