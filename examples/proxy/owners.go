package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mqttguard/mqttguard/packets"
)

// A session belongs to the identity that created it.
//
// The upstream keeps a client ID's session (subscriptions, queued
// messages) after the connection ends and gives it to the next
// connection with that client ID that does not ask for a clean start,
// whoever it is. The proxy remembers who created each session it passed
// on (owner, by client ID), and when another identity connects with the
// client ID it first ends that session upstream — a connection with a
// clean start, at once disconnected — so the newcomer starts afresh and
// the CONNACK says Session Present 0. The owner's deliveries would have
// been refused to the newcomer anyway (every delivery passes the
// receiver's check), but the newcomer would have inherited the
// subscriptions, and the proxy would have acknowledged the owner's
// queued messages away.
//
// What the proxy does not remember (it restarted, or forgot the oldest
// of more than maxOwners sessions) it cannot refuse: the connection
// resumes whatever the upstream has, and the receive check still stands
// between the newcomer and the owner's messages.
type sessionOwners struct {
	mu  sync.Mutex
	m   map[string]owner
	max int
}

const maxOwners = 1 << 17

// changes reports whether a connection by who for client ID id, asking
// to resume, would take over a session someone else created.
func (o *sessionOwners) changes(id string, who owner, resume bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, ok := o.m[id]
	return resume && ok && prev != who
}

// record notes who holds id's session now, if it outlives the
// connection.
func (o *sessionOwners) record(id string, who owner, persistent bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !persistent {
		delete(o.m, id)
		return
	}
	if o.m == nil {
		o.m = map[string]owner{}
	}
	if _, ok := o.m[id]; !ok && len(o.m) >= cmp.Or(o.max, maxOwners) {
		for k := range o.m { // forget one, any: see the type's doc
			delete(o.m, k)
			break
		}
	}
	o.m[id] = who
}

// persistent reports whether a CONNECT asks for its session to outlive
// the connection.
func persistent(pkt *packets.Packet) bool {
	if pkt.Connect.Level == packets.V5 {
		return pkt.Props.SessionExpiry > 0
	}
	return !pkt.Connect.CleanStart
}

// endSession ends the upstream session of a client ID: a CONNECT with a
// clean start (and in MQTT 5 no session expiry), then a DISCONNECT.
func (p *Proxy) endSession(ctx context.Context, fwd packets.Connect) error {
	up, err := p.dialUpstream(ctx)
	if err != nil {
		return err
	}
	defer up.Close()
	up.SetDeadline(time.Now().Add(10 * time.Second))
	fwd.CleanStart, fwd.WillFlag, fwd.WillProps = true, false, packets.Properties{}
	if _, err := up.Write(packets.AppendConnect(nil, &fwd, nil)); err != nil {
		return err
	}
	ack, err := packets.NewServerReader(up, fwd.Level, upstreamLimits).Read()
	if err != nil {
		return err
	}
	if ack.Type != packets.CONNACK || ack.ReasonCode != 0 {
		return fmt.Errorf("the upstream answered %v %v", ack.Type, ack.ReasonCode)
	}
	_, err = up.Write(packets.AppendDisconnect(nil, fwd.Level, 0))
	return err
}
