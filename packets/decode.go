package packets

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/mqttguard/mqttguard/reason"
)

// cursor reads the fields of one packet. Every read is bounded by end
// (the packet's end, or the end of a property section), so a length
// field can never make a read run past what was declared or received.
type cursor struct {
	b   []byte // the whole packet
	pos int
	end int
	t   Type
	lim *Limits
}

func (c *cursor) left() int { return c.end - c.pos }

func (c *cursor) short(what string, need int) *Error {
	return malformed(c.t, c.pos, "[MQTT-1.5]", "%s needs %d byte(s), %d left in the packet", what, need, c.left())
}

func (c *cursor) byte1(what string) (byte, error) {
	if c.left() < 1 {
		return 0, c.short(what, 1)
	}
	v := c.b[c.pos]
	c.pos++
	return v, nil
}

func (c *cursor) u16(what string) (uint16, error) {
	if c.left() < 2 {
		return 0, c.short(what, 2)
	}
	v := binary.BigEndian.Uint16(c.b[c.pos:])
	c.pos += 2
	return v, nil
}

func (c *cursor) u32(what string) (uint32, error) {
	if c.left() < 4 {
		return 0, c.short(what, 4)
	}
	v := binary.BigEndian.Uint32(c.b[c.pos:])
	c.pos += 4
	return v, nil
}

// vbi reads a Variable Byte Integer: at most four bytes, and encoded in
// as few bytes as possible [MQTT-1.5.5-1].
func (c *cursor) vbi(what string) (int, error) {
	start := c.pos
	v, n, err := decodeVBI(c.b[c.pos:c.end])
	if err != nil {
		err.Type, err.Offset = c.t, start
		err.Msg = what + ": " + err.Msg
		return 0, err
	}
	c.pos += n
	return v, nil
}

// decodeVBI decodes a Variable Byte Integer from the start of b.
func decodeVBI(b []byte) (value, n int, err *Error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, &Error{Code: reason.MalformedPacket, Rule: "[MQTT-1.5.5]", Offset: -1, Msg: "variable byte integer cut short"}
		}
		d := b[i]
		if i > 0 && d == 0 {
			// A trailing zero byte adds nothing: an overlong encoding.
			return 0, 0, &Error{Code: reason.MalformedPacket, Rule: "[MQTT-1.5.5-1]", Offset: -1, Msg: "variable byte integer not in its shortest form"}
		}
		value += int(d&0x7f) * mult
		if d&0x80 == 0 {
			return value, i + 1, nil
		}
		mult <<= 7
	}
	return 0, 0, &Error{Code: reason.MalformedPacket, Rule: "[MQTT-1.5.5]", Offset: -1, Msg: "variable byte integer longer than 4 bytes"}
}

// binary reads two-byte-length-prefixed binary data. The error path is
// out of line so that the common path inlines.
func (c *cursor) binary(what string) ([]byte, error) {
	if c.end-c.pos >= 2 {
		n := int(c.b[c.pos])<<8 | int(c.b[c.pos+1])
		if start := c.pos + 2; n <= c.end-start {
			c.pos = start + n
			return c.b[start:c.pos:c.pos], nil
		}
	}
	return nil, c.binaryErr(what)
}

func (c *cursor) binaryErr(what string) error {
	if c.left() < 2 {
		return c.short(what+" length", 2)
	}
	n := binary.BigEndian.Uint16(c.b[c.pos:])
	return malformed(c.t, c.pos, "[MQTT-1.5.6]", "%s claims %d bytes, %d left in the packet", what, n, c.left()-2)
}

// str reads a UTF-8 encoded string and validates it.
func (c *cursor) str(what string) ([]byte, error) {
	start := c.pos + 2
	v, err := c.binary(what)
	if err != nil {
		return nil, err
	}
	if i, why := checkUTF8(v, c.lim.AllowControlChars); i >= 0 {
		return nil, malformed(c.t, start+i, "[MQTT-1.5.4-1]", "%s: %s", what, why)
	}
	return v, nil
}

// checkUTF8 returns the offset of the first byte that makes b an invalid
// MQTT string, and why; -1 when it is valid. Well-formed UTF-8 without
// U+0000 is required [MQTT-1.5.4-1] [MQTT-1.5.4-2]; control characters
// and non-characters are refused unless allowed.
func checkUTF8(b []byte, allowControl bool) (int, string) {
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c < 0x7f {
			i++ // the common case: printable ASCII
			continue
		}
		if c < utf8.RuneSelf {
			if c == 0 {
				return i, "contains U+0000 [MQTT-1.5.4-2]"
			}
			if !allowControl {
				return i, "contains a control character"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i, "is not valid UTF-8"
		}
		if !allowControl && (r <= 0x9f || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe) {
			return i, "contains a control character or non-character"
		}
		i += size
	}
	return -1, ""
}

// done fails if bytes are left: every packet ends with its last field
// (or its payload).
func (c *cursor) done(what string) error {
	if c.pos != c.end {
		return malformed(c.t, c.pos, "", "%d unexpected byte(s) after the %s", c.end-c.pos, what)
	}
	return nil
}
