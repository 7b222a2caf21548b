package acl

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendixC is mosquitto's own acl_file behaviour test
// (test/broker/09-acl-access-variants.py): three blocks, each enabled
// alone and together.
const appendixGlobal = "topic readwrite topic/global/#\ntopic deny topic/global/except\n"
const appendixUser = "user username\ntopic readwrite topic/username/#\ntopic deny topic/username/except\n"
const appendixPattern = "pattern deny pattern/%u/except\npattern readwrite pattern/%u/#\n"

func TestMosquittoAccessVariants(t *testing.T) {
	cases := []struct {
		block, username, topic string
		allowed                bool
	}{
		{"global", "", "topic/global", true},
		{"global", "username", "topic/global", false}, // anonymous block only
		{"global", "", "topic/global/except", false},
		{"user", "", "topic/username", false},
		{"user", "username", "topic/username", true},
		{"user", "username", "topic/username/except", false},
		{"pattern", "", "pattern/username", false}, // %u needs a username
		{"pattern", "username", "pattern/username", true},
		{"pattern", "username", "pattern/username/except", false},
	}
	blocks := map[string]string{"global": appendixGlobal, "user": appendixUser, "pattern": appendixPattern}
	// Every combination of blocks, in the order the test writes them.
	for mask := 1; mask < 8; mask++ {
		var file strings.Builder
		for i, name := range []string{"global", "user", "pattern"} {
			if mask&(1<<i) != 0 {
				file.WriteString(blocks[name])
			}
		}
		p, err := ParseMosquitto(strings.NewReader(file.String()))
		require.NoError(t, err)
		for _, c := range cases {
			enabled := false
			for i, name := range []string{"global", "user", "pattern"} {
				if name == c.block && mask&(1<<i) != 0 {
					enabled = true
				}
			}
			if !enabled {
				continue
			}
			cl := Client{ID: "cid", Username: c.username}
			// Allowed in the test means published and delivered back: both
			// Publish and Receive.
			got := p.Check(cl, Publish, c.topic).Allowed && p.Check(cl, Receive, c.topic).Allowed
			assert.Equal(t, c.allowed, got, "blocks %03b, user %q, topic %q", mask, c.username, c.topic)
		}
	}
}

func TestMosquittoSemantics(t *testing.T) {
	file := `# comment
topic read public/#

user alice
topic readwrite home/alice/#
topic deny home/alice/secret
topic write sensors/alice
topic read  spaced  topic name

user bob
topic home/bob/#
topic read $SYS/#

pattern write devices/%c/out
pattern read devices/%u/in/#
pattern deny devices/%u/in/locked
pattern readwrite literal/pattern
`
	p, err := ParseMosquitto(strings.NewReader(file))
	require.NoError(t, err)
	alice := Client{ID: "dev-a", Username: "alice"}
	bob := Client{ID: "dev-b", Username: "bob"}
	anon := Client{ID: "anon"}
	checks := []struct {
		c     Client
		a     Access
		topic string
		want  bool
	}{
		{anon, Receive, "public/x", true},
		{anon, Publish, "public/x", false},
		{alice, Receive, "public/x", false}, // anonymous block only
		{alice, Publish, "home/alice/x", true},
		{alice, Receive, "home/alice/secret", false}, // deny wins in the list
		{alice, Publish, "sensors/alice", true},
		{alice, Receive, "sensors/alice", false}, // a write rule does not grant read
		{alice, Receive, "spaced  topic name", true},
		{bob, Publish, "home/bob/a", true}, // access defaults to readwrite
		{bob, Receive, "$SYS/broker/uptime", true},
		{bob, Publish, "$SYS/broker/uptime", false}, // reserved
		{alice, Publish, "devices/dev-a/out", true}, // %c
		{alice, Publish, "devices/dev-b/out", false},
		{alice, Receive, "devices/alice/in/cmd", true}, // %u
		{alice, Receive, "devices/alice/in/locked", false},
		{bob, Receive, "devices/alice/in/cmd", false},
		{anon, Receive, "devices/anon/in/cmd", false},                             // %u never matches without a username
		{anon, Publish, "literal/pattern", true},                                  // a pattern without placeholders applies to all
		{Client{ID: "x+y", Username: "carol"}, Publish, "literal/pattern", false}, // CVE-2017-7650 guard
		{Client{ID: "c", Username: "a/b"}, Publish, "devices/c/out", true},
		{Client{ID: "c", Username: "alice/in"}, Receive, "devices/alice/in/x", false}, // never via '/'
		{alice, Publish, "$share/g/x", false},
		{alice, Subscribe, "home/alice/x/#", true},
		{alice, Subscribe, "home/alice/+", false}, // intersects the deny rule
		{alice, Subscribe, "home/alice/#", false}, // the deny rule intersects it
		{alice, Subscribe, "public/#", false},
	}
	for _, c := range checks {
		d := p.Check(c.c, c.a, c.topic)
		assert.Equal(t, c.want, d.Allowed, "%s %s %q: %s", c.c.Username, c.a, c.topic, d)
	}
	d := p.Check(alice, Receive, "home/alice/secret")
	require.NotNil(t, d.Rule)
	assert.Equal(t, 6, d.Rule.Line)
	assert.Equal(t, "denied by :6: topic deny home/alice/secret", d.String())
}

