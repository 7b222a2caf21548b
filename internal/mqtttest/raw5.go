package mqtttest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/packets"
)

// Raw MQTT 5 (and 3.1.1 CONNECT) clients for tests that attack a broker
// over a socket and assert the bytes it answers with.

// DialRaw opens a TCP connection for the raw clients below, closed
// when the test ends; every read and write has 10 s.
func DialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// Will is a will message for Connect5.
type Will struct{ Topic, Payload string }

// Connect5 sends an MQTT 5 CONNECT and returns the CONNACK's reason code.
func Connect5(t testing.TB, c net.Conn, id, user, pass string, w *Will) byte {
	t.Helper()
	cp := paho.NewControlPacket(paho.CONNECT)
	cn := cp.Content.(*paho.Connect)
	cn.ProtocolName, cn.ProtocolVersion, cn.ClientID, cn.CleanStart, cn.KeepAlive = "MQTT", 5, id, true, 30
	cn.UsernameFlag, cn.Username, cn.PasswordFlag, cn.Password = true, user, true, []byte(pass)
	if w != nil {
		cn.WillFlag, cn.WillTopic, cn.WillMessage, cn.WillProperties = true, w.Topic, []byte(w.Payload), &paho.Properties{}
	}
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	ack, err := paho.ReadPacket(c)
	require.NoError(t, err, "a CONNACK, not silence")
	ca, ok := ack.Content.(*paho.Connack)
	require.True(t, ok, "got %v", ack)
	return ca.ReasonCode
}

// Connect311 sends an MQTT 3.1.1 CONNECT and returns the CONNACK's bytes.
func Connect311(t testing.TB, c net.Conn, id, user, pass string) []byte {
	t.Helper()
	pkt := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V311, CleanStart: true,
		KeepAlive: 30, ClientID: []byte(id), UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}, nil)
	_, err := c.Write(pkt)
	require.NoError(t, err)
	ack := make([]byte, 4)
	_, err = io.ReadFull(c, ack)
	require.NoError(t, err, "a CONNACK, not silence")
	return ack
}

// Subscribe5 subscribes to filter at QoS 0 and requires SUBACK 0.
func Subscribe5(t testing.TB, c net.Conn, filter string) {
	t.Helper()
	require.Equal(t, byte(0), SubscribeCode5(t, c, filter, 0))
}

// SubscribeCode5 subscribes to filter at qos and returns the SUBACK's
// reason code.
func SubscribeCode5(t testing.TB, c net.Conn, filter string, qos byte) byte {
	t.Helper()
	cp := paho.NewControlPacket(paho.SUBSCRIBE)
	s := cp.Content.(*paho.Subscribe)
	s.PacketID, s.Subscriptions = 1, []paho.SubOptions{{Topic: filter, QoS: qos}}
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	for {
		ack, err := paho.ReadPacket(c)
		require.NoError(t, err, "a SUBACK")
		if sa, ok := ack.Content.(*paho.Suback); ok {
			require.Len(t, sa.Reasons, 1)
			return sa.Reasons[0]
		}
	}
}

// Disconnected reads until the broker ends the connection and returns
// the MQTT 5 DISCONNECT's reason code (-1 when it closed without one)
// and when the connection ended.
func Disconnected(t testing.TB, c net.Conn, wait time.Duration) (code int, at time.Time) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		cp, err := paho.ReadPacket(c)
		if err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the broker did not end the connection within %v", wait)
			return -1, time.Now()
		}
		if d, ok := cp.Content.(*paho.Disconnect); ok {
			return int(d.ReasonCode), time.Now()
		}
	}
}

// Publish5 publishes and, for QoS 1, returns the PUBACK's reason code.
func Publish5(t testing.TB, c net.Conn, topic string, qos byte, id uint16) byte {
	t.Helper()
	cp := paho.NewControlPacket(paho.PUBLISH)
	p := cp.Content.(*paho.Publish)
	p.Topic, p.QoS, p.Payload, p.Properties = topic, qos, []byte("21.5"), &paho.Properties{}
	if qos > 0 {
		p.PacketID = id
	}
	_, err := cp.WriteTo(c)
	require.NoError(t, err)
	if qos == 0 {
		return 0
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		ack, err := paho.ReadPacket(c)
		require.NoError(t, err, "a PUBACK within 5 s: never a hang")
		if pa, ok := ack.Content.(*paho.Puback); ok {
			require.Equal(t, id, pa.PacketID)
			return pa.ReasonCode
		}
	}
}

// Received reads what the subscriber gets for d and returns the topics.
func Received(t testing.TB, c net.Conn, d time.Duration) []string {
	t.Helper()
	var topics []string
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		cp, err := paho.ReadPacket(c)
		if err != nil {
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "the subscriber's connection: %v", err)
			return topics
		}
		if p, ok := cp.Content.(*paho.Publish); ok {
			topics = append(topics, p.Topic)
		}
	}
}

// Count counts topic in topics.
func Count(topics []string, topic string) int {
	n := 0
	for _, x := range topics {
		if x == topic {
			n++
		}
	}
	return n
}
