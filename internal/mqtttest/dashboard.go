package mqtttest

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Dashboard signs in to the dashboard on the admin address with the
// token in tokenFile, as a browser does, and returns the signed-in
// client (it follows no redirects).
func Dashboard(t testing.TB, admin, tokenFile string) *http.Client {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm("http://"+admin+"/dashboard/login", url.Values{"token": {strings.TrimSpace(string(tok))}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "signing in to the dashboard")
	return c
}

// LiveRefusals are the refusals on topics containing topic that the
// dashboard's live view sends first (its backlog), as
// "verdict code topic component".
func LiveRefusals(t testing.TB, c *http.Client, admin, topic string) []string {
	t.Helper()
	res, err := c.Get("http://" + admin + "/dashboard/events?topic=" + url.QueryEscape(topic))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var b struct {
			Events []struct{ Verdict, Code, Topic, Component string }
		}
		require.NoError(t, json.Unmarshal([]byte(data), &b))
		var out []string
		for _, e := range b.Events {
			out = append(out, e.Verdict+" "+e.Code+" "+e.Topic+" "+e.Component)
		}
		return out
	}
}
