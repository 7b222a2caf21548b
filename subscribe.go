package mqttguard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Subscribe decides one filter of a SUBSCRIBE: its validity (0x8F), the
// client's trust state (Disconnected disconnects with 0x98; the other
// states still let a client subscribe), the ACL's subscribe check (0x87,
// which a broker sends in the SUBACK; 0x80 for MQTT 3.1.1) unless
// Config.FilterOnDelivery (but always for a shared subscription, which
// takes messages from others), and the plugins' on_subscribe. A broker calls it from its subscribe hook, not
// its per-message ACL hook: many brokers cannot tell the two apart.
func (g *Guard) Subscribe(ctx context.Context, c *Client, filter string, qos byte, now time.Time) Decision {
	return g.record(PointSubscribe, g.subscribe(ctx, c, filter, qos, now), c, filter, now)
}

func (g *Guard) subscribe(ctx context.Context, c *Client, filter string, qos byte, now time.Time) Decision {
	if err := acl.ValidFilter(filter); err != nil {
		return Decision{Verdict: Reject, Code: reason.TopicFilterInvalid, Cause: Cause{Component: ByTopic, Detail: err.Error()}}
	}
	if c.Expired(now) {
		return expired(c)
	}
	id := c.identity()
	var obs Decision
	if t := g.cfg.Trust; t != nil {
		if v := t.Verdict(id, now); v.State == trust.Disconnected {
			d := Decision{Verdict: Disconnect, Code: reason.AdministrativeAction, Cause: Cause{Component: ByTrust, Detail: "state " + v.State.String()}}
			if d, stop := g.refuse(PointSubscribe, d, c, now, &obs); stop {
				return d
			}
		}
	}
	// A shared subscription takes its messages from the group's other
	// members (one member gets each): joining needs a read rule that
	// covers the filter even with FilterOnDelivery, or a member that may
	// read nothing could join any group and swallow a share of its
	// messages.
	if h := g.aclOf(c); h != nil && (!g.cfg.FilterOnDelivery || strings.HasPrefix(filter, "$share/")) {
		if ad := h.Check(c.acl(), acl.Subscribe, filter); !ad.Allowed {
			g.violation(id, trust.ACLDenied, now)
			return Decision{Verdict: Reject, Code: reason.NotAuthorized, Cause: aclCause(ad)}
		}
	}
	if ps := *g.plugins.Load(); len(ps) > 0 {
		ev := wasmguard.SubscribeEvent{Time: now, ClientID: c.ID, Username: c.Username, Filter: filter, QoS: qos}
		for _, p := range ps {
			v, err := p.OnSubscribe(ctx, &ev)
			if d, stop := g.pluginDecision(p, v, err, id, now); stop {
				if d.Verdict == Drop {
					d.Verdict, d.Code = Reject, reason.NotAuthorized // a subscription cannot be dropped silently
				}
				return d
			}
		}
	}
	return obs
}

// SubscriptionQuota decides whether a client that holds n filters of
// size bytes together may add filter (a filter it holds already
// replaces itself, and is not asked about): Reject 0x97 past
// Config.MaxSubscriptions or MaxSubscriptionBytes. The broker knows what
// a client holds; the Guard keeps no record of it.
func (g *Guard) SubscriptionQuota(c *Client, n, size int, filter string) Decision {
	maxN, maxBytes := g.cfg.MaxSubscriptions, g.cfg.MaxSubscriptionBytes
	if maxN == 0 {
		maxN = 1000
	}
	if maxBytes == 0 {
		maxBytes = 1 << 20
	}
	var why string
	switch {
	case maxN > 0 && n+1 > maxN:
		why = fmt.Sprintf("%d filters, the most a client may hold", maxN)
	case maxBytes > 0 && size+len(filter) > maxBytes:
		why = fmt.Sprintf("%d bytes of filters, the most a client may hold", maxBytes)
	default:
		return Decision{}
	}
	d := Decision{Verdict: Reject, Code: reason.QuotaExceeded, Cause: Cause{Component: ByTopic, Rule: "subscriptions per client", Detail: why}}
	return g.record(PointSubscribe, d, c, filter, time.Now())
}

// Disconnect is the decision at the end of a session: whether its will
// may be sent (nil will: Allow). The will is checked again as a publish
// by this client now — its ban, trust state and ACL may have changed
// since it connected — and Drop means do not send it. Brokers that
// publish wills without any check (mochi-mqtt, for one) must ask here.
func (g *Guard) Disconnect(c *Client, will *Message, now time.Time) Decision {
	if will == nil {
		return Decision{}
	}
	return g.record(PointWill, g.will(c, will, now), c, will.Topic, now)
}

func (g *Guard) will(c *Client, w *Message, now time.Time) Decision {
	if g.cfg.DropWillOnExpiry && c.Expired(now) {
		return Decision{Verdict: Drop, Cause: Cause{Component: ByExpiry, Detail: "will of a client whose credentials ended"}}
	}
	id := c.identity()
	if b := g.cfg.Bans; b != nil {
		if ban, ok := b.Banned(id, now); ok {
			return Decision{Verdict: Drop, Cause: Cause{Component: ByBan, Rule: ban.Kind.String() + " " + ban.Value, Detail: "will of a banned client"}}
		}
	}
	var obs Decision
	if t := g.cfg.Trust; t != nil {
		if v := t.Verdict(id, now); v.State >= trust.WriteDisabled {
			d := Decision{Verdict: Drop, Cause: Cause{Component: ByTrust, Detail: "will of a client in state " + v.State.String()}}
			if d, stop := g.refuse(PointWill, d, c, now, &obs); stop {
				return d
			}
		}
	}
	if h := g.aclOf(c); h != nil {
		if ad := h.CheckMessage(c.acl(), acl.Publish, w.Topic, w.QoS, w.Retain); !ad.Allowed {
			d := Decision{Verdict: Drop, Cause: aclCause(ad)}
			d.Cause.Component = ByWill
			return d
		}
	}
	// A will is a publish like the others: the push-interval profile
	// and the plugins judge it too (a payload a plugin refuses must not
	// go out because the connection dropped).
	if det := g.cfg.Intervals; det != nil {
		v := det.ObserveMessage(anomaly.Subject{ClientID: c.ID, Username: c.Username, Topic: w.Topic}, now)
		if v.Action != anomaly.Keep {
			if d, stop := g.anomaly(c, v, now, &obs); stop {
				return willDropped(d)
			}
		}
	}
	if ps := *g.plugins.Load(); len(ps) > 0 {
		ev := wasmguard.PublishEvent{Time: now, ClientID: c.ID, Username: c.Username, Topic: w.Topic,
			QoS: w.QoS, Retain: w.Retain, Payload: w.Payload}
		for _, p := range ps {
			v, err := p.OnPublish(context.Background(), &ev)
			if d, stop := g.pluginDecision(p, v, err, id, now); stop {
				return willDropped(d)
			}
		}
	}
	return obs
}

// willDropped is a will's decision from a publish's refusal: a will is
// sent or not, there is nobody to answer.
func willDropped(d Decision) Decision {
	d.Verdict, d.Code = Drop, 0
	return d
}
