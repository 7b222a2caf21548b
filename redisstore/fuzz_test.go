package redisstore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/trust"
)

// FuzzEvent feeds the channel's messages to a Fleet: anything another
// process publishes there must be applied or counted as bad, never crash
// the broker or leave its ban list unusable.
func FuzzEvent(f *testing.F) {
	for _, s := range []string{
		`{"node":"x","ban":{"ban":{"kind":"client","value":"dev-1","until":"2030-01-01T00:00:00Z"}}}`,
		`{"node":"x","ban":{"ban":{"kind":"cidr","value":"10.0.0.0/8"},"lifted":true}}`,
		`{"node":"x","ban":{"ban":{"kind":"ip","value":"::ffff:1.2.3.4"}}}`,
		`{"node":"x","record":{"dim":2,"key":"192.0.2.1","state":4,"since":"2026-01-01T00:00:00Z","score":10,"at":"2026-01-01T00:00:00Z"}}`,
		`{"node":"x","record":{"dim":0,"key":"c","state":200,"score":-5}}`,
		`{"node":"me","ban":{"ban":{"kind":"client","value":"self"}}}`,
		`not json`, `{}`, `{"ban":null,"record":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		tr, err := trust.New(trust.Config{Mode: trust.EnforceFull, UsernameFactor: 0.5, IPFactor: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		fl := &Fleet{c: &Client{node: "me", log: slog.New(slog.DiscardHandler)}, bans: &trust.Bans{}, trust: tr}
		fl.handle(payload)
		now := time.Now()
		for _, b := range fl.bans.List(now) {
			if _, ok := fl.bans.Banned(trust.Identity{ClientID: b.Value, Username: b.Value}, now); !ok && b.Kind <= trust.BanUsername {
				t.Fatalf("ban %+v is listed but does not match", b)
			}
		}
		tr.Stats(now)
	})
}
