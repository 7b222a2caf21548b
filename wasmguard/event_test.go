package wasmguard

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/wasmguard/guest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randString(r *rand.Rand) string {
	b := make([]byte, r.IntN(40))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

// The host's encoder and the guest's decoder agree on every field.
func TestEventRecordRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1700000000, 123456789)
	for i := 0; i < 500; i++ {
		when := time.Time{}
		if i%2 == 0 {
			when = time.Unix(int64(r.Uint32()), int64(r.IntN(1e9)))
		}
		want := when
		if want.IsZero() {
			want = now
		}

		c := ConnectEvent{Time: when, ClientID: randString(r), Username: randString(r), HasPassword: r.IntN(2) == 0,
			RemoteAddr: randString(r), ProtocolVersion: byte(3 + r.IntN(3)), CleanStart: r.IntN(2) == 0,
			KeepAlive: uint16(r.Uint32()), CertIdentity: randString(r)}
		ev := event{kind: kindConnect, c: &c}
		buf := make([]byte, ev.size())
		ev.encode(buf, now)
		gc, err := guest.DecodeConnect(buf)
		require.NoError(t, err)
		assert.Equal(t, guest.Connect{Time: want, ClientID: c.ClientID, Username: c.Username, HasPassword: c.HasPassword,
			RemoteAddr: c.RemoteAddr, ProtocolVersion: c.ProtocolVersion, CleanStart: c.CleanStart,
			KeepAlive: c.KeepAlive, CertIdentity: c.CertIdentity}, gc)

		s := SubscribeEvent{Time: when, ClientID: randString(r), Username: randString(r), Filter: randString(r), QoS: byte(r.IntN(3))}
		ev = event{kind: kindSubscribe, s: &s}
		buf = make([]byte, ev.size())
		ev.encode(buf, now)
		gs, err := guest.DecodeSubscribe(buf)
		require.NoError(t, err)
		assert.Equal(t, guest.Subscribe{Time: want, ClientID: s.ClientID, Username: s.Username, Filter: s.Filter, QoS: s.QoS}, gs)

		p := PublishEvent{Time: when, ClientID: randString(r), Username: randString(r), Topic: randString(r),
			QoS: byte(r.IntN(3)), Retain: r.IntN(2) == 0, Payload: []byte(randString(r))}
		ev = event{kind: kindPublish, p: &p}
		buf = make([]byte, ev.size())
		ev.encode(buf, now)
		gp, err := guest.DecodePublish(buf)
		require.NoError(t, err)
		if len(p.Payload) == 0 {
			p.Payload = gp.Payload // nil and empty are the same to a plugin
		}
		assert.Equal(t, guest.Publish{Time: want, ClientID: p.ClientID, Username: p.Username, Topic: p.Topic,
			QoS: p.QoS, Retain: p.Retain, Payload: p.Payload}, gp)

		_, err = guest.DecodeConnect(buf)
		assert.Error(t, err, "a publish record is not a connect record")
	}
}

func BenchmarkEncodePublish(b *testing.B) {
	p := PublishEvent{ClientID: "sensor-0042", Username: "sensor", Topic: "sensors/0042/temperature", Payload: []byte(`{"t":21.5}`)}
	buf := make([]byte, 256)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ev := event{kind: kindPublish, p: &p}
		ev.encode(buf[:ev.size()], now)
	}
}
