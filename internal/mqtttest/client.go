// Package mqtttest holds what tests need to talk MQTT to real brokers:
// the smallest MQTT 3.1.1 client that can connect, subscribe, publish
// and flush deliveries, and a launcher for a mosquitto broker on a free
// loopback port. It is for tests only.
package mqtttest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/internal/mqttwire"
	"github.com/mqttguard/mqttguard/packets"
)

// Client is the smallest MQTT 3.1.1 client a broker comparison needs:
// CONNECT, SUBSCRIBE at QoS 0, PUBLISH at QoS 1, and a PINGREQ round trip
// to flush deliveries. Brokers write a client's packets in order from one
// queue, so every PUBLISH queued for it before its PINGREQ arrives before
// the PINGRESP.
type Client struct {
	t        testing.TB
	conn     net.Conn
	r        *bufio.Reader
	nextID   uint16
	received []string
}

// Dial connects and fails the test unless the broker accepts.
func Dial(t testing.TB, addr, clientID, username, password string) *Client {
	t.Helper()
	c, code := Connect(t, addr, clientID, username, password)
	if code != 0 {
		t.Fatalf("CONNECT as %q/%q refused with return code %d", clientID, username, code)
	}
	return c
}

// Connect sends CONNECT (MQTT 3.1.1, clean session) and returns the
// client with the CONNACK return code.
func Connect(t testing.TB, addr, clientID, username, password string) (*Client, byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &Client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	c.send(mqttwire.Connect(packets.V311, 60, clientID, username, password))
	typ, resp := c.read()
	if typ != 0x20 || len(resp) != 2 {
		t.Fatalf("CONNECT as %q/%q: want CONNACK, got type %#x body %v", clientID, username, typ, resp)
	}
	return c, resp[1]
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (c *Client) write(header byte, body []byte) {
	c.t.Helper()
	c.send(append(packets.AppendVBI([]byte{header}, len(body)), body...))
}

func (c *Client) send(pkt []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write(pkt); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next packet's type nibble (shifted) and body; PUBLISH
// packets are recorded and skipped.
func (c *Client) read() (byte, []byte) {
	c.t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		pkt, hdr, err := mqttwire.ReadPacket(c.r, nil)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		h, body := pkt[0], pkt[hdr:]
		if h&0xf0 == 0x30 {
			tl := int(binary.BigEndian.Uint16(body))
			c.received = append(c.received, string(body[2:2+tl]))
			continue
		}
		return h & 0xf0, body
	}
}

func (c *Client) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// Subscribe subscribes at QoS 0 and waits for the SUBACK.
func (c *Client) Subscribe(filters ...string) {
	c.t.Helper()
	body := binary.BigEndian.AppendUint16(nil, c.id())
	for _, f := range filters {
		body = appendString(body, f)
		body = append(body, 0)
	}
	c.write(0x82, body)
	if typ, _ := c.read(); typ != 0x90 {
		c.t.Fatalf("want SUBACK, got %#x", typ)
	}
}

// Publish sends QoS 1 and waits for the PUBACK, which mosquitto sends
// for denied publishes too (MQTT 3.1.1 has no negative acknowledgement).
func (c *Client) Publish(topic string) {
	c.t.Helper()
	body := appendString(nil, topic)
	body = binary.BigEndian.AppendUint16(body, c.id())
	body = append(body, "x"...)
	c.write(0x32, body)
	if typ, _ := c.read(); typ != 0x40 {
		c.t.Fatalf("want PUBACK, got %#x", typ)
	}
}

// Sync flushes deliveries and returns the topics received so far.
func (c *Client) Sync() []string {
	c.t.Helper()
	c.write(0xc0, nil)
	if typ, _ := c.read(); typ != 0xd0 {
		c.t.Fatalf("want PINGRESP, got %#x", typ)
	}
	out := c.received
	c.received = nil
	return out
}

func (c *Client) String() string { return fmt.Sprint(c.conn.LocalAddr()) }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
