package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// event is what the channel carries: one change, and who made it.
type event struct {
	Node   string           `json:"node"`
	Ban    *trust.BanChange `json:"ban,omitempty"`
	Record *trust.Record    `json:"record,omitempty"`
}

// banKey is where a ban is kept: by kind and value, and for a client
// ban scoped to a username, by username too (after a NUL, which MQTT
// strings cannot hold).
func (c *Client) banKey(b trust.Ban) string {
	k := c.prefix + "ban:" + b.Kind.String() + ":" + b.Value
	if b.Username != "" {
		k += "\x00" + b.Username
	}
	return k
}

// PutBan stores a ban (expiring at its Until) and announces it to the
// fleet, atomically (one script). A ban already expired is not stored.
func (c *Client) PutBan(ctx context.Context, b trust.Ban) error {
	_, err := c.putBan(ctx, b, time.Now())
	return err
}

// putBan is PutBan, and its receipt (transact).
func (c *Client) putBan(ctx context.Context, b trust.Ban, at time.Time) (r receipt, err error) {
	var ttl time.Duration
	if !b.Permanent() {
		if ttl = time.Until(b.Until); ttl < time.Millisecond {
			return receipt{confirmed: true}, nil
		}
	}
	val, err := json.Marshal(b)
	if err != nil {
		return receipt{}, err
	}
	msg, err := json.Marshal(event{Node: c.node, Ban: &trust.BanChange{Ban: b}})
	if err != nil {
		return receipt{}, err
	}
	r, err = c.transact(ctx, change{key: c.banKey(b), value: val, ttl: ttl, event: msg, at: at})
	if err != nil {
		return receipt{}, fmt.Errorf("redisstore: put ban %s %s: %w", b.Kind, b.Value, err)
	}
	return r, nil
}

// DeleteBan lifts the ban of b's kind, value and username, and
// announces it.
func (c *Client) DeleteBan(ctx context.Context, b trust.Ban) error {
	_, err := c.deleteBan(ctx, b, time.Now())
	return err
}

// deleteBan is DeleteBan, and its receipt.
func (c *Client) deleteBan(ctx context.Context, b trust.Ban, at time.Time) (r receipt, err error) {
	id := trust.Ban{Kind: b.Kind, Value: b.Value, Username: b.Username}
	msg, err := json.Marshal(event{Node: c.node, Ban: &trust.BanChange{Ban: id, Lifted: true}})
	if err != nil {
		return receipt{}, err
	}
	r, err = c.transact(ctx, change{key: c.banKey(id), event: msg, at: at})
	if err != nil {
		return receipt{}, fmt.Errorf("redisstore: delete ban %s %s: %w", b.Kind, b.Value, err)
	}
	return r, nil
}

// ListBans returns the bans in force at t. An entry that does not parse
// (written by something else) is logged and skipped.
func (c *Client) ListBans(ctx context.Context, t time.Time) ([]trust.Ban, error) {
	return list(ctx, c, c.prefix+"ban:", "bans", func(b trust.Ban) bool { return b.Permanent() || t.Before(b.Until) })
}
