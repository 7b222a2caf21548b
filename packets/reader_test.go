package packets

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingReader serves a header, then an endless body, and counts what
// was read: a Reader that refuses a packet from its header must not read
// (or allocate) the body.
type countingReader struct {
	header []byte
	n      int
}

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		if c.n < len(c.header) {
			p[i] = c.header[c.n]
		} else {
			p[i] = 'x'
		}
		c.n++
	}
	return len(p), nil
}

func stream(packets ...[]byte) io.Reader { return bytes.NewReader(cat(packets...)) }

func TestReaderRefusesOversizedBeforeReadingOrAllocating(t *testing.T) {
	// A PUBLISH claiming 200 MB after a valid CONNECT.
	header := cat(connect311(0x02, "c"), []byte{0x30, 0x80, 0x80, 0x80, 0x64})
	src := &countingReader{header: header}
	r := NewReader(src, Limits{})
	_, err := r.Read()
	require.NoError(t, err)
	_, err = r.Read()
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "over the maximum packet size (1048576)")
	assert.Less(t, src.n, 5000, "the body must not be read")
	assert.Less(t, cap(r.buf), 4096, "the body must not be allocated")
}

func TestReaderConnectCapBeforeAuthentication(t *testing.T) {
	// A CONNECT of 100,000 bytes is over the 64 KiB pre-authentication cap
	// although far below the maximum packet size.
	big := connect311(0x82, "c", func(b body) body { return b.u16(65535).byte(make([]byte, 65535)...).str("") })
	r := NewReader(bytes.NewReader(big), Limits{})
	_, err := r.Read()
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "before authentication")

	r = NewReader(bytes.NewReader(big), Limits{MaxConnectSize: 200_000})
	_, err = r.Read()
	assert.False(t, errors.Is(err, ErrTooLarge), "%v", err)
}

func TestReaderFirstPacketMustBeConnect(t *testing.T) {
	src := &countingReader{header: []byte{0x30, 0xff, 0xff, 0xff, 0x7f}}
	r := NewReader(src, Limits{})
	_, err := r.Read()
	require.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "[MQTT-3.1.0-1]")
	assert.Less(t, cap(r.buf), 1, "nothing allocated for a packet that was never allowed")
}

func TestReaderStream(t *testing.T) {
	r := NewReader(stream(
		connect311(0x02, "c"),
		publish311(0x02, "a/b", 1, "one"),
		pkt(0x82, body{}.u16(2).str("a/#").byte(1)),
		[]byte{0xc0, 0},
		[]byte{0xe0, 0},
	), Limits{})
	var got []Type
	for {
		p, err := r.Read()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, p.Type)
		if p.Type == PUBLISH {
			assert.Equal(t, "one", string(p.Publish.Payload))
			assert.Equal(t, V311, p.Version, "the CONNECT's version applies to what follows")
		}
	}
	assert.Equal(t, []Type{CONNECT, PUBLISH, SUBSCRIBE, PINGREQ, DISCONNECT}, got)
	assert.Equal(t, V311, r.Session().Version())
}

func TestReaderTruncatedAndBadLengths(t *testing.T) {
	for name, c := range map[string]struct {
		data []byte
		want error
	}{
		"cut in the body":              {cat(connect311(0x02, "c"), []byte{0x30, 10, 0, 3, 'a'}), io.ErrUnexpectedEOF},
		"cut in the remaining length":  {cat(connect311(0x02, "c"), []byte{0x30, 0x80}), io.ErrUnexpectedEOF},
		"5-byte remaining length":      {cat(connect311(0x02, "c"), []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}), ErrMalformed},
		"overlong remaining length":    {cat(connect311(0x02, "c"), []byte{0xc0, 0x80, 0x00}), ErrMalformed},
		"second CONNECT":               {cat(connect311(0x02, "c"), connect311(0x02, "c")), ErrProtocol},
		"CONNACK from a client":        {cat(connect311(0x02, "c"), pkt(0x20, body{}.byte(0, 0))), ErrProtocol},
		"SUBACK from a client":         {cat(connect311(0x02, "c"), pkt(0x90, body{}.u16(1).byte(0))), ErrProtocol},
		"UNSUBACK from a client":       {cat(connect311(0x02, "c"), pkt(0xb0, body{}.u16(1))), ErrProtocol},
		"PINGRESP from a client":       {cat(connect311(0x02, "c"), []byte{0xd0, 0}), ErrProtocol},
		"malformed packet after valid": {cat(connect311(0x02, "c"), publish311(0x06, "a", 1, "")), ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.data), Limits{})
			var err error
			for err == nil {
				_, err = r.Read()
			}
			assert.ErrorIs(t, err, c.want)
		})
	}
}

