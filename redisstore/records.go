package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// recordKey is where a trust record is kept; a client ID's record is
// its username's (after a NUL).
func (c *Client) recordKey(r trust.Record) string {
	k := c.prefix + "trust:" + r.Dimension.String() + ":" + r.Key
	if r.Dimension == trust.ByClientID && r.Username != "" {
		k += "\x00" + r.Username
	}
	return k
}

// PutRecord stores a trust record for ttl and announces it to the fleet,
// atomically (one script).
func (c *Client) PutRecord(ctx context.Context, r trust.Record, ttl time.Duration) error {
	_, err := c.putRecord(ctx, r, ttl, time.Now())
	return err
}

// putRecord is PutRecord, and its receipt.
func (c *Client) putRecord(ctx context.Context, r trust.Record, ttl time.Duration, at time.Time) (rc receipt, err error) {
	if ttl <= 0 {
		return receipt{confirmed: true}, nil
	}
	val, err := json.Marshal(r)
	if err != nil {
		return receipt{}, err
	}
	msg, err := json.Marshal(event{Node: c.node, Record: &r})
	if err != nil {
		return receipt{}, err
	}
	rc, err = c.transact(ctx, change{key: c.recordKey(r), value: val, ttl: ttl, event: msg, at: at})
	if err != nil {
		return receipt{}, fmt.Errorf("redisstore: put trust record %s %s: %w", r.Dimension, r.Key, err)
	}
	return rc, nil
}

// ListRecords returns every trust record kept.
func (c *Client) ListRecords(ctx context.Context) ([]trust.Record, error) {
	return list(ctx, c, c.prefix+"trust:", "trust records", func(trust.Record) bool { return true })
}
