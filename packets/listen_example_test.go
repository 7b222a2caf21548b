package packets_test

import (
	"fmt"
	"io"
	"net"

	"github.com/mqttguard/mqttguard/packets"
)

// A broker serves on the listener Listen returns instead of its own: it
// reads only packets that passed the Reader, and a client that sends
// anything else is disconnected (MQTT 5: with the reason code) before the
// broker parses a byte of it.
func ExampleListen() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	safe := packets.Listen(ln, packets.ListenerConfig{
		Limits:   packets.Limits{MaxPacketSize: 1 << 20},
		OnReject: func(c *packets.Conn, err error) { fmt.Println("refused:", err) },
	})
	defer safe.Close()

	go func() { // a client: a valid CONNECT (3.1.1, "dev-1"), then PUBLISH at QoS 3
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte{0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05, 'd', 'e', 'v', '-', '1',
			0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 'x'})
		io.Copy(io.Discard, c) // until the server closes
	}()

	conn, err := safe.Accept() // what the broker's accept loop gets
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := io.ReadAll(conn)
	fmt.Printf("the broker read %d bytes (the CONNECT), then: %v\n", len(got), err)
	// Output:
	// refused: mqtt: PUBLISH: QoS 3 is not allowed at byte 0 [MQTT-3.3.1-4] (malformed packet)
	// the broker read 19 bytes (the CONNECT), then: mqtt: PUBLISH: QoS 3 is not allowed at byte 0 [MQTT-3.3.1-4] (malformed packet)
}

// A client address may hold only so many connections that the server
// has not accepted yet (no CONNACK with reason code 0): the oldest goes
// when a new one would go over. Here the cap is 2 and one address opens
// three connections that send nothing.
func ExampleListener_Pending() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	safe := packets.Listen(ln, packets.ListenerConfig{MaxPendingPerAddress: 2})
	defer safe.Close()

	var conns []net.Conn
	for range 3 {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Println(err)
			return
		}
		defer client.Close()
		conn, err := safe.Accept()
		if err != nil {
			fmt.Println(err)
			return
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	_, err = conns[0].Read(make([]byte, 16)) // what the broker reading the oldest gets
	fmt.Println(err)
	fmt.Printf("%+v\n", safe.Pending())
	// Output:
	// packets: closed the oldest of 2 connections from 127.0.0.1 that had not been accepted yet (ListenerConfig.MaxPendingPerAddress)
	// {Pending:2 Addresses:1 EvictedPerAddress:1 EvictedTotal:0}
}
