package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttguard/mqttguard/trust"
	"github.com/redis/go-redis/v9"
)

// FleetConfig says what a broker shares with its fleet. Bans is
// required; every zero field means its documented default.
type FleetConfig struct {
	// Bans is the broker's ban list. NewFleet watches its changes
	// (Bans.WatchChanges) until Close; kick sessions from
	// Bans.WatchAdded, which hears the fleet's bans too.
	Bans *trust.Bans
	// Trust, if set, receives the records other brokers share (Adopt).
	// The broker shares its own by calling Fleet.Transition from
	// trust.Config.OnTransition.
	Trust *trust.Tracker
	// ShareFrom is the least severe state a transition must reach to be
	// shared (default ShadowBanned: the states that must follow a client
	// across brokers; Throttled and WriteDisabled are local, evidence of
	// a moment on one broker).
	ShareFrom trust.State
	// SeedBans, at the first sync, adds the broker's bans that Redis does
	// not have to Redis (a ban file from before fleet mode joins the
	// fleet) instead of dropping them. Later syncs make the local list
	// exactly Redis's — unless Redis has lost the fleet's data (it was
	// restarted without persistence, or flushed): then every broker
	// puts its bans and shared trust records back first, so a routine
	// Redis restart unbans nobody. (A key, <prefix>fleet, marks a Redis
	// that holds the fleet's data.)
	SeedBans bool
	// MaxPending bounds the changes queued while Redis is unreachable
	// (default 10 000); beyond it the oldest are dropped and counted.
	MaxPending int
	// RetryAfter is the first reconnect delay (default 100 ms), doubling
	// to MaxRetryAfter (default 1 s: a Redis that comes back is in use,
	// and re-seeded, within a second).
	RetryAfter    time.Duration
	MaxRetryAfter time.Duration
}

// Fleet keeps one broker's ban list and trust records in step with the
// fleet's, through Redis. Decisions never wait on it: the broker checks
// its local Bans and Tracker, which Fleet updates from a Redis channel as
// changes happen, and in full on every (re)connection. Local changes go
// to Redis from a queue. Start starts its two goroutines, Close stops
// them.
type Fleet struct {
	c       *Client
	cfg     FleetConfig
	bans    *trust.Bans
	trust   *trust.Tracker
	unwatch func() // stops WatchChanges

	mu    sync.Mutex
	queue []op
	// unconfirmed are the changes Redis took but no replica confirmed
	// yet (Client.transact), oldest first: written again at the next
	// resync, before the broker adopts Redis's list, so that a primary
	// that dies before replicating them loses nothing. A confirmed write
	// confirms those the same primary took (settle).
	unconfirmed []op
	seq         uint64
	wake        chan struct{}
	flushMu     sync.Mutex // one flush at a time; held through a resync

	state     atomic.Int32 // 0 connecting, 1 up, 2 down
	synced    chan struct{}
	syncOnce  sync.Once
	resyncs   atomic.Uint64
	received  atomic.Uint64
	pushed    atomic.Uint64
	dropped   atomic.Uint64
	badEvents atomic.Uint64
	// notConfirmed counts the writes no replica confirmed in time.
	notConfirmed atomic.Uint64
	// verifyUntil (unix ns): events are checked against Redis until
	// then (handle).
	verifyUntil atomic.Int64

	startOnce sync.Once
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

type op struct {
	seq uint64
	at  time.Time // when the broker made the change
	ban *trust.BanChange
	rec *trust.Record
	ttl time.Duration
	// For an unconfirmed change (settle): the replication ID of the
	// primary that took it, its offset after the write, and the key.
	primary string
	offset  int64
	key     string
}

const (
	stateConnecting = iota
	stateUp
	stateDown
)

// NewFleet prepares to keep cfg.Bans (and cfg.Trust) in step with the
// fleet; Start starts it. The two steps let trust.Config.OnTransition
// refer to the Fleet before the first record arrives.
func (c *Client) NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Bans == nil {
		return nil, errors.New("redisstore: FleetConfig.Bans is nil")
	}
	if cfg.ShareFrom == trust.Normal {
		cfg.ShareFrom = trust.ShadowBanned
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10_000
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 100 * time.Millisecond
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = time.Second
	}
	f := &Fleet{c: c, cfg: cfg, bans: cfg.Bans, trust: cfg.Trust, wake: make(chan struct{}, 1), synced: make(chan struct{})}
	f.unwatch = cfg.Bans.WatchChanges(func(ch trust.BanChange) { f.enqueue(op{ban: &ch}) })
	return f, nil
}

