package mqttguard

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/reason"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Publish decides a PUBLISH from c. In order: the client's trust state
// (WriteDisabled refuses with 0x87, ShadowBanned drops, Disconnected
// disconnects with 0x98, Throttled delays), the ACL (0x87; an invalid
// topic 0x90), the rate limits (0x97 quota exceeded: the client's
// messages and bytes, its user's tokens, the topic and the total), the push
// interval (anomalous readings are dropped; repeated anomalies flag and
// then ban the device), and the plugins' on_publish. Every refusal counts
// against the client's trust; a publish that passes counts for it. The
// allow path allocates nothing.
func (g *Guard) Publish(ctx context.Context, c *Client, m *Message, now time.Time) Decision {
	return g.record(PointPublish, g.publish(ctx, c, m, now), c, m.Topic, now)
}

func (g *Guard) publish(ctx context.Context, c *Client, m *Message, now time.Time) Decision {
	if c.Expired(now) {
		return expired(c)
	}
	id := c.identity()
	var obs Decision
	mult := 1.0
	var delay time.Duration
	full := trust.Mode(g.mode.Load()) == trust.EnforceFull

	if t := g.cfg.Trust; t != nil {
		v := t.Verdict(id, now)
		mult = v.Multiplier
		var d Decision
		switch v.State {
		case trust.Throttled:
			if v.Enforced {
				delay = v.Delay
			}
		case trust.WriteDisabled:
			d = Decision{Verdict: Reject, Code: reason.NotAuthorized}
		case trust.ShadowBanned:
			d = Decision{Verdict: Drop}
			if !g.cfg.ShadowBan {
				d = Decision{Verdict: Reject, Code: reason.NotAuthorized}
			}
		case trust.Disconnected:
			d = Decision{Verdict: Disconnect, Code: reason.AdministrativeAction}
		}
		if d.Verdict != Allow && v.Enforced {
			d.Cause = Cause{Component: ByTrust, Detail: "state " + v.State.String()}
			// A client that keeps flooding while refused keeps
			// escalating: its publishes still go through the rate
			// limits, and those it is over count as violations.
			if d.Verdict != Disconnect {
				if _, refused := g.rateLimit(ctx, c, m, mult, full, now); refused && g.violation(id, trust.RateLimited, now) == trust.Disconnected {
					d.Verdict, d.Code = Disconnect, reason.AdministrativeAction
				}
			}
			return d
		}
		if d.Verdict != Allow {
			d.Cause = Cause{Component: ByTrust, Detail: "state " + v.State.String()}
			g.refuse(PointPublish, d, c, now, &obs)
		}
	}

	if h := g.aclOf(c); h != nil {
		if ad := h.CheckMessage(c.acl(), acl.Publish, m.Topic, m.QoS, m.Retain); !ad.Allowed {
			code := reason.NotAuthorized
			cause := aclCause(ad)
			if ad.Reason == acl.ReasonInvalid {
				code, cause.Component = reason.TopicNameInvalid, ByTopic
			}
			if g.violation(id, trust.ACLDenied, now) == trust.Disconnected && g.enforcing() {
				return Decision{Verdict: Disconnect, Code: reason.AdministrativeAction, Cause: cause}
			}
			return Decision{Verdict: Reject, Code: code, Cause: cause}
		}
	}

	if d, refused := g.rateLimit(ctx, c, m, mult, full, now); refused {
		st := g.violation(id, trust.RateLimited, now)
		if st == trust.Disconnected {
			d.Verdict, d.Code = Disconnect, reason.AdministrativeAction
		}
		if d, stop := g.refuse(PointPublish, d, c, now, &obs); stop {
			return d
		}
	}

	if det := g.cfg.Intervals; det != nil {
		v := det.ObserveMessage(anomaly.Subject{ClientID: c.ID, Username: c.Username, Topic: m.Topic}, now)
		if v.Action != anomaly.Keep {
			if d, stop := g.anomaly(c, v, now, &obs); stop {
				return d
			}
		}
	}

	if ps := *g.plugins.Load(); len(ps) > 0 {
		ev := wasmguard.PublishEvent{Time: now, ClientID: c.ID, Username: c.Username, Topic: m.Topic,
			QoS: m.QoS, Retain: m.Retain, Payload: m.Payload}
		for _, p := range ps {
			v, err := p.OnPublish(ctx, &ev)
			if d, stop := g.pluginDecision(p, v, err, id, now); stop {
				return d
			}
		}
	}

	if t := g.cfg.Trust; t != nil {
		t.Good(id, now)
	}
	if obs.Observed {
		return obs
	}
	if delay > 0 && g.cfg.CannotDelay {
		return Decision{Verdict: Reject, Code: reason.QuotaExceeded, Cause: Cause{Component: ByTrust,
			Detail: "state throttled: refused, as this broker cannot hold it " + delay.String()}}
	}
	return Decision{Delay: delay}
}

