package trust

import (
	"fmt"
	"log/slog"
	"time"
)

// MaxScore is the highest trust score.
const MaxScore = 1000

// Config holds every threshold of a Tracker. The zero value of each field
// means its documented default, so Config{Mode: EnforceFull} is a
// complete configuration.
type Config struct {
	Mode Mode

	// InitialScore is where a client never seen before starts, 1–1000
	// (default 300: newcomers are trusted little, and 300 is the
	// top of the ×0.8 band).
	InitialScore int
	// Weights of each kind of violation, in escalation units (defaults:
	// rate-limited 1, acl-denied 1, malformed 5, anomaly 1, auth-failure 3,
	// flapping 3, plugin-denied 2, other 1). A negative weight ignores a
	// kind. (A broker reports an auth failure only for a client that had
	// proven who it is: see AuthGate.)
	Weights map[Kind]int

	// Window is how far back violations count towards escalation
	// (default 1 minute): the escalation level is the weight of the
	// violations in the last Window (a sliding-window estimate), so a
	// client that stays below the first threshold per window never
	// escalates.
	Window time.Duration
	// Thresholds are the escalation levels, in weight units, at which a
	// client reaches Throttled, WriteDisabled, ShadowBanned and
	// Disconnected (default 4, 6, 10, 15: three mistakes throttle
	// nobody). They must increase.
	Thresholds [4]int

	// QuietPeriod without violations steps a client down one state
	// (default 2 minutes); MinDwell is the least time spent in a state
	// before stepping down (default 30 s). Recovery visits every state on
	// the way down.
	QuietPeriod time.Duration
	MinDwell    time.Duration
	// BanDuration is how long Disconnected lasts (default 5 minutes);
	// then the client steps down to ShadowBanned.
	BanDuration time.Duration
	// ThrottleDelay is the extra delay for a Throttled client's publishes
	// (default 500 ms).
	ThrottleDelay time.Duration

	// ScorePenalty is the score lost per weight unit of a violation
	// (default 40: scores fall fast). GoodReward is the score gained by
	// well-behaved traffic, at most once per GoodInterval (defaults 2 and
	// 10 s: scores rise slowly, and cheap traffic cannot farm trust).
	ScorePenalty int
	GoodReward   int
	GoodInterval time.Duration
	// ScoreHalfLife pulls scores back towards InitialScore: penalties
	// are forgiven and bonuses must be kept up (default 1 hour).
	ScoreHalfLife time.Duration

	// Spacing: violations of one kind by one identity within Spacing of
	// the last one counted count once (default 100 ms). A burst is one
	// offence: a client that pipelines 30 publishes past its limit, or a
	// tester's three refused publishes, is not punished 30 or three times
	// in the same instant; a client that keeps offending second after
	// second still escalates (a flood reaches Disconnected in 1.5 s).
	// A negative Spacing counts every violation.
	Spacing time.Duration

	// ObserveCooldown: in ObserveOnly, at most one violation per client
	// counts per cooldown (default 1 minute).
	ObserveCooldown time.Duration

	// UsernameFactor and IPFactor make violations count against the
	// client's username and address too, scaled by the factor. A
	// client's state is the most severe of its tracked identities.
	//
	// UsernameFactor defaults to 1: what a client ID did counts as much
	// against its username, so a client that changes client IDs (which
	// it chooses) keeps its punishment, while its username (which it
	// proved) carries it. Every client of a username shares its state:
	// give devices accounts of their own. A negative UsernameFactor
	// turns the username dimension off.
	//
	// IPFactor defaults to 0 for clients with a username: an address is
	// shared behind a NAT, and a carrier NAT can hold a whole fleet. A
	// client without a username has proven nothing but its address, so
	// its violations count against the address at least at 1.
	// Tracker.SetFactors changes both at run time.
	UsernameFactor float64
	IPFactor       float64

	// MaxClientsPerUser bounds the client ID records of one username
	// (default 1024): a client that invents client IDs fills only its
	// own username's share of the Tracker. Past it, a new client ID is
	// not tracked on its own; its username's record counts for it.
	MaxClientsPerUser int

	// MaxRecords bounds the records kept (default 1<<20). When full,
	// records that are Normal are dropped first (longest idle of a small
	// sample), then the least punished; with MaxClientsPerUser, washing
	// out others' punishments takes MaxRecords/MaxClientsPerUser
	// accounts, and a newcomer is always tracked. IdleExpiry is the idle
	// time after which a Normal record at its initial score may go
	// (default 1 hour).
	MaxRecords int
	IdleExpiry time.Duration

	// OnTransition is called for every state change, after the Tracker's
	// locks are released, on the goroutine that caused or observed it. A
	// broker uses it to kick a client the moment it reaches Disconnected.
	OnTransition func(Transition)
	// Logger receives an audit record of every transition (nil: none):
	// escalations at WARN, recoveries at INFO.
	Logger *slog.Logger
}

