package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// account is a device's credentials.
type account struct{ User, Password string }

// client is a paho.golang MQTT 5 connection over TLS, with what the
// broker said when it ended it.
type client struct {
	*paho.Client
	gone chan byte // the DISCONNECT's reason code from the broker, or closedCode
}

// closedCode stands for a connection that ended with no DISCONNECT read
// (a broker may close right after sending it; the client may see the
// close first).
const closedCode = 0xFF

// ended reports how the broker ended the connection, waiting up to wait:
// the DISCONNECT's code if one arrives, closedCode if only the
// connection's end does, 0 if neither.
func (c *client) ended(wait time.Duration) byte {
	var code byte
	timeout := time.After(wait)
	for {
		select {
		case g := <-c.gone:
			if g != closedCode {
				return g
			}
			code = g
		case <-timeout:
			return code
		}
	}
}

// dial connects over TLS with the account. A refused CONNECT is an error
// that carries the CONNACK's code (connackCode). "Server busy" and
// "server unavailable" say try later, and it does, backing off, for up to
// 10 s — as a device should (a broker verifying a crowd of first logins
// answers busy rather than let them queue).
func dial(ctx context.Context, addr string, tc *tls.Config, id string, a account, onMsg func(*paho.Publish)) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		c, err := dialOnce(ctx, addr, tc, id, a, onMsg)
		if code := refusedCode(err); code != 0x88 && code != 0x89 {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func dialOnce(ctx context.Context, addr string, tc *tls.Config, id string, a account, onMsg func(*paho.Publish)) (*client, error) {
	d := tls.Dialer{Config: tc}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &client{gone: make(chan byte, 2)}
	cfg := paho.ClientConfig{
		ClientID: id,
		Conn:     ppackets.NewThreadSafeConn(conn),
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.gone <- d.ReasonCode:
			default:
			}
		},
		OnClientError: func(error) {
			select {
			case c.gone <- closedCode:
			default:
			}
		},
	}
	if onMsg != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			onMsg(r.Packet)
			return true, nil
		}}
	}
	c.Client = paho.NewClient(cfg)
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, Username: a.User, UsernameFlag: true,
		Password: []byte(a.Password), PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	if err != nil {
		conn.Close()
		if ca != nil {
			return nil, &refusedError{Code: ca.ReasonCode}
		}
		return nil, err
	}
	return c, nil
}

// refusedError is a CONNECT the broker refused.
type refusedError struct{ Code byte }

func (e *refusedError) Error() string {
	return fmt.Sprintf("CONNECT refused: %s", reason(e.Code))
}

// refusedCode is the CONNACK's code if err is a refused CONNECT, else 0.
func refusedCode(err error) byte {
	var refused *refusedError
	if errors.As(err, &refused) {
		return refused.Code
	}
	return 0
}

// reason names an MQTT 5 reason code.
func reason(code byte) string {
	names := map[byte]string{
		0x00: "success", 0x80: "unspecified error", 0x81: "malformed packet", 0x83: "implementation specific error",
		0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
		0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down", 0x8D: "keep alive timeout",
		0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
		0x93: "receive maximum exceeded", 0x95: "packet too large", 0x96: "message rate too high",
		0x97: "quota exceeded", 0x98: "administrative action", 0x9F: "connection rate exceeded",
		closedCode: "connection closed",
	}
	if n, ok := names[code]; ok {
		return fmt.Sprintf("0x%02X %s", code, n)
	}
	return fmt.Sprintf("0x%02X", code)
}