// Start starts syncing and returns at once: the first sync happens in
// the background (WaitSynced waits for it), and while Redis is
// unreachable the broker serves from what it has. Close stops it.
func (f *Fleet) Start() {
	f.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		f.stop = cancel
		f.wg.Add(2)
		go f.watch(ctx)
		go f.write(ctx)
	})
}

// Transition shares a trust transition with the fleet when it reaches
// FleetConfig.ShareFrom; call it from trust.Config.OnTransition. It
// never blocks: the record is queued.
func (f *Fleet) Transition(tr trust.Transition) {
	if tr.Adopted || !tr.Escalation || tr.To < f.cfg.ShareFrom || f.trust == nil {
		return
	}
	r := trust.Record{Dimension: tr.Dimension, Key: tr.Key, Username: tr.Username, State: tr.To, Since: tr.At, Score: tr.Score, At: tr.At}
	f.enqueue(op{rec: &r, ttl: f.trust.TTL(r, tr.At)})
}

func (f *Fleet) enqueue(o op) {
	f.mu.Lock()
	if len(f.unconfirmed) > 0 {
		f.supersede(f.keyOf(o))
	}
	f.seq++
	o.seq = f.seq
	if o.at.IsZero() {
		o.at = time.Now()
	}
	if len(f.queue) >= f.cfg.MaxPending {
		f.queue = f.queue[1:]
		f.dropped.Add(1)
	}
	f.queue = append(f.queue, o)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// flush sends the queued changes to Redis in order and stops at the
// first failure, which stays queued.
func (f *Fleet) flush(ctx context.Context) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	for {
		f.mu.Lock()
		if len(f.queue) == 0 {
			f.mu.Unlock()
			return nil
		}
		o := f.queue[0]
		f.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var err error
		var r receipt
		switch {
		case o.ban != nil && o.ban.Lifted:
			r, err = f.c.deleteBan(cctx, o.ban.Ban, o.at)
		case o.ban != nil:
			r, err = f.c.putBan(cctx, o.ban.Ban, o.at)
		default:
			r, err = f.c.putRecord(cctx, *o.rec, o.ttl, o.at)
		}
		cancel()
		if err != nil {
			return err
		}
		f.pushed.Add(1)
		f.mu.Lock()
		if len(f.queue) > 0 && f.queue[0].seq == o.seq {
			f.queue = f.queue[1:]
		}
		f.settle(o, r)
		f.mu.Unlock()
	}
}

// settle does the bookkeeping of a written change, under f.mu: one
// that no replica confirmed is kept; a confirmed one confirms what its
// primary took up to it (a replica applies the primary's writes in
// order), and only that: a primary promoted since has a replication ID
// of its own, and what the old one took may have died with it.
func (f *Fleet) settle(o op, r receipt) {
	if r.confirmed {
		if r.primary != "" {
			f.unconfirmed = slices.DeleteFunc(f.unconfirmed, func(u op) bool { return u.primary == r.primary && u.offset <= r.offset })
		}
		return
	}
	o.primary, o.offset, o.key = r.primary, r.offset, f.keyOf(o)
	f.unconfirmed = append(f.unconfirmed, o)
	if len(f.unconfirmed) > f.cfg.MaxPending {
		f.unconfirmed = f.unconfirmed[1:]
		f.dropped.Add(1)
	}
	f.notConfirmed.Add(1)
}

// keyOf is the Redis key a change writes.
func (f *Fleet) keyOf(o op) string {
	if o.ban != nil {
		return f.c.banKey(o.ban.Ban)
	}
	return f.c.recordKey(*o.rec)
}

