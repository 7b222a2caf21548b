package mqttguard

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mqttguard/mqttguard/acl"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/ratelimit"
	"github.com/mqttguard/mqttguard/tlsconf"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/mqttguard/mqttguard/wasmguard"
)

// Config composes the leaves. Every component is optional: a nil one is
// not consulted. The Guard takes the components as they are — a broker
// keeps its own references to reload an ACL, add a ban or read stats.
type Config struct {
	// Mode is how far the abuse layer may go (see the package doc). It is
	// applied to Trust too.
	Mode trust.Mode

	// Authenticators prove who a client is, asked in order (see
	// Authenticator): *passwd.Holder for a mosquitto password file,
	// tlsconf.Authenticator for client certificates, or your own. The
	// chain stops at the first that admits the client and at the first
	// that refuses it: a refused password is never tried against the
	// next authenticator, so a guesser gets one try per attempt and the
	// weakest authenticator does not decide. One with no opinion (the
	// credentials are not of its kind) passes to the next; if none has
	// one, the client is refused (0x86; 0x87 without a username, 0x8C
	// with an authentication method). Empty: the Guard does not
	// authenticate (another part of the broker does) and AllowAnonymous
	// is not consulted.
	Authenticators []Authenticator
	// VerifyWait is how long an authenticator may take — a password
	// waiting for one of passwd's hashing slots (passwd.VerifyLimits) —
	// before the CONNECT is refused as busy (0x89; default 2 s, within
	// ctx's own deadline). A CONNECT flood from many addresses then
	// costs legitimate clients at most this much, never a backlog that
	// outlives the flood.
	VerifyWait time.Duration
	// CannotDelay is for a broker that cannot hold one client's publish
	// or CONNECT without holding up the others (mosquitto runs plugins on
	// its one thread): a Throttled client's publish that would carry a
	// Decision.Delay is refused with 0x97 (quota exceeded) instead, and a
	// CONNECT that AuthGate would hold until its address's turn is
	// refused as busy (0x89) without being verified; the fleet-wide
	// limits (RateLimits.Store) never make the caller wait on the store's
	// round trip (ratelimit.SharedConfig.NoWait). Default false: the
	// broker sleeps the client's own goroutine, and Connect and Publish
	// may wait on the caller's.
	CannotDelay bool
	// DropWillOnExpiry drops the will of a client whose credentials
	// ended (Client.Expires) when the broker disconnects it. Default
	// false: the will is sent, as for any connection the server ends —
	// it is what tells the client's subscribers it is gone.
	DropWillOnExpiry bool
	// AllowAnonymous admits clients with no username and no certificate
	// identity. Default false: secure by default.
	AllowAnonymous bool
	// CertIdentity is where a verified client certificate's name is taken
	// from (CN by default); UseIdentityAsUsername makes that name the
	// client's username from the start (bans and the ACL see it), as
	// mosquitto's use_identity_as_username does; put a
	// tlsconf.Authenticator in Authenticators to admit such a client
	// without a password.
	CertIdentity          tlsconf.IdentitySource
	UseIdentityAsUsername bool

	ACL *acl.Holder
	// FilterOnDelivery leaves SUBSCRIBE unchecked by the ACL, as
	// mosquitto leaves it with an acl_file: every message is checked on
	// delivery instead (Deliver), so a client may subscribe to '#' and
	// still receive only what it may read. Default false: a SUBSCRIBE
	// needs an allow rule that covers its filter (0x87 otherwise), which
	// tells a client at once that it may not read there.
	FilterOnDelivery bool

	Bans  *trust.Bans
	Trust *trust.Tracker
	// AuthGate bounds what failed authentications cost and answers
	// password guessing: an address that keeps failing waits its turn
	// (Connect blocks up to the gate's MaxDelay, or ctx), is refused as
	// busy (0x89) past it, and is banned (by address, in Bans) when
	// nobody authenticates from it. Nil: no spacing out, no such bans.
	// Failures are never evidence against the claimed username or
	// client ID, gate or not.
	AuthGate *trust.AuthGate
	Flapping *anomaly.FlappingDetector
	// Intervals checks push intervals: anomalous reports are
	// acknowledged and not delivered; repeated anomalies flag the device
	// (a trust violation) and then ban it for AnomalyBanFor (default 1
	// hour), by client ID, else username, else address (BanAddresses).
	Intervals     *anomaly.IntervalDetector
	AnomalyBanFor time.Duration

	RateLimits RateLimits

	// MaxSubscriptions and MaxSubscriptionBytes bound what one client
	// may subscribe to: its filters, and their bytes together (defaults
	// 1,000 and 1 MiB; negative: no bound). Past them a new filter is
	// refused with 0x97 (SubscriptionQuota). A subscription costs the
	// broker memory for as long as the session lives, and topic matching
	// on every publish.
	MaxSubscriptions     int
	MaxSubscriptionBytes int

	// Plugins are consulted in order after every built-in check; the
	// first that does not allow decides. SetPlugins swaps them at run
	// time.
	Plugins []*wasmguard.Plugin

	// ShadowBan lets EnforceFull shadow-ban (the example broker's
	// enable_shadow_ban); without it a ShadowBanned client's publishes are
	// refused with 0x87 instead.
	ShadowBan bool
	// BanAddresses lets automatic bans (anomaly) fall back to banning
	// the client's address when it has neither client ID nor username
	// (the example broker's enable_ip_ban). Addresses are shared behind
	// NAT; bans made by an operator are not affected.
	BanAddresses bool

	// Logger receives the audit log: every refusal, drop and disconnect
	// (and, in ObserveOnly, what would have been), at most AuditPerSecond
	// lines a second per client (default 2, bursts of 10); the rest are
	// counted in Stats.AuditSuppressed. Nil: no audit log.
	Logger         *slog.Logger
	AuditPerSecond float64
	// OnRefusal hears every decision the audit log would write, none
	// left out by its bounds (a dashboard's live view; see Refusal). It
	// runs on the decision's own goroutine, inside Connect, Publish,
	// Subscribe or Disconnect: it must be quick and never block — the
	// dashboard package's Feed copies into a fixed ring under a short
	// lock. Nil: no one is told.
	OnRefusal func(Refusal)
}

