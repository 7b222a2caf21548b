package mochiguard

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/trust"
)

// Listen puts the packet validator (packets.Listen) in front of ln and
// returns it as a mochi listener for srv.AddListener: mochi parses only
// packets that are valid MQTT and within the limits, and an unauthenticated
// client costs a bounded amount of memory (mochi itself reads a whole
// packet of any size before authentication: its open report #502).
//
// Zero fields of cfg take the server's settings (the packet size limit,
// the topic alias maximum) or packets' defaults; a nil OnReject counts a
// violation against the client with the Guard (malformed packets count
// towards its trust state; a CONNECT that never came does not).
func (h *Hook) Listen(id string, ln net.Listener, cfg packets.ListenerConfig) *listeners.Net {
	if caps := h.srv.Options.Capabilities; caps != nil {
		if cfg.Limits.MaxPacketSize == 0 && caps.MaximumPacketSize > 0 {
			cfg.Limits.MaxPacketSize = int(caps.MaximumPacketSize)
		}
		if cfg.TopicAliasMaximum == 0 {
			cfg.TopicAliasMaximum = caps.TopicAliasMaximum
		}
	}
	if cfg.OnReject == nil {
		cfg.OnReject = h.onReject
	}
	return listeners.NewNet(id, packets.Listen(ln, cfg))
}

// onReject counts a refused connection's malformed packets against its
// client.
func (h *Hook) onReject(c *packets.Conn, err error) {
	if errors.Is(err, packets.ErrConnectTimeout) || errors.Is(err, packets.ErrTooManyPending) {
		return // silence is not evidence, and an eviction is the listener's
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	cl := mqttguard.Client{ID: c.ClientID(), Username: c.Username(), Addr: ap.Addr().Unmap()}
	h.g.Violation(&cl, trust.Malformed, time.Now())
}
