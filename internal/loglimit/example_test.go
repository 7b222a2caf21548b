package loglimit_test

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mqttguard/mqttguard/internal/loglimit"
)

// An address that invents a client ID per CONNECT gets PerKey lines a
// minute, and the summary says what it tried.
func ExampleNew() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "since" {
			return slog.Attr{}
		}
		return a
	}})
	limited := loglimit.New(text, loglimit.Config{Keys: []string{"addr"}, PerKey: 2})
	log := slog.New(limited)
	for i := range 100 {
		log.Warn("refused", "client", fmt.Sprintf("rnd-%d", i), "addr", "203.0.113.9")
	}
	log.Warn("refused", "client", "sensor-1", "addr", "198.51.100.7")
	limited.Flush(time.Now().Add(time.Minute)) // a program does it every half minute or so
	// Output:
	// level=WARN msg=refused client=rnd-0 addr=203.0.113.9
	// level=WARN msg=refused client=rnd-1 addr=203.0.113.9
	// level=WARN msg=refused client=sensor-1 addr=198.51.100.7
	// level=WARN msg="loglimit: 98 similar records suppressed" suppressed=98 keys=1 top="addr=203.0.113.9:98" interval=1m0s
}
