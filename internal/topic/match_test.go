package topic

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vectors from the specification's examples and the test suites of
// mosquitto (M), EMQX (E), mochi-mqtt (Mo) and paho.golang (P), with the
// spec's answer where those brokers disagree.
var matchVectors = []struct {
	filter, topic string
	want          bool
}{
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/#", "sport", true},
	{"#", "sport", true},
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"#", "$SYS/broker", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"a/#", "a/$x", true},                                      // only the first level counts for '$'
	{"device/60019423a83c/#", "device/60019423a83c/$fw", true}, // E
	{"/devices/+", "/devices/$dev1", true},                     // E
	{"+/+", "$SYS/broker", false},                              // E
	{"+/#", "a/b/c", true},                                     // E
	{"+/#", "a", true},                                         // mochi's index says false
	{"a/+/#", "a/b", true},                                     // mochi's index says false
	{"a/+/c", "a//c", true},
	{"a/+/c", "a//c/", false},
	{"a/+/c/#", "a//c/", true},
	{"a", "a/b/c", false}, // mochi's ledger matches by prefix
	{"+", "a/b", false},   // mochi's ledger
	{"a/", "a", false},
	{"a/", "a/", true},
	{"/a", "/a", true},
	{"#", "/", true},
	{"+/+/#", "a", false},
	{"b/#", "a/b", false},                  // P
	{"$share/group1/a/b", "a/b", true},     // shared: inner filter
	{"$share/g/#", "$SYS/info", false},     // inner filter keeps the '$' rule
	{"$SHARE/g/a", "a", false},             // "$share" is case-sensitive
	{"$share//a", "a", false},              // empty share name
	{"$share/g/", "g", false},              // empty inner filter
	{"$shared/x/a", "$shared/x/a", true},   // not a shared subscription
	{"#", "", false},                       // empty topic is invalid
	{"", "a", false},                       // empty filter is invalid
	{"a/+", "a/+", false},                  // wildcard in a topic name
	{"#", "a/#", false},                    // wildcard in a topic name
	{"a+/b", "a+/b", false},                // malformed filter
	{"a/#/b", "a/x/b", false},              // '#' not last
	{"Sport", "sport", false},              // case-sensitive
	{"Юникод/+", "Юникод/x", true},         // UTF-8 levels
	{"foo/+/+/baz", "foo///baz", true},     // M
	{"test/6/#", "test/3", false},          // M
	{"$BOB/bar", "$SYS/bar", false},        // M
	{"house/+", "house/1/sensor/0", false}, // E
}

func TestMatchVectors(t *testing.T) {
	for _, v := range matchVectors {
		assert.Equal(t, v.want, Match(v.filter, v.topic), "Match(%q, %q)", v.filter, v.topic)
		assert.Equal(t, v.want, refMatch(v.filter, v.topic), "reference disagrees on (%q, %q)", v.filter, v.topic)
	}
}

type mosqVector struct {
	fn, filter, topic, clientID, username, rc string
	match                                     bool
	line                                      int
}

// loadMosquittoVectors reads the 419 oracle vectors of mosquitto's own
// topic test suite (libcommon/topic_test.c on the 2.1 branch).
func loadMosquittoVectors(t *testing.T) []mosqVector {
	f, err := os.Open("testdata/mosquitto_topic_vectors.tsv")
	require.NoError(t, err)
	defer f.Close()
	var out []mosqVector
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		p := strings.Split(sc.Text(), "\t")
		require.Len(t, p, 7, "testdata line %d", line)
		out = append(out, mosqVector{p[0], p[1], p[2], p[3], p[4], p[5], p[6] == "true", line})
	}
	require.NoError(t, sc.Err())
	require.Greater(t, len(out), 400)
	return out
}

// nullish maps the C NULL of a vector to the empty string: Go strings
// cannot be nil, and both are rejected the same way.
func nullish(s string) string {
	if s == "<NULL>" {
		return ""
	}
	return s
}

func TestMosquittoMatchVectors(t *testing.T) {
	n := 0
	for _, v := range loadMosquittoVectors(t) {
		if v.fn != "mosquitto_topic_matches_sub" && v.fn != "mosquitto_topic_matches_sub2" {
			continue
		}
		n++
		got := Match(nullish(v.filter), nullish(v.topic))
		assert.Equal(t, v.match && v.rc == "SUCCESS", got, "line %d: Match(%q, %q)", v.line, v.filter, v.topic)
	}
	assert.Equal(t, 75, n)
}

func TestMosquittoValidationVectors(t *testing.T) {
	n := 0
	for _, v := range loadMosquittoVectors(t) {
		var err error
		switch v.fn {
		case "mosquitto_pub_topic_check":
			err = ValidName(v.topic)
		case "mosquitto_sub_topic_check":
			err = ValidFilter(v.topic)
		default:
			continue
		}
		n++
		if v.rc == "SUCCESS" {
			assert.NoError(t, err, "line %d: %s(%q)", v.line, v.fn, v.topic)
		} else {
			assert.Error(t, err, "line %d: %s(%q)", v.line, v.fn, v.topic)
		}
	}
	assert.Equal(t, 35, n)
}

// TestMatchAgreesWithReference compares Match with the naive reference on
// every filter/topic pair of a small but complete universe.
func TestMatchAgreesWithReference(t *testing.T) {
	filters := filterUniverse(3)
	topics := universe(4, "a", "", "$x", "b")
	for _, f := range filters {
		for _, tp := range topics {
			if Match(f, tp) != refMatch(f, tp) {
				t.Fatalf("Match(%q, %q) = %v, reference says %v", f, tp, Match(f, tp), refMatch(f, tp))
			}
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		Match("$share/g/sensors/+/temperature/#", "sensors/dev-42/temperature/celsius")
		Match("a/b/c", "a/b/d")
	})
	assert.Zero(t, allocs)
}

func FuzzMatch(f *testing.F) {
	for _, v := range matchVectors {
		f.Add(v.filter, v.topic)
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if got, want := Match(filter, topic), refMatch(filter, topic); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", filter, topic, got, want)
		}
	})
}

// filterUniverse lists every filter of up to maxLevels levels built from
// the levels a, $x, "" and +, each with and without a final '#', plus '#'.
func filterUniverse(maxLevels int) []string {
	alphabet := []string{"a", "$x", "", "+"}
	out := []string{"#"}
	var grow func(prefix string, depth int)
	grow = func(prefix string, depth int) {
		for _, l := range alphabet {
			f := l
			if depth > 0 {
				f = prefix + "/" + l
			}
			if f != "" {
				out = append(out, f)
			}
			out = append(out, f+"/#")
			if depth+1 < maxLevels {
				grow(f, depth+1)
			}
		}
	}
	grow("", 0)
	return out
}
