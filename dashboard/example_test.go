package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/dashboard"
	"github.com/mqttguard/mqttguard/trust"
)

// Mount the dashboard beside the admin API, behind the token.
func ExampleNew() {
	feed := dashboard.NewFeed(0)
	bans := &trust.Bans{}
	g, _ := mqttguard.New(mqttguard.Config{Bans: bans, OnRefusal: feed.Add})
	d, err := dashboard.New(dashboard.Config{Admin: &adminapi.Handler{Guard: g, Bans: bans}, Feed: feed})
	if err != nil {
		panic(err)
	}
	defer d.Close() // before the server's Shutdown: it ends the live views

	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dashboard.RequireLogin("a-long-random-token-here", d)))

	// A browser that has not signed in is sent to the sign-in page.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/clients", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output:
	// 303 /dashboard/login
}

// A Feed keeps the Guard's latest refusals, copied, in a fixed ring.
func ExampleFeed() {
	feed := dashboard.NewFeed(1024)
	bans := &trust.Bans{}
	g, _ := mqttguard.New(mqttguard.Config{Bans: bans, OnRefusal: feed.Add})
	bans.Add(trust.Ban{Kind: trust.BanClientID, Value: "rogue-1", Reason: "flooding"})

	now := time.Now()
	g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "rogue-1", Username: "u", Addr: netip.MustParseAddrPort("192.0.2.9:50000")}, now)

	for _, e := range feed.Latest(10, nil) {
		fmt.Println(e.Point, e.Client, e.Verdict, e.Code, e.CodeName, "·", e.Cause)
	}
	// Output:
	// connect rogue-1 reject 0x8A banned · ban "client rogue-1": flooding
}

// RequireLogin lets a script in with the bearer token too.
func ExampleRequireLogin() {
	bans := &trust.Bans{}
	g, _ := mqttguard.New(mqttguard.Config{Bans: bans})
	d, _ := dashboard.New(dashboard.Config{Admin: &adminapi.Handler{Guard: g, Bans: bans}})
	defer d.Close()
	h := dashboard.RequireLogin("a-long-random-token-here", d)

	r := httptest.NewRequest("GET", "/bans", nil)
	r.Header.Set("Authorization", "Bearer a-long-random-token-here")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 200 text/html; charset=utf-8
}