// supersede forgets the unconfirmed changes of key, under f.mu: a later
// change of the same ban or record (this broker's, or another's event)
// decides it now, and writing the old one again would undo it.
func (f *Fleet) supersede(key string) {
	f.unconfirmed = slices.DeleteFunc(f.unconfirmed, func(u op) bool { return u.key == key })
}

// review sorts the unconfirmed changes by what the primary that holds
// the fleet's keys now says (rep), under f.mu: those a replica has
// acknowledged, and those the primary took over from a primary that
// had them (a promoted replica's replid2 and second offset), are
// confirmed; those still on this primary wait; the rest died with a
// primary and are returned, to be written again.
func (f *Fleet) review(rep replication) (lost []op) {
	keep := f.unconfirmed[:0]
	for _, u := range f.unconfirmed {
		switch {
		case u.primary != "" && u.primary == rep.id:
			if u.offset > rep.replicated {
				keep = append(keep, u)
			}
		case u.primary != "" && u.primary == rep.previous && u.offset <= rep.previousOffset:
		default:
			lost = append(lost, u)
		}
	}
	f.unconfirmed = keep
	return lost
}

// reviewUnconfirmed asks the primary which unconfirmed changes it holds
// (review); with reput, those lost go back to the queue, first (they
// are older than anything queued).
func (f *Fleet) reviewUnconfirmed(ctx context.Context, reput bool) error {
	f.mu.Lock()
	n := len(f.unconfirmed)
	f.mu.Unlock()
	if n == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	rep, err := f.c.replicationOf(cctx)
	cancel()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lost := f.review(rep)
	if reput {
		f.queue = append(lost, f.queue...)
	} else {
		f.unconfirmed = append(lost, f.unconfirmed...)
	}
	return nil
}

// write drains the queue, retrying with backoff while Redis is away.
func (f *Fleet) write(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		backoff := f.cfg.RetryAfter
		failing := false
		for {
			err := f.flush(ctx)
			if err == nil {
				if failing {
					f.c.log.Info("fleet: changes reach Redis again", "node", f.c.node)
				}
				break
			}
			if !failing {
				// Once an outage: a change that cannot be written is
				// kept and retried, and the operator hears why.
				failing = true
				f.c.log.Warn("fleet: a change could not be written to Redis; kept, retrying",
					"node", f.c.node, "pending", f.Stats().Pending, "error", err, "hint", hint(err))
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, f.cfg.MaxRetryAfter)
		}
	}
}

// watch holds the subscription, reconnecting with backoff.
func (f *Fleet) watch(ctx context.Context) {
	defer f.wg.Done()
	backoff := f.cfg.RetryAfter
	first := true
	for {
		synced, err := f.session(ctx, &first)
		if ctx.Err() != nil {
			return
		}
		if synced {
			backoff = f.cfg.RetryAfter
		}
		if f.c.cluster != nil {
			// A subscription dials the primary of the channel's slot from
			// the slot map the client has: after a failover, the dead
			// one, until the map is read again.
			f.c.cluster.ReloadState(ctx)
		}
		if f.state.Swap(stateDown) != stateDown {
			f.c.log.Warn("fleet: Redis unreachable; serving from local state (last known bans kept), reconnecting",
				"node", f.c.node, "error", err, "hint", hint(err))
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, f.cfg.MaxRetryAfter)
	}
}

