package mochibroker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"

	mochipackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard/packets"
)

// mochiLogger is the logger mochi-mqtt gets. Its listeners log every
// connection that ends with an error as a WARN with an empty message —
// every refused CONNECT, every client that closes before CONNECT, every
// connection the packet validator ended. The Guard's audit log and the
// validator have said all of those already, with their reasons; here
// they are DEBUG, with a message. A connection that ends with any other
// error stays a WARN.
func mochiLogger(log *slog.Logger) *slog.Logger {
	return slog.New(connErrorHandler{log.Handler()}).With("component", "mochi")
}

type connErrorHandler struct{ inner slog.Handler }

func (h connErrorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// A WARN may become a DEBUG in Handle: let it through to decide there.
	return h.inner.Enabled(ctx, l)
}

func (h connErrorHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "" || r.Level != slog.LevelWarn {
		return h.inner.Handle(ctx, summarizePackets(r))
	}
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "error" {
			err = e
			return false
		}
		return true
	})
	msg, level := "connection ended with an error", slog.LevelWarn
	var code mochipackets.Code
	var invalid *packets.Error
	switch {
	case err == nil:
	case errors.As(err, &code):
		msg, level = "connection refused", slog.LevelDebug // the Guard's audit log has the reason
	case errors.As(err, &invalid), errors.Is(err, packets.ErrConnectTimeout):
		msg, level = "connection closed by the packet validator", slog.LevelDebug // it logged why
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		msg, level = "connection closed by the client", slog.LevelDebug
	}
	if !h.inner.Enabled(ctx, level) {
		return nil
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

// summarizePackets replaces the whole packets mochi puts in some DEBUG
// records ("failed publishing packet" for every subscriber a message
// could not be queued for) by their type, topic and size. Printing a
// packet prints its payload: at 256 KiB a message and eight offline
// subscribers over quota, formatting alone took 140 ms a publish, and a
// debug log is no place for the fleet's readings.
func summarizePackets(r slog.Record) slog.Record {
	has := false
	r.Attrs(func(a slog.Attr) bool {
		_, has = a.Value.Any().(mochipackets.Packet)
		return !has
	})
	if !has {
		return r
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if pk, ok := a.Value.Any().(mochipackets.Packet); ok {
			a = slog.Group(a.Key, "type", mochipackets.PacketNames[pk.FixedHeader.Type], "topic", pk.TopicName,
				"qos", pk.FixedHeader.Qos, "payload_bytes", len(pk.Payload))
		}
		out.AddAttrs(a)
		return true
	})
	return out
}

func (h connErrorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return connErrorHandler{h.inner.WithAttrs(as)}
}

func (h connErrorHandler) WithGroup(name string) slog.Handler {
	return connErrorHandler{h.inner.WithGroup(name)}
}
