package mochiguard_test

import (
	"encoding/binary"
	"io"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/mochiguard"
	"github.com/mqttguard/mqttguard/packets"
)

// A subscriber with Receive Maximum 1 that acknowledges at once gets
// every QoS 1 message of a publisher that sends without pause. mochi
// gathers a busy client's packets for one write: the delivery holding
// the one slot sat in that buffer while the next waited for its
// acknowledgement, 30 s a time (red team, issue 29: nothing arrived in
// 7 s).
func TestReceiveMaximumOneUnderLoad(t *testing.T) {
	addr := paceServer(t, 1024, mochiguard.Options{DeliveryWait: 10 * time.Second})

	sub := mqtttest.DialRaw(t, addr)
	cp := paho.NewControlPacket(paho.CONNECT)
	cn := cp.Content.(*paho.Connect)
	one := uint16(1)
	cn.ProtocolName, cn.ProtocolVersion, cn.ClientID, cn.CleanStart, cn.KeepAlive = "MQTT", 5, "slow-window", true, 30
	cn.UsernameFlag, cn.Username, cn.PasswordFlag, cn.Password = true, "u", true, []byte("p")
	cn.Properties = &paho.Properties{ReceiveMaximum: &one}
	_, err := cp.WriteTo(sub)
	require.NoError(t, err)
	ack, err := paho.ReadPacket(sub)
	require.NoError(t, err)
	require.Equal(t, byte(0), ack.Content.(*paho.Connack).ReasonCode)
	require.Equal(t, byte(1), mqtttest.SubscribeCode5(t, sub, "load/#", 1))

	pub := mqtttest.DialRaw(t, addr)
	require.Equal(t, byte(0), mqtttest.Connect5(t, pub, "pub", "u", "p", nil))
	go io.Copy(io.Discard, pub) // its PUBACKs
	const n = 2000
	go func() {
		var batch []byte
		for i := range n {
			batch = appendPublish5(batch, "load/x", 1, uint16(i%65535+1), 100)
			if len(batch) > 32<<10 || i == n-1 {
				if _, err := pub.Write(batch); err != nil {
					return
				}
				batch = batch[:0]
			}
		}
	}()

	got := 0
	sub.SetReadDeadline(time.Now().Add(20 * time.Second))
	for got < n {
		p, err := paho.ReadPacket(sub)
		if err != nil {
			break
		}
		if m, ok := p.Content.(*paho.Publish); ok {
			got++
			pa := paho.NewControlPacket(paho.PUBACK)
			pa.Content.(*paho.Puback).PacketID = m.PacketID
			_, err := pa.WriteTo(sub)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, n, got, "a Receive Maximum 1 subscriber that acknowledges at once gets every message")
}

// appendPublish5 appends an MQTT 5 PUBLISH without properties.
func appendPublish5(dst []byte, topic string, qos byte, id uint16, payload int) []byte {
	body := binary.BigEndian.AppendUint16(nil, uint16(len(topic)))
	body = append(body, topic...)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, id)
	}
	body = append(body, 0) // no properties
	body = append(body, make([]byte, payload)...)
	dst = packets.AppendVBI(append(dst, 0x30|qos<<1), len(body))
	return append(dst, body...)
}
