package mqttguard

import "time"

// A Refusal is one decision that was not a plain Allow — a Reject, Drop
// or Disconnect, or in ObserveOnly what enforcement would have done —
// as Config.OnRefusal hears it: the same decisions the audit log
// writes, before its bounds, and, like it, none at Deliver (a '#'
// subscriber would report every message it may not read).
//
// Client and the strings are the broker's, valid only during the call:
// a topic may point into a packet buffer the broker reuses. Copy what
// you keep.
type Refusal struct {
	At       time.Time
	Point    Point
	Client   *Client
	Topic    string // the PUBLISH topic, SUBSCRIBE filter or will topic; "" at CONNECT
	Decision Decision
}