// session subscribes, syncs and applies the fleet's changes until the
// connection fails; synced reports whether it got as far as a sync.
func (f *Fleet) session(ctx context.Context, first *bool) (synced bool, err error) {
	ps := f.c.rdb.Subscribe(ctx)
	defer ps.Close()
	// A blocked Receive does not watch ctx; closing the subscription
	// ends it at once when the Fleet closes.
	defer context.AfterFunc(ctx, func() { ps.Close() })()
	if err := ps.Subscribe(ctx, f.c.channel); err != nil {
		return false, err
	}
	// The confirmation means the subscription is live: every change made
	// after the list below is read arrives on it.
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		return false, err
	}
	nb, nr, err := f.resync(ctx, *first)
	if err != nil {
		return false, err
	}
	*first = false
	// Events published before the list was read may arrive after it:
	// for a moment, each is checked against Redis before it is applied.
	f.verifyUntil.Store(time.Now().Add(verifyFor).UnixNano())
	f.resyncs.Add(1)
	f.syncOnce.Do(func() { close(f.synced) })
	if f.state.Swap(stateUp) != stateUp {
		f.c.log.Info("fleet: in sync with Redis", "node", f.c.node, "bans", nb, "records", nr)
	}
	idle := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet: make sure Redis is still there, and still
				// holds the fleet's data (a FLUSHALL keeps connections).
				if idle++; idle > 2 {
					return true, errors.New("no answer to PING")
				}
				if err := ps.Ping(ctx); err != nil {
					return true, err
				}
				if n, err := f.c.rdb.Exists(ctx, f.c.markerKey()).Result(); err == nil && n == 0 {
					return true, errors.New("redis no longer holds the fleet's data")
				}
				// A replica that caught up confirms what it now holds.
				f.reviewUnconfirmed(ctx, false)
				continue
			}
			return true, err
		}
		idle = 0
		if m, ok := msg.(*redis.Message); ok {
			f.handle(m.Payload)
		}
	}
}

// resync flushes what is queued, then makes the local ban list Redis's
// and adopts every shared trust record.
func (f *Fleet) resync(ctx context.Context, first bool) (bans, records int, err error) {
	if err := f.reviewUnconfirmed(ctx, true); err != nil {
		return 0, 0, err
	}
	if err := f.flush(ctx); err != nil {
		return 0, 0, err
	}
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	// The marker first: a broker that puts the fleet's data back sets
	// it after its bans, so a list read after it was seen holds them
	// (read before, a list could miss bans seeded meanwhile, and this
	// broker would adopt it, seeing the marker back).
	held, err := f.c.rdb.Exists(cctx, f.c.markerKey()).Result()
	if err != nil {
		return 0, 0, err
	}
	list, err := f.c.ListBans(cctx, now)
	if err != nil {
		return 0, 0, err
	}
	lost := held == 0 && !first // it had the data when this broker last synced
	if (first && f.cfg.SeedBans) || lost {
		have := map[string]bool{}
		for _, b := range list {
			have[f.c.banKey(b)] = true
		}
		seeded := 0
		for _, b := range f.bans.List(now) {
			if !have[f.c.banKey(b)] {
				if err := f.c.PutBan(cctx, b); err != nil {
					return 0, 0, err
				}
				list = append(list, b)
				seeded++
			}
		}
		recs := 0
		if lost && f.trust != nil {
			for _, r := range f.trust.Records(f.cfg.ShareFrom, now) {
				if err := f.c.PutRecord(cctx, r, f.trust.TTL(r, now)); err != nil {
					return 0, 0, err
				}
				recs++
			}
		}
		if lost {
			f.c.log.Warn("fleet: Redis came back without the fleet's data; put this broker's bans and shared trust records back",
				"node", f.c.node, "bans", seeded, "records", recs)
		}
	}
	if held == 0 {
		if err := f.c.rdb.Set(cctx, f.c.markerKey(), f.c.node, 0).Err(); err != nil {
			return 0, 0, err
		}
	}
	f.bans.Replace(list, now)
	// Changes made here since the flush are not in Redis yet: keep them.
	f.mu.Lock()
	var pending []trust.BanChange
	for _, o := range f.queue {
		if o.ban != nil {
			pending = append(pending, *o.ban)
		}
	}
	f.mu.Unlock()
	for _, ch := range pending {
		f.bans.Apply(ch)
	}
	if f.trust != nil {
		recs, err := f.c.ListRecords(cctx)
		if err != nil {
			return 0, 0, err
		}
		for _, r := range recs {
			if err := f.trust.Adopt(r, now); err != nil {
				f.badEvents.Add(1)
			}
		}
		records = len(recs)
	}
	return len(list), records, nil
}

