package bench

import (
	"bytes"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard/packets"
)

// benchPackets are MQTT 5.0 packets encoded by paho.golang, so all three
// decoders read the same bytes (paho.golang reads only 5.0).
func benchPackets(b *testing.B) map[string][]byte {
	write := func(f func(*bytes.Buffer) (int64, error)) []byte {
		var buf bytes.Buffer
		if _, err := f(&buf); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	small := &paho.Publish{Topic: "sensors/t1/temperature", QoS: 1, PacketID: 7, Payload: []byte(`{"celsius":21.5}`), Properties: &paho.Properties{}}
	big := &paho.Publish{Topic: "cameras/c1/frame", QoS: 0, Payload: []byte(strings.Repeat("x", 64<<10)), Properties: &paho.Properties{}}
	conn := &paho.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: "sensor-t1", KeepAlive: 60, CleanStart: true,
		UsernameFlag: true, Username: "t1", PasswordFlag: true, Password: []byte("s3cret"),
		WillFlag: true, WillTopic: "status/t1", WillMessage: []byte("offline"), WillQOS: 1,
		Properties: &paho.Properties{}, WillProperties: &paho.Properties{}}
	sub := &paho.Subscribe{PacketID: 9, Properties: &paho.Properties{}, Subscriptions: []paho.SubOptions{
		{Topic: "sensors/+/temperature", QoS: 1}, {Topic: "alerts/#", QoS: 2}, {Topic: "$share/g/jobs/+", QoS: 0}}}
	return map[string][]byte{
		"publish-small": write(func(w *bytes.Buffer) (int64, error) { return small.WriteTo(w) }),
		"publish-64KiB": write(func(w *bytes.Buffer) (int64, error) { return big.WriteTo(w) }),
		"connect":       write(func(w *bytes.Buffer) (int64, error) { return conn.WriteTo(w) }),
		"subscribe":     write(func(w *bytes.Buffer) (int64, error) { return sub.WriteTo(w) }),
	}
}

// mochiDecode is what mochi-mqtt's client loop does with a packet:
// decode the fixed header and length, then decode and validate the body.
func mochiDecode(raw []byte) error {
	var pk mochi.Packet
	pk.ProtocolVersion = 5
	if err := pk.FixedHeader.Decode(raw[0]); err != nil {
		return err
	}
	r := bytes.NewReader(raw[1:])
	rem, n, err := mochi.DecodeLength(r)
	if err != nil {
		return err
	}
	pk.FixedHeader.Remaining = rem
	body := raw[1+n:]
	switch pk.FixedHeader.Type {
	case mochi.Publish:
		if err := pk.PublishDecode(body); err != nil {
			return err
		}
		pk.PublishValidate(65535)
	case mochi.Connect:
		if err := pk.ConnectDecode(body); err != nil {
			return err
		}
		pk.ConnectValidate()
	case mochi.Subscribe:
		if err := pk.SubscribeDecode(body); err != nil {
			return err
		}
		pk.SubscribeValidate()
	}
	return nil
}

// BenchmarkDecode: decode and validate one packet from bytes in memory.
func BenchmarkDecode(b *testing.B) {
	pkts := benchPackets(b)
	for _, name := range []string{"publish-small", "publish-64KiB", "connect", "subscribe"} {
		raw := pkts[name]
		// Every decoder must accept the packet, or the race is unfair.
		var p packets.Packet
		if err := packets.ParseInto(&p, raw, packets.V5, packets.Limits{}); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		if err := mochiDecode(raw); err != nil {
			b.Fatalf("mochi %s: %v", name, err)
		}
		if _, err := paho.ReadPacket(bytes.NewReader(raw)); err != nil {
			b.Fatalf("paho %s: %v", name, err)
		}
		lim := packets.DefaultLimits() // once, as a broker does
		b.Run(name+"/impl=mqttguard", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := packets.ParseInto(&p, raw, packets.V5, lim); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/impl=mochi", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := mochiDecode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/impl=paho", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := paho.ReadPacket(bytes.NewReader(raw)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopReader serves the same stream forever, as a connection would.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

// BenchmarkReader: a reused Reader reading a stream of PUBLISH packets,
// the copy from the connection included.
func BenchmarkReader(b *testing.B) {
	pkts := benchPackets(b)
	for _, name := range []string{"publish-small", "publish-64KiB"} {
		raw := pkts[name]
		b.Run(name+"/impl=mqttguard", func(b *testing.B) {
			// A CONNECT first, then the PUBLISH over and over.
			r := packets.NewReader(&prefixed{first: pkts["connect"], rest: &loopReader{data: raw}}, packets.Limits{})
			if _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type prefixed struct {
	first []byte
	rest  *loopReader
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.rest.Read(b)
}
