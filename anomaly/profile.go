package anomaly

import (
	"fmt"
	"time"

	"github.com/mqttguard/mqttguard/internal/topic"
)

// Profile is how often a device reports: every Interval, give or take
// Tolerance.
type Profile struct {
	Interval  time.Duration
	Tolerance time.Duration
}

// Valid reports whether the profile can judge anything: a positive
// interval and a tolerance no larger than it.
func (p Profile) Valid() bool {
	return p.Interval > 0 && p.Tolerance >= 0 && p.Tolerance <= p.Interval
}

// Judge classifies a gap between two reports against the profile; both
// ends of the tolerance are inclusive.
func (p Profile) Judge(gap time.Duration) Result {
	switch {
	case gap < p.Interval-p.Tolerance:
		return TooEarly
	case gap > p.Interval+p.Tolerance:
		return TooLate
	}
	return Normal
}

// Subject is what a resolver may look at to choose a profile.
type Subject struct {
	ClientID string
	Username string
	Topic    string // "" when the caller tracks devices, not topics
}

// Resolver returns the profile for a subject, or false when the subject
// has none (it is then not judged).
type Resolver func(Subject) (Profile, bool)

// ProfileRule chooses a profile by what a subject is. Every non-empty
// field must match: ClientID and Username exactly, TopicFilter as an MQTT
// filter ("sensors/+/temperature").
type ProfileRule struct {
	ClientID    string
	Username    string
	TopicFilter string
	Profile     Profile
}

// NewResolver returns a Resolver that tries rules in order and uses the
// first that matches. The error names the first bad rule.
func NewResolver(rules []ProfileRule) (Resolver, error) {
	rs := append([]ProfileRule(nil), rules...)
	for i, r := range rs {
		if !r.Profile.Valid() {
			return nil, fmt.Errorf("anomaly: profile rule %d: interval %v, tolerance %v: the interval must be positive and the tolerance between 0 and the interval",
				i+1, r.Profile.Interval, r.Profile.Tolerance)
		}
		if r.TopicFilter != "" {
			if err := topic.ValidFilter(r.TopicFilter); err != nil {
				return nil, fmt.Errorf("anomaly: profile rule %d: %w", i+1, err)
			}
		}
		if r.ClientID == "" && r.Username == "" && r.TopicFilter == "" {
			return nil, fmt.Errorf("anomaly: profile rule %d matches everything; give a client ID, username or topic filter (use a catch-all filter \"#\" if that is meant)", i+1)
		}
	}
	return func(s Subject) (Profile, bool) {
		for i := range rs {
			r := &rs[i]
			if r.ClientID != "" && r.ClientID != s.ClientID {
				continue
			}
			if r.Username != "" && r.Username != s.Username {
				continue
			}
			if r.TopicFilter != "" && !topic.Match(r.TopicFilter, s.Topic) {
				continue
			}
			return r.Profile, true
		}
		return Profile{}, false
	}, nil
}
