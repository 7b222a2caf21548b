package mqttguard

import (
	"time"

	"github.com/mqttguard/mqttguard/acl"
)

// Deliver decides whether a message may go to subscriber c: the ACL's
// receive check with the delivery's QoS (the one granted to c, not the
// one it was published with) and retain flag, so that a subscriber to
// '#' gets only what it may read. A broker asks for every message that
// reaches a subscriber: live, queued while it was offline, sent again
// after a reconnect. A refusal drops the message for that subscriber
// only, and counts against no one.
func (g *Guard) Deliver(c *Client, m *Message) Decision {
	if !c.Expires.IsZero() && c.Expired(time.Now()) {
		g.stats.decisions[PointDeliver][Drop].Add(1)
		return Decision{Verdict: Drop, Cause: Cause{Component: ByExpiry, Detail: "the subscriber's credentials ended"}}
	}
	if h := g.aclOf(c); h != nil {
		if ad := h.CheckMessage(c.acl(), acl.Receive, m.Topic, m.QoS, m.Retain); !ad.Allowed {
			return g.deliveryDropped(ad)
		}
	}
	g.stats.decisions[PointDeliver][Allow].Add(1)
	return Decision{}
}

// MayReceive is the question a broker asks before it knows a delivery's
// QoS and retain flag: Drop when no message on topic could go to c,
// Allow when some could — Deliver decides each one once they are known.
// mochi-mqtt asks its ACL hook before it settles the QoS; filtering
// there keeps what c may never read out of its queues. An Allow is not
// counted (Deliver counts the delivery).
func (g *Guard) MayReceive(c *Client, topic string) Decision {
	if h := g.aclOf(c); h != nil {
		if ad := h.CheckAnyMessage(c.acl(), acl.Receive, topic); !ad.Allowed {
			return g.deliveryDropped(ad)
		}
	}
	return Decision{}
}

func (g *Guard) deliveryDropped(ad acl.Decision) Decision {
	g.stats.decisions[PointDeliver][Drop].Add(1)
	g.stats.by[ByACL].Add(1)
	return Decision{Verdict: Drop, Cause: aclCause(ad)}
}