// Preset returns the defaults for a mode, one of a rollout's three stages.
func Preset(m Mode) Config { return Config{Mode: m}.withDefaults() }

// ConfigError names the field of a Config that is wrong.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "trust: config " + e.Field + ": " + e.Msg }

var defaultWeights = [numKinds]int{
	RateLimited: 1, ACLDenied: 1, Malformed: 5, Anomaly: 1,
	AuthFailure: 3, Flapping: 3, PluginDenied: 2, Other: 1,
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.InitialScore == 0 {
		c.InitialScore = 300
	}
	if c.Thresholds == [4]int{} {
		c.Thresholds = [4]int{4, 6, 10, 15}
	}
	def(&c.Window, time.Minute)
	def(&c.QuietPeriod, 2*time.Minute)
	def(&c.MinDwell, 30*time.Second)
	def(&c.BanDuration, 5*time.Minute)
	def(&c.ThrottleDelay, 500*time.Millisecond)
	def(&c.GoodInterval, 10*time.Second)
	def(&c.ScoreHalfLife, time.Hour)
	def(&c.ObserveCooldown, time.Minute)
	def(&c.Spacing, 100*time.Millisecond)
	def(&c.IdleExpiry, time.Hour)
	if c.ScorePenalty == 0 {
		c.ScorePenalty = 40
	}
	if c.GoodReward == 0 {
		c.GoodReward = 2
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = 1 << 20
	}
	if c.MaxClientsPerUser == 0 {
		c.MaxClientsPerUser = 1024
	}
	switch {
	case c.UsernameFactor == 0:
		c.UsernameFactor = 1
	case c.UsernameFactor < 0:
		c.UsernameFactor = 0 // off
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Mode > EnforceFull:
		return &ConfigError{"Mode", fmt.Sprintf("unknown mode %d", c.Mode)}
	case c.InitialScore < 1 || c.InitialScore > MaxScore:
		return &ConfigError{"InitialScore", fmt.Sprintf("%d is outside 1–1000", c.InitialScore)}
	case c.Window < 0 || c.QuietPeriod < 0 || c.MinDwell < 0 || c.BanDuration < 0 || c.ThrottleDelay < 0 ||
		c.GoodInterval < 0 || c.ScoreHalfLife < 0 || c.ObserveCooldown < 0 || c.IdleExpiry < 0:
		return &ConfigError{"durations", "must not be negative"}
	case c.ScorePenalty < 0 || c.GoodReward < 0:
		return &ConfigError{"ScorePenalty/GoodReward", "must not be negative"}
	case c.IPFactor < 0:
		return &ConfigError{"IPFactor", "must not be negative (0, the default, counts nothing against the address)"}
	case c.MaxRecords < 0 || c.MaxClientsPerUser < 0:
		return &ConfigError{"MaxRecords/MaxClientsPerUser", "must not be negative"}
	}
	for i := range c.Thresholds {
		if c.Thresholds[i] <= 0 || (i > 0 && c.Thresholds[i] <= c.Thresholds[i-1]) {
			return &ConfigError{"Thresholds", fmt.Sprintf("%v must be positive and increasing", c.Thresholds)}
		}
	}
	for k := range c.Weights {
		if int(k) >= numKinds {
			return &ConfigError{"Weights", fmt.Sprintf("unknown kind %d", k)}
		}
	}
	return nil
}