// rateLimit takes the publish's tokens from every configured limiter at
// once, or from none.
func (g *Guard) rateLimit(ctx context.Context, c *Client, m *Message, mult float64, full bool, now time.Time) (Decision, bool) {
	l := g.lim.Load()
	// The fleet-wide limits first: a refusal by a local one below gives
	// their tokens back to this broker's lease.
	user := l.sharedUser != nil && c.Username != ""
	if user && !l.sharedUser.AllowScaledContext(ctx, c.Username, now, 1, mult) {
		return g.rateRefusal("messages per user", reason.QuotaExceeded, c.Username), true
	}
	if l.sharedTotal != nil && !l.sharedTotal.AllowScaledContext(ctx, "", now, 1, 1) {
		if user {
			l.sharedUser.Refund(c.Username, 1, mult)
		}
		return g.rateRefusal("messages in total", reason.QuotaExceeded, ""), true
	}
	d, refused := g.localRateLimit(l, c, m, mult, full, now)
	if refused {
		if user {
			l.sharedUser.Refund(c.Username, 1, mult)
		}
		if l.sharedTotal != nil {
			l.sharedTotal.Refund("", 1, 1)
		}
	}
	return d, refused
}

func (g *Guard) rateRefusal(rule string, code reason.Code, key string) Decision {
	return Decision{Verdict: Reject, Code: code, Cause: Cause{Component: ByRateLimit, Rule: rule, Detail: key}}
}

// localRateLimit checks this broker's own buckets as one.
func (g *Guard) localRateLimit(l *limiters, c *Client, m *Message, mult float64, full bool, now time.Time) (Decision, bool) {
	var checks [5]ratelimit.Check
	n := 0
	// A client's buckets are its client ID's within its username (bob
	// cannot drain sensor2's by using its client ID); a topic's are the
	// publisher's, so that a flooder spends its own share of the topic
	// and not that of everyone who may publish there.
	if l.msgClient != nil {
		checks[n] = ratelimit.Check{Limiter: l.msgClient, Key: c.ID, Scope: c.Username, N: 1, Mult: mult}
		n++
	}
	if l.bytesClient != nil {
		checks[n] = ratelimit.Check{Limiter: l.bytesClient, Key: c.ID, Scope: c.Username, N: len(m.Payload), Mult: mult}
		n++
	}
	if l.msgUser != nil && c.Username != "" {
		checks[n] = ratelimit.Check{Limiter: l.msgUser, Key: c.Username, N: 1, Mult: mult}
		n++
	}
	if l.msgTopic != nil {
		cost := 1
		if full && m.Subscribers >= 0 {
			cost = ratelimit.FanoutCost(m.Subscribers)
		}
		who := c.Username
		if who == "" {
			who = "\x00" + c.ID // no username: the client ID (never a username: MQTT strings hold no NUL)
		}
		checks[n] = ratelimit.Check{Limiter: l.msgTopic, Key: m.Topic, Scope: who, N: cost, Mult: mult}
		n++
	}
	if l.msgTotal != nil {
		checks[n] = ratelimit.Check{Limiter: l.msgTotal, Key: "", N: 1}
		n++
	}
	if n == 0 {
		return Decision{}, false
	}
	i := ratelimit.Multi(checks[:n]).Try(now)
	if i < 0 {
		return Decision{}, false
	}
	ch := checks[i]
	var rule string
	// 0x97 for every limit: MQTT 5 has no PUBACK or PUBREC code for a
	// message rate (0x96 is DISCONNECT's), and a strict client drops a
	// connection whose acknowledgement carries one it may not [MQTT-3.4.2-1].
	code := reason.QuotaExceeded
	switch ch.Limiter {
	case l.msgClient:
		rule = "messages per client"
	case l.bytesClient:
		rule = "bytes per client"
	case l.msgUser:
		rule = "messages per user"
	case l.msgTotal:
		rule = "messages in total"
	default:
		rule = "messages per topic"
	}
	return g.rateRefusal(rule, code, ch.Key), true
}

// anomaly acts on the push-interval detector's verdict.
func (g *Guard) anomaly(c *Client, v anomaly.Verdict, now time.Time, obs *Decision) (Decision, bool) {
	cause := Cause{Component: ByAnomaly, Detail: fmt.Sprintf("%v: gap %v, profile %v±%v, strike %d",
		v.Result, v.Gap, v.Profile.Interval, v.Profile.Tolerance, v.Strikes)}
	d := Decision{Verdict: Drop, Cause: cause}
	switch v.Action {
	case anomaly.Flag:
		if g.violation(c.identity(), trust.Anomaly, now) == trust.Disconnected {
			d = Decision{Verdict: Disconnect, Code: reason.AdministrativeAction, Cause: cause}
		}
	case anomaly.Ban:
		g.violation(c.identity(), trust.Anomaly, now)
		d = Decision{Verdict: Disconnect, Code: reason.AdministrativeAction, Cause: cause}
		if g.enforcing() {
			g.banDevice(c, "push interval: "+cause.Detail, now)
		}
	}
	return g.refuse(PointPublish, d, c, now, obs)
}

// banDevice bans by client ID, else username, else (BanAddresses)
// address.
func (g *Guard) banDevice(c *Client, why string, now time.Time) {
	b := g.cfg.Bans
	if b == nil {
		return
	}
	ban := trust.Ban{Until: now.Add(g.cfg.AnomalyBanFor), At: now, By: "anomaly", Reason: why, Automatic: true}
	switch {
	case c.ID != "":
		// The client ID within its username: bob's anomalies under
		// sensor2's client ID do not ban sensor2's device.
		ban.Kind, ban.Value, ban.Username = trust.BanClientID, c.ID, c.Username
	case c.Username != "":
		ban.Kind, ban.Value = trust.BanUsername, c.Username
	case g.cfg.BanAddresses && c.Addr.IsValid():
		ban.Kind, ban.Value = trust.BanIP, c.Addr.String()
	default:
		return
	}
	b.Add(ban)
}