// Rate is a token bucket: PerSecond tokens a second, bursts of Burst
// (default: PerSecond rounded up, at least 1). The zero Rate is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) on() bool { return r.PerSecond > 0 }

func (r Rate) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(1, int(r.PerSecond+0.999))
}

// RateLimits are the Guard's token buckets (the example broker's
// defaults in parentheses). Message limits are scaled by the client's
// trust multiplier. SetRateLimits changes them at run time.
type RateLimits struct {
	ConnectionsPerAddr     Rate // CONNECTs per client address (10/s)
	ConnectionsPerListener Rate // CONNECTs per listener
	MessagesPerClient      Rate // PUBLISHes per client ID
	BytesPerClient         Rate // payload bytes per client ID
	MessagesPerUser        Rate // PUBLISHes per username, all its devices together (50/s, burst 100)
	// MessagesPerTopic is the per-channel limit (3/s): PUBLISHes per
	// topic name, each costing ratelimit.FanoutCost(subscribers) tokens
	// in EnforceFull when the broker says how many subscribers a message
	// has.
	MessagesPerTopic Rate
	// MessagesTotal is PUBLISHes of all clients together: what one
	// broker (or, with Store, the whole fleet) accepts a second.
	MessagesTotal Rate
	// MaxKeys bounds each limiter's memory (default ratelimit's).
	MaxKeys int

	// Store, when set, makes MessagesPerUser, ConnectionsPerAddr and
	// MessagesTotal hold across every broker that shares it (package
	// redisstore): a user allowed 50 messages a second gets 50 in all,
	// wherever its devices connect. Tokens are leased from the store and
	// spent locally (see ratelimit.Shared for what that trades), so a
	// check waits on the store only when a lease runs out, and never
	// longer than StoreTimeout (default 50 ms). The other limits stay
	// per broker: a client ID is connected to one broker at a time.
	Store ratelimit.Store
	// WhenStoreDown is what the shared limits do while the store is
	// unreachable (default ratelimit.DownLocal: each broker enforces
	// them alone).
	WhenStoreDown ratelimit.DownPolicy
	StoreTimeout  time.Duration
}

// on reports whether any of the limits is set.
func (rl *RateLimits) on() bool {
	for _, r := range []Rate{rl.ConnectionsPerAddr, rl.ConnectionsPerListener, rl.MessagesPerClient,
		rl.BytesPerClient, rl.MessagesPerUser, rl.MessagesPerTopic, rl.MessagesTotal} {
		if r.on() {
			return true
		}
	}
	return false
}

// hasAbuseLayer reports whether any component the Mode governs is
// configured: what ObserveOnly would leave unenforced.
func (c *Config) hasAbuseLayer() bool {
	return c.RateLimits.on() || c.Trust != nil || c.Flapping != nil || c.Intervals != nil
}

// ConfigError names the Config field that is wrong.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "mqttguard: Config." + e.Field + ": " + e.Msg }

func (c *Config) validate() error {
	for name, r := range map[string]Rate{
		"ConnectionsPerAddr": c.RateLimits.ConnectionsPerAddr, "ConnectionsPerListener": c.RateLimits.ConnectionsPerListener,
		"MessagesPerClient": c.RateLimits.MessagesPerClient, "BytesPerClient": c.RateLimits.BytesPerClient,
		"MessagesPerUser": c.RateLimits.MessagesPerUser, "MessagesPerTopic": c.RateLimits.MessagesPerTopic,
		"MessagesTotal": c.RateLimits.MessagesTotal,
	} {
		if r.PerSecond < 0 || r.Burst < 0 {
			return &ConfigError{Field: "RateLimits." + name, Msg: fmt.Sprintf("%v/s burst %d: must not be negative (zero is no limit)", r.PerSecond, r.Burst)}
		}
	}
	if c.RateLimits.WhenStoreDown > ratelimit.DownRefuse {
		return &ConfigError{Field: "RateLimits.WhenStoreDown", Msg: fmt.Sprintf("unknown policy %d", c.RateLimits.WhenStoreDown)}
	}
	if c.Mode > trust.EnforceFull {
		return &ConfigError{Field: "Mode", Msg: fmt.Sprintf("unknown mode %d", c.Mode)}
	}
	if c.AnomalyBanFor < 0 {
		return &ConfigError{Field: "AnomalyBanFor", Msg: "must not be negative"}
	}
	for i, p := range c.Plugins {
		if p == nil {
			return &ConfigError{Field: fmt.Sprintf("Plugins[%d]", i), Msg: "nil plugin"}
		}
	}
	return nil
}
