package topic

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidFilterErrors(t *testing.T) {
	cases := []struct {
		filter    string
		offset    int
		statement string
	}{
		{"", -1, "[MQTT-4.7.3-1]"},
		{"a/b#", 3, "[MQTT-4.7.1-1]"},
		{"a/#/b", 2, "[MQTT-4.7.1-1]"},
		{"a/+b", 2, "[MQTT-4.7.1-2]"},
		{"a+/b", 1, "[MQTT-4.7.1-2]"},
		{"a\x00b", 1, "[MQTT-4.7.3-2]"},
		{"a/\xff", 2, "[MQTT-1.5.4-1]"},
		{"$share/", -1, "[MQTT-4.8.2-2]"},
		{"$share//a", 7, "[MQTT-4.8.2-1]"},
		{"$share/g/", 9, "[MQTT-4.7.3-1]"},
		{"$share/p+q/a", 8, "[MQTT-4.8.2-2]"},
		{"$share/g#/a", 8, "[MQTT-4.8.2-2]"},
		{"$share/g/a/#/b", 11, "[MQTT-4.7.1-1]"},
		{strings.Repeat("a", 65536), -1, "[MQTT-4.7.3-3]"},
	}
	for _, c := range cases {
		err := ValidFilter(c.filter)
		var te *Error
		require.True(t, errors.As(err, &te), "ValidFilter(%q) = %v", c.filter, err)
		assert.Equal(t, c.offset, te.Offset, "offset for %q: %v", c.filter, err)
		assert.Equal(t, c.statement, te.Statement, "statement for %q: %v", c.filter, err)
		assert.Contains(t, err.Error(), c.statement)
	}
}

func TestValidFilterAccepts(t *testing.T) {
	for _, f := range []string{
		"#", "+", "/", "a//b", "+/+/#", "sub/ /topic", "$SYS/#", "a/$x/+",
		"$share/g/#", "$share/g/$share/t", "$share/g/a/+/c", "Юникод/+/",
		"$SHARE/g", "$shared/x", strings.Repeat("a", 65535),
	} {
		assert.NoError(t, ValidFilter(f), "ValidFilter(%q)", f)
		assert.True(t, refValidFilter(f), "reference ValidFilter(%q)", f)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "/", "a//b", "$SYS/x", "sub/ /topic", "Юникод"} {
		assert.NoError(t, ValidName(n), "ValidName(%q)", n)
	}
	for _, n := range []string{"", "a/+", "#", "a#", "a\x00", "\xc3\x28", strings.Repeat("x", 65536)} {
		assert.Error(t, ValidName(n), "ValidName(%q)", n)
	}
	err := ValidName("a/+/b")
	assert.EqualError(t, err, `invalid topic name "a/+/b": wildcard '+' is not allowed in a topic name at byte 2 [MQTT-4.7.0-1]`)
}

func TestSplitShared(t *testing.T) {
	name, inner, ok := SplitShared("$share/group/a/b")
	assert.True(t, ok)
	assert.Equal(t, "group", name)
	assert.Equal(t, "a/b", inner)
	for _, f := range []string{"a/b", "$share/", "$share//a", "$share/g/", "$share/g", "$SHARE/g/a"} {
		_, _, ok := SplitShared(f)
		assert.False(t, ok, f)
	}
}

func hasControl(s string) bool {
	for _, r := range s {
		if (r >= 1 && r < 0x20) || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return true
		}
	}
	return false
}

func FuzzValidFilter(f *testing.F) {
	for _, s := range []string{"#", "a/+/b", "$share/g/a", "a/#/b", "\xff", "$share//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidFilter(s)
		if (err == nil) != refValidFilter(s) {
			t.Fatalf("ValidFilter(%q) = %v, reference valid = %v", s, err, refValidFilter(s))
		}
		if (ValidName(s) == nil) != refValidName(s) {
			t.Fatalf("ValidName(%q) = %v, reference valid = %v", s, ValidName(s), refValidName(s))
		}
		// The strict scanners refuse exactly the control characters and
		// non-characters on top, and count levels.
		strictRefuses := err == nil && hasControl(s)
		if levels, e := ScanFilter(s, false); (e != nil) != (err != nil || strictRefuses) {
			t.Fatalf("ScanFilter(%q, strict) = %v, ValidFilter %v, control %v", s, e, err, hasControl(s))
		} else if e == nil {
			_, inner, _ := SplitShared(s)
			if want := strings.Count(inner, "/") + 1; levels != want {
				t.Fatalf("ScanFilter(%q) counted %d levels, want %d", s, levels, want)
			}
		}
		if _, e := ScanName(s, false); (e != nil) != (ValidName(s) != nil || (ValidName(s) == nil && hasControl(s))) {
			t.Fatalf("ScanName(%q, strict) = %v", s, e)
		}
		if _, _, shared := SplitShared(s); !shared && err == nil && ValidName(s) == nil && !Match(s, s) {
			t.Fatalf("a valid wildcard-free filter %q must match itself", s)
		}
	})
}
