package guardmetrics_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/guardmetrics"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Register a Collector and serve it: the counters are read at scrape
// time.
func ExampleCollector() {
	bans := &trust.Bans{}
	g, _ := mqttguard.New(mqttguard.Config{Bans: bans})
	bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "rogue-7"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(&guardmetrics.Collector{Guard: g, Bans: bans})

	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(l, "mqttguard_bans ") {
			fmt.Println(l)
		}
	}
	// Output: mqttguard_bans 1
}
