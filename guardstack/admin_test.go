package guardstack

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The admin token is what stands against guessing: a weak one is
// refused at start, with what makes it weak.
func TestWeakToken(t *testing.T) {
	for tok, want := range map[string]string{
		"short":                            "5 characters; use at least 16",
		"aaaaaaaaaaaaaaaaaaaaaaaa":         "1 different characters",
		"passwordpassword":                 "7 different characters",
		"thequickbrownfox":                 "about 75 bits; use at least 80",
		"0123456789012345":                 "about 53 bits; use at least 80",
		"0123456789abcdef0123":             "",
		secret(24):                         "",
		"correct horse battery staple now": "",
	} {
		assert.Equal(t, want, weakToken(tok), "%q", tok)
	}
}

// On loopback the admin listener answers only for loopback names, on
// any port (an SSH tunnel's): a page whose name was re-pointed at
// 127.0.0.1 (DNS rebinding) is not served.
func TestOwnHostOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := ownHostOnly("127.0.0.1:0", ok)
	for host, want := range map[string]int{
		"127.0.0.1:8080": 200, "localhost:8080": 200, "LOCALHOST:9999": 200, "[::1]:8080": 200, "127.0.0.2:80": 200, "localhost": 200,
		"rebind.attacker.example:8080": 421, "localhost.attacker.example:8080": 421, "10.0.0.5:8080": 421, "": 421,
	} {
		r := httptest.NewRequest("GET", "/dashboard/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, want, w.Code, "Host %q", host)
	}
	// Elsewhere the operator's names are not known: every Host is served.
	h = ownHostOnly("10.0.0.5:8080", ok)
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Host = "mqtt-admin.example:8080"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 200, w.Code)
}

// The Guard feeds the dashboard's ring only when StartAdmin will serve
// a live view to read it: no admin listener, or admin.dashboard off,
// and a refusal costs nothing more than before.
func TestFeedOnlyWithTheDashboard(t *testing.T) {
	assert.NotNil(t, startStack(t, testConfig()).Feed)
	noListener := strings.Replace(testConfig(), `listen = "127.0.0.1:0"`, `listen = ""`, 1)
	assert.Nil(t, startStack(t, noListener).Feed)
	off := strings.Replace(testConfig(), "dashboard = true", "dashboard = false", 1)
	assert.Nil(t, startStack(t, off).Feed)
}
