package adminapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/adminapi"
	"github.com/mqttguard/mqttguard/trust"
)

// Mount the admin API on your own mux, behind your own authentication.
func ExampleHandler() {
	bans := &trust.Bans{}
	g, _ := mqttguard.New(mqttguard.Config{Bans: bans})
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", adminapi.RequireToken("a-long-random-token-here",
		&adminapi.Handler{Guard: g, Bans: bans})))

	r := httptest.NewRequest("GET", "/admin/bans", nil)
	r.Header.Set("Authorization", "Bearer a-long-random-token-here")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 []
}
