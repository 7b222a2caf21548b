package dashboard_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/dashboard"
)

// FuzzFeed: whatever a broker hands the Guard — any bytes in a client
// ID, username, topic or cause — comes out of the Feed as valid UTF-8,
// cut to its bound (each invalid byte kept becomes one U+FFFD, three
// bytes), and unchanged when it fits.
func FuzzFeed(f *testing.F) {
	f.Add("sensor-1", "sensor1", "sensors/a/temperature", "no rule matched")
	f.Add(strings.Repeat("é", 200), "\xff\xfe", "a/\x00/b", strings.Repeat("x", 300))
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, client, username, topic, detail string) {
		feed := dashboard.NewFeed(2)
		r := refusal(0, topic)
		r.Client.ID, r.Client.Username = client, username
		r.Decision.Cause = mqttguard.Cause{Component: mqttguard.ByAnomaly, Detail: detail}
		feed.Add(r)
		feed.Add(r) // the anomaly log's update path too
		evs := feed.Latest(1, nil)
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		e := evs[0]
		for _, c := range []struct {
			name, in, out string
			bound         int
		}{{"client", client, e.Client, 128}, {"username", username, e.Username, 128}, {"topic", topic, e.Topic, 256}} {
			if !utf8.ValidString(c.out) {
				t.Fatalf("%s %q is not UTF-8", c.name, c.out)
			}
			if len(c.out) > 3*c.bound+len("…") {
				t.Fatalf("%s is %d bytes, past its bound %d", c.name, len(c.out), c.bound)
			}
			if len(c.in) <= c.bound && utf8.ValidString(c.in) && c.out != c.in {
				t.Fatalf("%s %q came out as %q", c.name, c.in, c.out)
			}
			if len(c.in) > c.bound && utf8.ValidString(c.in) && !strings.HasPrefix(c.in, strings.TrimSuffix(c.out, "…")) {
				t.Fatalf("%s cut to %q is not a prefix of what came in", c.name, c.out)
			}
		}
		if !utf8.ValidString(e.Cause) {
			t.Fatalf("cause %q is not UTF-8", e.Cause)
		}
		for _, a := range feed.Anomalous(r.At) {
			if !utf8.ValidString(a.Client) || !utf8.ValidString(a.Detail) || a.Count != 2 {
				t.Fatalf("anomaly %+v", a)
			}
		}
	})
}