func TestSessionRules(t *testing.T) {
	var s Session
	p, err := Parse(publish5(0, "a", 0, nil, ""), V5, Limits{})
	require.NoError(t, err)
	assert.ErrorIs(t, s.Check(p), ErrProtocol, "PUBLISH before CONNECT")

	c, _ := Parse(connect5(0x02, nil, "c"), V5, Limits{})
	require.NoError(t, s.Check(c))
	assert.Equal(t, V5, s.Version())

	withSubID, _ := Parse(publish5(0, "a", 0, prop(PropSubscriptionID, 7), ""), V5, Limits{})
	err = s.Check(withSubID)
	require.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "[MQTT-3.3.4-6]")

	aliased, _ := Parse(publish5(0, "sensors/t1", 0, prop(PropTopicAlias, 0, 1), ""), V5, Limits{})
	assert.ErrorIs(t, s.Check(aliased), ErrTopicAlias, "no alias maximum was advertised")

	s.TopicAliasMaximum = 10
	aliased, _ = Parse(publish5(0, "sensors/t1", 0, prop(PropTopicAlias, 0, 1), ""), V5, Limits{})
	require.NoError(t, s.Check(aliased))
	only, _ := Parse(publish5(0, "", 0, prop(PropTopicAlias, 0, 1), "x"), V5, Limits{})
	require.NoError(t, s.Check(only))
	assert.Equal(t, "sensors/t1", string(only.Publish.Topic), "the alias is resolved")
	unknown, _ := Parse(publish5(0, "", 0, prop(PropTopicAlias, 0, 2), ""), V5, Limits{})
	assert.ErrorIs(t, s.Check(unknown), ErrProtocol)
	tooHigh, _ := Parse(publish5(0, "a", 0, prop(PropTopicAlias, 0, 11), ""), V5, Limits{})
	assert.ErrorIs(t, s.Check(tooHigh), ErrTopicAlias)
}

// An alias table costs what a client uses of it, within a budget: one
// aliased PUBLISH used to allocate a table for the whole maximum (65,536
// entries, 923 KiB a connection when a broker advertised that much).
func TestSessionAliasMemoryIsBounded(t *testing.T) {
	s := Session{TopicAliasMaximum: 65535, MaxAliasBytes: 100}
	c, _ := Parse(connect5(0x02, nil, "c"), V5, Limits{})
	require.NoError(t, s.Check(c))
	alias := func(n uint16, topic string) error {
		p, err := Parse(publish5(0, topic, 0, prop(PropTopicAlias, byte(n>>8), byte(n)), ""), V5, Limits{})
		require.NoError(t, err)
		return s.Check(p)
	}
	require.NoError(t, alias(1, "a"))
	assert.Len(t, s.aliases, 2, "sized by the alias used, not the maximum")
	require.NoError(t, alias(3, strings.Repeat("b", 60)))
	require.NoError(t, alias(3, strings.Repeat("c", 90)), "re-mapping an alias frees what it held")
	err := alias(2, strings.Repeat("d", 20))
	var perr *Error
	require.ErrorAs(t, err, &perr)
	assert.Equal(t, reason.QuotaExceeded, perr.Code, "a 91st..111th byte is over the budget")
	assert.Equal(t, 91, s.aliasBytes)
}

func TestReaderDoesNotAllocate(t *testing.T) {
	one := publish311(0x02, "sensors/t1/temperature", 7, `{"celsius":21.5}`)
	data := connect311(0x02, "c")
	for i := 0; i < 2000; i++ {
		data = append(data, one...)
	}
	src := bytes.NewReader(data)
	r := NewReader(src, Limits{})
	_, err := r.Read()
	require.NoError(t, err)
	_, err = r.Read()
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)

	// Parse over a packet already in memory: only the returned Packet.
	sub := pkt(0x82, body{}.u16(1).str("a/+").byte(1).str("b/#").byte(0))
	var p Packet
	lim := DefaultLimits()
	ParseInto(&p, sub, V311, lim)
	allocs = testing.AllocsPerRun(1000, func() {
		if err := ParseInto(&p, sub, V311, lim); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
