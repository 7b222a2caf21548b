package mochibroker

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/mqttguard/mqttguard/mochiguard"
)

// Broker is mochi-mqtt with the Guard in front of every decision and a
// packet validator in front of every listener.
type Broker struct {
	*guardstack.Stack
	srv  *mqtt.Server
	hook *mochiguard.Hook

	closeOnce sync.Once
	closeErr  error
}

// Start builds everything from cfg and starts serving. Close stops it.
func Start(cfg *guardconf.Config, log *slog.Logger) (_ *Broker, err error) {
	st, err := guardstack.New(cfg, log)
	if err != nil {
		return nil, err
	}
	b := &Broker{Stack: st}
	defer func() {
		if err != nil {
			b.Close(context.Background())
		}
	}()
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(st.PacketLimits().MaxPacketSize)
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60 // mochi's default keeps sessions forever
	// mosquitto's default: a table this small costs nothing per client.
	caps.TopicAliasMaximum = 10
	// The messages one session may hold unacknowledged
	// (mqtt.max_queued_messages, mosquitto's name and default, 1,000;
	// mochi's is 8,192): past it mochi drops a QoS 1 or 2 delivery to
	// that session. quota.go bounds an account's bytes.
	caps.MaximumInflight = uint16(cfg.MQTT.QueuedMessages())
	// mochi makes each connection's outbound queue at accept, before any
	// CONNECT: a channel of this many pointers. Its default, 8,192, is
	// 64 KiB — nine tenths of what a socket that never authenticates
	// costs the broker. 1,024 (8 KiB) is about what mosquitto queues per
	// client (max_queued_messages 1000), and caps what a slow subscriber
	// makes the broker hold.
	caps.MaximumClientWritesPending = 1024
	if cfg.MQTT.MaxClients > 0 {
		caps.MaximumClients = int64(cfg.MQTT.MaxClients)
	}
	// mochi gathers a client's queued packets into one write of up to
	// ClientNetWriteBufferSize (its default, 2 KiB, is one or two 1 KiB
	// messages a syscall). The buffer exists only while the client's
	// queue is not empty and goes after the flush: 64 KiB a busy
	// subscriber at most. Fan-out 1 → 100, QoS 0, 1 KiB: 184k → 233k
	// deliveries/s (bench/load, medians of 3).
	b.srv = mqtt.New(&mqtt.Options{Capabilities: caps, Logger: mochiLogger(st.Log), ClientNetWriteBufferSize: 64 << 10})
	b.hook = mochiguard.New(st.Guard, b.srv, mochiguard.Options{SessionsPerUser: cfg.Security.MaxSessionsPerUser,
		QueuedBytesPerUser: cfg.Security.MaxQueuedBytesPerUser, DeliveryWait: cfg.MQTT.DeliveryWait})
	if err := b.srv.AddHook(b.hook, nil); err != nil {
		return nil, err
	}
	st.SetSessions(b.hook)
	st.SetKicks(b.hook.Kicks)
	lns, err := st.Listen(caps.TopicAliasMaximum)
	if err != nil {
		return nil, err
	}
	for _, l := range lns {
		if err := b.srv.AddListener(listeners.NewNet(l.ID, l)); err != nil {
			return nil, err
		}
	}
	if err := b.srv.Serve(); err != nil {
		return nil, err
	}
	if err := st.StartAdmin(); err != nil {
		return nil, err
	}
	return b, nil
}

// Close stops accepting, disconnects every client (wills go out as usual
// for an unexpected close), then stops the stack. Later calls return
// the first's result.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		var err error
		if b.srv != nil {
			err = b.srv.Close()
		}
		b.closeErr = errors.Join(err, b.Stack.Close(ctx))
	})
	return b.closeErr
}
