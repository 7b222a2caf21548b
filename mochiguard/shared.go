package mochiguard

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttguard/mqttguard"
)

// OnSelectSubscribers chooses, for each shared subscription group, a
// member that may receive the message. mochi picks one member at random
// and, if the delivery gate refuses it, the group loses the message: any
// account allowed to join a group (in delivery mode, any) could black-
// hole a share of its messages by joining. Connected members come
// first. When no member may receive it, mochi's own pick stands, and
// the gate refuses it: nobody was owed the message.
func (h *Hook) OnSelectSubscribers(subs *mqtt.Subscribers, pk packets.Packet) *mqtt.Subscribers {
	if len(subs.Shared) == 0 {
		return subs
	}
	selected := make(map[string]packets.Subscription, len(subs.Shared))
	for _, group := range subs.Shared {
		var offline string
		found := false
		for id, sub := range group { // map order: a fair enough draw
			cl, ok := h.srv.Clients.Get(id)
			if !ok {
				continue
			}
			s := h.session(cl)
			if s == nil || h.g.MayReceive(&s.c, pk.TopicName).Verdict != mqttguard.Allow {
				continue
			}
			if cl.Closed() {
				if offline == "" {
					offline = id
				}
				continue
			}
			selected[id] = merge(selected, id, sub)
			found = true
			break
		}
		if !found && offline != "" {
			selected[offline] = merge(selected, offline, group[offline])
		}
	}
	if len(selected) > 0 {
		subs.SharedSelected = selected
	}
	return subs
}

// merge adds sub to what a client already has selected (a client in two
// groups gets the message once, with the better options of the two).
func merge(selected map[string]packets.Subscription, id string, sub packets.Subscription) packets.Subscription {
	if had, ok := selected[id]; ok {
		return had.Merge(sub)
	}
	return sub
}
