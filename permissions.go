package mqttguard

import (
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/reason"
)

// aclRules is what a client's topics are checked against: *acl.Policy
// (a session's own) or *acl.Holder (the broker's).
type aclRules interface {
	Check(c acl.Client, a acl.Access, topic string) acl.Decision
	CheckMessage(c acl.Client, a acl.Access, topic string, qos byte, retain bool) acl.Decision
	CheckAnyMessage(c acl.Client, a acl.Access, topic string) acl.Decision
}

// aclOf returns the rules for c: its session's own Permissions when its
// credentials carried some, else Config.ACL; nil when there are none.
func (g *Guard) aclOf(c *Client) aclRules {
	if c.Permissions != nil {
		return c.Permissions
	}
	if g.cfg.ACL != nil {
		return g.cfg.ACL
	}
	return nil
}

// expired is the decision for a client whose credentials ended: MQTT 5's
// "maximum connect time" is the time this connection was authorized for
// (0x87, not authorized, would tell a device its identity is refused,
// where it only needs fresh credentials).
func expired(c *Client) Decision {
	return Decision{Verdict: Disconnect, Code: reason.MaximumConnectTime,
		Cause: Cause{Component: ByExpiry, Detail: "credentials ended at " + c.Expires.UTC().Format(time.RFC3339)}}
}
