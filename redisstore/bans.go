package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/trust"
	"github.com/redis/go-redis/v9"
)

// event is what the channel carries: one change, and who made it.
type event struct {
	Node   string           `json:"node"`
	Ban    *trust.BanChange `json:"ban,omitempty"`
	Record *trust.Record    `json:"record,omitempty"`
}

func (c *Client) banKey(kind trust.BanKind, value string) string {
	return c.prefix + "ban:" + kind.String() + ":" + value
}

// PutBan stores a ban (expiring at its Until) and announces it to the
// fleet, in one transaction. A ban already expired is not stored.
func (c *Client) PutBan(ctx context.Context, b trust.Ban) error {
	if !b.Permanent() && !time.Now().Before(b.Until) {
		return nil
	}
	val, err := json.Marshal(b)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(event{Node: c.node, Ban: &trust.BanChange{Ban: b}})
	if err != nil {
		return err
	}
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		key := c.banKey(b.Kind, b.Value)
		p.Set(ctx, key, val, 0)
		if !b.Permanent() {
			p.PExpireAt(ctx, key, b.Until)
		}
		p.Publish(ctx, c.channel, msg)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: put ban %s %s: %w", b.Kind, b.Value, err)
	}
	return nil
}

// DeleteBan lifts a ban and announces it.
func (c *Client) DeleteBan(ctx context.Context, kind trust.BanKind, value string) error {
	msg, err := json.Marshal(event{Node: c.node, Ban: &trust.BanChange{Ban: trust.Ban{Kind: kind, Value: value}, Lifted: true}})
	if err != nil {
		return err
	}
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, c.banKey(kind, value))
		p.Publish(ctx, c.channel, msg)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: delete ban %s %s: %w", kind, value, err)
	}
	return nil
}

// ListBans returns the bans in force at t. An entry that does not parse
// (written by something else) is logged and skipped.
func (c *Client) ListBans(ctx context.Context, t time.Time) ([]trust.Ban, error) {
	return list(ctx, c, c.prefix+"ban:", "bans", func(b trust.Ban) bool { return b.Permanent() || t.Before(b.Until) })
}
