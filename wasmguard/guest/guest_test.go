package guest

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// record builds an event record the way the host does (the host's
// encoder is tested against these decoders in package wasmguard).
func makeRecord(kind Kind, flags byte, fixed [4]byte, t time.Time, fields ...string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, ABIVersion)
	b = append(b, byte(kind), flags)
	b = append(b, fixed[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
	for _, f := range fields {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func TestDecodePublish(t *testing.T) {
	when := time.Unix(1700000000, 42)
	rec := makeRecord(KindPublish, 1, [4]byte{2}, when, "sensor-1", "alice", "sensors/1/t", `{"t":21.5}`)
	p, err := DecodePublish(rec)
	require.NoError(t, err)
	assert.Equal(t, Publish{Time: when, ClientID: "sensor-1", Username: "alice", Topic: "sensors/1/t",
		QoS: 2, Retain: true, Payload: []byte(`{"t":21.5}`)}, p)

	// Strings are copied; the payload is not.
	rec[len(rec)-1] = 'X'
	assert.Equal(t, byte('X'), p.Payload[len(p.Payload)-1])
	copy(rec[20:], "XXXX")
	assert.Equal(t, "sensor-1", p.ClientID)
}

func TestDecodeConnectAndSubscribe(t *testing.T) {
	when := time.Unix(5, 0)
	fixed := [4]byte{5, 0}
	binary.LittleEndian.PutUint16(fixed[2:], 60)
	c, err := DecodeConnect(makeRecord(KindConnect, 3, fixed, when, "id", "user", "10.0.0.1:5000", "CN=dev"))
	require.NoError(t, err)
	assert.Equal(t, Connect{Time: when, ClientID: "id", Username: "user", HasPassword: true, RemoteAddr: "10.0.0.1:5000",
		ProtocolVersion: 5, CleanStart: true, KeepAlive: 60, CertIdentity: "CN=dev"}, c)

	s, err := DecodeSubscribe(makeRecord(KindSubscribe, 0, [4]byte{1}, when, "id", "user", "a/+/c"))
	require.NoError(t, err)
	assert.Equal(t, Subscribe{Time: when, ClientID: "id", Username: "user", Filter: "a/+/c", QoS: 1}, s)
}

func TestDecodeErrors(t *testing.T) {
	good := makeRecord(KindSubscribe, 0, [4]byte{}, time.Unix(0, 0), "id", "user", "a/b")
	v2 := append([]byte(nil), good...)
	v2[0] = 2
	long := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(long[16:], 1000)
	for _, tc := range []struct {
		name string
		rec  []byte
		says string
	}{
		{"empty", nil, "shorter than the 16-byte header"},
		{"version", v2, "ABI version 2; this package reads version 1"},
		{"kind", makeRecord(KindPublish, 0, [4]byte{}, time.Unix(0, 0), "", "", "", ""), "a publish event, not subscribe"},
		{"truncated", good[:len(good)-1], "a field of 3 bytes, 2 remain"},
		{"no length", good[:18], "truncated length"},
		{"overrun", long, "a field of 1000 bytes"},
		{"trailing", append(append([]byte(nil), good...), 0), "1 bytes after the last field"},
	} {
		_, err := DecodeSubscribe(tc.rec)
		var de *DecodeError
		require.ErrorAs(t, err, &de, tc.name)
		assert.Contains(t, err.Error(), tc.says, tc.name)
	}
}

func TestVerdicts(t *testing.T) {
	assert.Equal(t, Verdict(0), Allow())
	assert.Equal(t, Verdict(0x9701), Deny(reason.QuotaExceeded))
	assert.Equal(t, Verdict(1), Deny(0))
	assert.Equal(t, Verdict(1), Deny(0x10), "a success code is not a refusal")
	assert.Equal(t, reason.NotAuthorized, Deny(0).Reason())
	assert.Equal(t, Verdict(2), Drop())
	assert.Equal(t, "deny(0x97)", Deny(0x97).String())
	assert.Equal(t, "allow", Allow().String())
	assert.Equal(t, "drop", Drop().String())
	assert.Equal(t, "Verdict(0x7)", Verdict(7).String())
}

// The exported buffer and the Handle functions, outside WebAssembly.
func TestHandle(t *testing.T) {
	rec := makeRecord(KindPublish, 0, [4]byte{}, time.Unix(0, 0), "c", "u", "deny/me", "")
	ptr := bufferFor(int32(len(rec)))
	require.NotZero(t, ptr)
	copy(buffer, rec)
	topic := ""
	got := HandlePublish(int32(len(rec)), func(p *Publish) Verdict {
		topic = p.Topic
		return Deny(reason.NotAuthorized)
	})
	assert.Equal(t, int32(Deny(reason.NotAuthorized)), got)
	assert.Equal(t, "deny/me", topic)

	called := false
	got = HandlePublish(int32(len(buffer)+1), func(*Publish) Verdict { called = true; return Allow() })
	assert.False(t, called)
	assert.Equal(t, int32(Deny(reason.UnspecifiedError)), got, "an event it cannot read is refused")
	assert.Zero(t, bufferFor(-1))
	assert.Zero(t, bufferFor(maxBuffer+1))
}

func FuzzDecode(f *testing.F) {
	f.Add(makeRecord(KindPublish, 1, [4]byte{1}, time.Unix(1, 1), "c", "u", "t", "p"))
	f.Add(makeRecord(KindConnect, 3, [4]byte{5}, time.Unix(1, 1), "c", "u", "a", "cn"))
	f.Add(makeRecord(KindSubscribe, 0, [4]byte{2}, time.Unix(1, 1), "c", "u", "#"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		if p, err := DecodePublish(rec); err == nil {
			assert.Equal(t, len(rec), headerSize+16+len(p.ClientID)+len(p.Username)+len(p.Topic)+len(p.Payload))
		}
		if c, err := DecodeConnect(rec); err == nil {
			assert.Equal(t, len(rec), headerSize+16+len(c.ClientID)+len(c.Username)+len(c.RemoteAddr)+len(c.CertIdentity))
		}
		if s, err := DecodeSubscribe(rec); err == nil {
			assert.Equal(t, len(rec), headerSize+12+len(s.ClientID)+len(s.Username)+len(s.Filter))
		}
	})
}
