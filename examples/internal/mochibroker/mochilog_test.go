package mochibroker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	mochipackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/stretchr/testify/assert"
)

// What mochi's listeners log when a connection ends with an error: WARN,
// empty message. Refusals and closes the Guard or the validator logged
// already become DEBUG with a message; real errors stay WARN.
func TestMochiConnectionErrorsAreNotWarnNoise(t *testing.T) {
	invalid := &packets.Error{Code: reason.ProtocolError, Msg: "the first packet must be CONNECT"}
	for _, tc := range []struct {
		err        error
		level, msg string
	}{
		{mochipackets.Code{Code: 0x86, Reason: "password"}, "DEBUG", "connection refused"},
		{fmt.Errorf("read connection: %w", invalid), "DEBUG", "connection closed by the packet validator"},
		{fmt.Errorf("read connection: %w", packets.ErrConnectTimeout), "DEBUG", "connection closed by the packet validator"},
		{fmt.Errorf("read connection: %w", io.EOF), "DEBUG", "connection closed by the client"},
		{errors.New("ack connection packet: broken pipe"), "WARN", "connection ended with an error"},
	} {
		var buf bytes.Buffer
		log := mochiLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		log.Warn("", "error", tc.err) // as mochi's listeners/net.go does
		out := buf.String()
		assert.Contains(t, out, "level="+tc.level, tc.err.Error())
		assert.Contains(t, out, `msg="`+tc.msg+`"`, tc.err.Error())
		assert.Contains(t, out, "component=mochi")
		assert.Contains(t, out, "error=", "the error is kept")
	}

	// At the default level the refusals are gone, the real error stays.
	var buf bytes.Buffer
	log := mochiLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	log.Warn("", "error", mochipackets.Code{Code: 0x86, Reason: "password"})
	assert.Empty(t, buf.String())
	log.Warn("", "error", errors.New("resend inflight: broken pipe"))
	assert.Equal(t, 1, strings.Count(buf.String(), "level=WARN"))
	log.Info("attached listener", "id", "tcp")
	assert.Contains(t, buf.String(), `msg="attached listener"`, "mochi's other lines pass as they are")
}

// mochi puts whole packets in some DEBUG records; their payloads (the
// fleet's readings, up to the packet size limit) do not reach the log,
// their topic and size do.
func TestMochiPacketsAreSummarizedInTheLog(t *testing.T) {
	var buf bytes.Buffer
	log := mochiLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	pk := mochipackets.Packet{FixedHeader: mochipackets.FixedHeader{Type: mochipackets.Publish, Qos: 1},
		TopicName: "bob/7", Payload: bytes.Repeat([]byte("secret"), 1000)}
	log.Debug("failed publishing packet", "error", errors.New("quota"), "client", "q1", "packet", pk) // as mochi's server.go does
	out := buf.String()
	assert.NotContains(t, out, "secret")
	assert.Contains(t, out, "packet.topic=bob/7")
	assert.Contains(t, out, "packet.payload_bytes=6000")
	assert.Contains(t, out, "packet.type=Publish")
	assert.Contains(t, out, "client=q1", "the other attributes are kept")
}