// markerKey exists while Redis holds the fleet's data: the first
// broker to sync sets it, a Redis restarted empty has lost it.
func (c *Client) markerKey() string { return c.prefix + "fleet" }

// handle applies one change announced by another broker.
func (f *Fleet) handle(payload string) {
	var ev event
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		f.bad(fmt.Errorf("not an event: %v", err))
		return
	}
	if ev.Node == f.c.node {
		return
	}
	f.received.Add(1)
	var key string
	switch {
	case ev.Ban != nil:
		key = f.c.banKey(ev.Ban.Ban)
	case ev.Record != nil:
		key = f.c.recordKey(*ev.Record)
	}
	if key != "" {
		f.mu.Lock()
		f.supersede(key)
		f.mu.Unlock()
		if time.Now().UnixNano() < f.verifyUntil.Load() && f.stale(key, ev) {
			return
		}
	}
	switch {
	case ev.Ban != nil:
		if err := f.bans.Apply(*ev.Ban); err != nil {
			f.bad(fmt.Errorf("ban from %s: %v", ev.Node, err))
		}
	case ev.Record != nil && f.trust != nil:
		if err := f.trust.Adopt(*ev.Record, time.Now()); err != nil {
			f.bad(fmt.Errorf("trust record from %s: %v", ev.Node, err))
		}
	}
}

// bad counts an event that could not be applied and logs the first few.
// verifyFor is how long after a resync events are checked against
// Redis: what was published while the list was read arrives within it.
const verifyFor = time.Second

// stale reports whether Redis no longer holds what ev says: a ban or a
// record whose key is gone, a lift whose key is back. Not known (Redis
// did not answer): not stale.
func (f *Fleet) stale(key string, ev event) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n, err := f.c.rdb.Exists(ctx, key).Result()
	if err != nil {
		return false
	}
	if ev.Ban != nil && ev.Ban.Lifted {
		return n == 1
	}
	return n == 0
}

func (f *Fleet) bad(err error) {
	if f.badEvents.Add(1) <= 10 {
		f.c.log.Warn("fleet: ignoring an event", "error", err)
	}
}

// WaitSynced waits until the first sync with Redis is done, or ctx ends.
func (f *Fleet) WaitSynced(ctx context.Context) error {
	select {
	case <-f.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisstore: not in sync with Redis yet: %w", ctx.Err())
	}
}

// FleetStats count a Fleet's work.
type FleetStats struct {
	Connected bool   // subscribed and synced now
	Resyncs   uint64 // full syncs, one per (re)connection
	Received  uint64 // changes from other brokers
	Pushed    uint64 // local changes written to Redis
	Pending   int    // local changes waiting for Redis
	Dropped   uint64 // local changes dropped from a full queue
	Bad       uint64 // events that could not be applied
	// Unconfirmed are local changes Redis took that no replica has
	// confirmed yet (Sentinel and Cluster): kept, and written again at
	// the next resync. NotConfirmed counts the writes that were so.
	Unconfirmed  int
	NotConfirmed uint64
}

// Stats returns the counters.
func (f *Fleet) Stats() FleetStats {
	f.mu.Lock()
	pending, unconfirmed := len(f.queue), len(f.unconfirmed)
	f.mu.Unlock()
	return FleetStats{Connected: f.state.Load() == stateUp, Resyncs: f.resyncs.Load(), Received: f.received.Load(),
		Pushed: f.pushed.Load(), Pending: pending, Dropped: f.dropped.Load(), Bad: f.badEvents.Load(),
		Unconfirmed: unconfirmed, NotConfirmed: f.notConfirmed.Load()}
}

// Close stops syncing and waits for the goroutines. Changes still queued
// are lost: Redis was unreachable, or the broker is going away.
func (f *Fleet) Close() {
	f.unwatch()               // the ban list no longer reports to this fleet
	f.startOnce.Do(func() {}) // a Fleet never started stays stopped
	if f.stop != nil {
		f.stop()
	}
	f.wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