func TestMosquittoParseErrors(t *testing.T) {
	cases := []struct {
		file, want string
	}{
		{"", "acl: no rules"},
		{"# only comments\n\n", "acl: no rules"},
		{"topic read a\nbogus line\n", "acl:2: unknown keyword \"bogus\""},
		{"topic\tread\ta\n", "acl:1: unknown keyword \"topic\\tread\\ta\": a line starts with topic, pattern, user or '#' (words must be separated by spaces"},
		{"topic\n", "acl:1: missing topic"},
		{"topic readx a/b\n", "acl:1: access \"readx\": want read, write, readwrite or deny"},
		{"user\n", "acl:1: \"user\" needs a username"},
		{"topic read a/#/b\n", "acl:1: invalid topic filter \"a/#/b\""},
		{"pattern read data/%u-in/#\n", "acl:1: placeholder inside the level \"%u-in\""},
		{"  # indented comments are not comments in mosquitto\n", "acl:1: unknown keyword \"#\""},
	}
	for _, c := range cases {
		_, err := ParseMosquitto(strings.NewReader(c.file))
		require.Error(t, err, "%q", c.file)
		assert.Contains(t, err.Error(), c.want, "%q", c.file)
		var pe *ParseError
		assert.True(t, errors.As(err, &pe))
	}
}

func TestMosquittoSingleWordIsTopic(t *testing.T) {
	// mosquitto takes "topic read" as the topic "read" with readwrite.
	p, err := ParseMosquitto(strings.NewReader("topic read\n"))
	require.NoError(t, err)
	assert.True(t, p.Check(Client{ID: "x"}, Publish, "read").Allowed)
}

func TestMosquittoTopicLinesAreLiteral(t *testing.T) {
	// mosquitto substitutes only in pattern lines.
	p, err := ParseMosquitto(strings.NewReader("user alice\ntopic readwrite x/%u\n"))
	require.NoError(t, err)
	alice := Client{ID: "a", Username: "alice"}
	assert.True(t, p.Check(alice, Publish, "x/%u").Allowed)
	assert.False(t, p.Check(alice, Publish, "x/alice").Allowed)
}

func FuzzParseMosquitto(f *testing.F) {
	f.Add(appendixGlobal + appendixUser + appendixPattern)
	f.Add("topic read a/+/b\nuser x y\ntopic deny #\n")
	f.Add("pattern write %c/#\n\n# c\n")
	f.Fuzz(func(t *testing.T, file string) {
		p, err := ParseMosquitto(strings.NewReader(file))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		if p.Len() == 0 {
			t.Fatal("a parsed policy must have rules")
		}
		// Every rule must be a valid, checkable rule.
		for _, r := range p.Rules() {
			if err := r.validate(); err != nil {
				t.Fatalf("parsed an invalid rule %+v: %v", r, err)
			}
			p.Check(Client{ID: "c", Username: "u"}, Receive, "a/b")
		}
	})
}
