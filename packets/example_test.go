package packets_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
)

func ExampleReader() {
	// A client's byte stream: CONNECT (3.1.1, client ID "dev-1"), then a
	// PUBLISH at QoS 3, which no MQTT version allows.
	stream := []byte{
		0x10, 0x11, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05, 'd', 'e', 'v', '-', '1',
		0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 'x',
	}
	r := packets.NewReader(bytes.NewReader(stream), packets.Limits{})
	for {
		p, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("closing:", err)
			fmt.Println("DISCONNECT reason:", packets.CodeOf(err))
			break
		}
		fmt.Println(p.Type, string(p.Connect.ClientID))
	}
	// Output:
	// CONNECT dev-1
	// closing: mqtt: PUBLISH: QoS 3 is not allowed at byte 0 [MQTT-3.3.1-4] (malformed packet)
	// DISCONNECT reason: malformed packet
}

func ExampleParse() {
	raw := []byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', '#', 0x01} // SUBSCRIBE a/# at QoS 1
	p, err := packets.Parse(raw, packets.V311, packets.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range p.Subscriptions {
		fmt.Println(string(s.Filter), s.QoS)
	}
	// Output:
	// a/# 1
}

func ExampleLimits() {
	// A CONNECT that claims 10 MB before the client has authenticated is
	// refused from its fixed header.
	r := packets.NewReader(bytes.NewReader([]byte{0x10, 0x80, 0xad, 0xe2, 0x04}), packets.Limits{})
	_, err := r.Read()
	fmt.Println(errors.Is(err, packets.ErrTooLarge))
	fmt.Println(err)
	// Output:
	// true
	// mqtt: CONNECT: packet of 10000005 bytes is over the maximum size of a CONNECT before authentication (65536) at byte 1 (packet too large)
}

func ExampleAppendConnack() {
	// The same refusal for both protocol versions.
	fmt.Printf("% x\n", packets.AppendConnack(nil, packets.V5, false, reason.Banned))
	fmt.Printf("% x\n", packets.AppendConnack(nil, packets.V311, false, reason.Banned))
	// Output:
	// 20 03 00 8a 00
	// 20 02 00 05
}
