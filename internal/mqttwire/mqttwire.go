// Package mqttwire holds the raw MQTT framing that this module's test
// clients and load generators share: a CONNECT built with
// packets.AppendConnect, and a reader of one control packet by its fixed
// header that does not validate what it reads (a client trusts, or checks
// by itself, what the server sends).
//
// It is internal: servers use package packets, which validates.
package mqttwire

import (
	"errors"
	"io"

	"github.com/mqttguard/mqttguard/packets"
)

// Connect returns a CONNECT for protocol level v (packets.V31, V311 or
// V5) with Clean Start (Clean Session) set, the given keep alive in
// seconds and client ID, and a username and a password when they are not
// empty. An MQTT 5 CONNECT has an empty property section.
func Connect(v packets.Version, keepAlive uint16, id, user, pass string) []byte {
	cn := packets.Connect{ProtocolName: []byte("MQTT"), Level: v, CleanStart: true, KeepAlive: keepAlive,
		ClientID: []byte(id), UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass)}
	if v == packets.V31 {
		cn.ProtocolName = []byte("MQIsdp")
	}
	return packets.AppendConnect(nil, &cn, nil)
}

// ErrRemainingLength is what ReadPacket returns for a Remaining Length
// longer than the four bytes MQTT allows.
var ErrRemainingLength = errors.New("mqttwire: remaining length longer than 4 bytes")

// Reader is what ReadPacket reads from (a *bufio.Reader).
type Reader interface {
	io.Reader
	io.ByteReader
}

// ReadPacket reads one control packet from r and returns all of it — the
// fixed header (first byte and Remaining Length), then the body — in
// buf's storage when it is large enough, and the fixed header's length:
// the packet's type and flags are pkt[0] and its body pkt[hdr:]. An end
// of stream within a packet is io.ErrUnexpectedEOF; before its first
// byte, io.EOF.
func ReadPacket(r Reader, buf []byte) (pkt []byte, hdr int, err error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, 0, err
	}
	var lenBytes [4]byte
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, 0, ErrRemainingLength
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, 0, unexpected(err)
		}
		lenBytes[i] = b
		n += int(b&0x7f) * mult
		mult <<= 7
		if b&0x80 == 0 {
			hdr = 2 + i
			break
		}
	}
	total := hdr + n
	if cap(buf) < total {
		buf = make([]byte, total)
	}
	pkt = buf[:total]
	pkt[0] = first
	copy(pkt[1:hdr], lenBytes[:hdr-1])
	if _, err := io.ReadFull(r, pkt[hdr:]); err != nil {
		return nil, 0, unexpected(err)
	}
	return pkt, hdr, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
