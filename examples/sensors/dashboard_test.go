package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/mqttguard/mqttguard/internal/browsertest"
	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// screenshotEnv names the file TestDashboardDuringAttack writes the
// overview to, mid-attack (docs/screenshot makes the README's).
const screenshotEnv = "MQTTGUARD_SCREENSHOT"

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// dialTLS connects a raw MQTT client to the demo's TLS listener.
func dialTLS(t *testing.T, s Started) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", s.MQTT, s.TLS)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// The dashboard in a real browser, while the sensors demo's rogue
// attacks: an operator signs in with the token, watches the rogue's
// trust state change in the clients table and a refusal reach the live
// view within a second, pardons the rogue's account (it can connect
// again), and bans its connection from the page (it is kicked).
func TestDashboardDuringAttack(t *testing.T) {
	ctx := browsertest.Start(t)
	var out, logs bytes.Buffer
	started := make(chan Started, 1)
	d := &Demo{Dir: t.TempDir(), Devices: defaultDevices(), AlertAbove: 30, Every: time.Second, Out: &out,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), RogueAfter: 10 * time.Second, RogueDone: make(chan struct{}),
		Rogue:   &Rogue{TooOften: 30, FloodFor: 2 * time.Second},
		Started: func(s Started) { started <- s }}
	dctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(dctx) }()
	defer func() {
		stop()
		require.NoError(t, <-ran)
		if t.Failed() {
			t.Log("the demo:\n" + out.String())
			t.Log("the broker's log:\n" + logs.String())
		}
	}()
	var s Started
	select {
	case s = <-started:
	case err := <-ran:
		t.Fatalf("the demo ended before it started: %v", err)
	}
	tok, err := os.ReadFile(s.TokenFile)
	require.NoError(t, err)
	base := "http://" + s.Admin + "/dashboard/"

	// Signing in: the admin address sends a browser to the dashboard,
	// which asks for the token.
	browsertest.Do(t, ctx, "sign in",
		chromedp.Navigate("http://"+s.Admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), strings.TrimSpace(string(tok))),
		chromedp.Submit(chromedp.CSS(`input[name=token]`)),
		chromedp.WaitVisible(chromedp.CSS(`#components`)))

	// A refusal reaches the live view within a second: the rogue's
	// account publishes where it may not, once the view is live.
	browsertest.Do(t, ctx, "open the live view", chromedp.Navigate(base+"live"))
	require.True(t, waitFor(5*time.Second, func() bool {
		return browsertest.Eval[string](t, ctx, `document.querySelector("#live .status").textContent`) == "live"
	}), "the live view connects")
	probe := dialTLS(t, s)
	require.Equal(t, byte(0), mqtttest.Connect5(t, probe, "rogue-1-probe", s.Accounts["rogue-1"].User, s.Accounts["rogue-1"].Password, nil))
	topic := fmt.Sprintf("commands/temp-1/probe-%d", time.Now().UnixNano())
	sent := time.Now()
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, probe, topic, 1, 1))
	seen := waitFor(3*time.Second, func() bool {
		return browsertest.Eval[bool](t, ctx, fmt.Sprintf(`document.querySelector('#live li[data-topic=%q]') !== null`, topic))
	})
	took := time.Since(sent)
	require.True(t, seen, "the refusal on %s reached the live view", topic)
	assert.Less(t, took, time.Second, "the refusal reached the live view in %v", took)
	row := browsertest.Eval[string](t, ctx, fmt.Sprintf(`document.querySelector('#live li[data-topic=%q]').textContent`, topic))
	assert.Contains(t, row, "reject 0x87")
	assert.Contains(t, row, "rogue-1-probe")
	assert.Contains(t, row, "acl")

	// Hovering holds the list still: a refusal that arrives meanwhile
	// waits, counted in the status, until the pointer leaves.
	box := browsertest.Eval[[]float64](t, ctx, `(r => [r.x + r.width/2, r.y + 5])(document.querySelector("#live .events").getBoundingClientRect())`)
	browsertest.Do(t, ctx, "hover over the list", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0], box[1]))
	held := fmt.Sprintf("commands/temp-1/held-%d", time.Now().UnixNano())
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, probe, held, 1, 2))
	heldSel := fmt.Sprintf(`document.querySelector('#live li[data-topic=%q]') !== null`, held)
	assert.True(t, waitFor(3*time.Second, func() bool {
		return strings.HasPrefix(browsertest.Eval[string](t, ctx, `document.querySelector("#live .status").textContent`), "held: 1 new")
	}), "the status counts the refusal held back")
	assert.False(t, browsertest.Eval[bool](t, ctx, heldSel), "the list stays still while hovered")
	browsertest.Do(t, ctx, "move away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 5))
	assert.True(t, waitFor(time.Second, func() bool { return browsertest.Eval[bool](t, ctx, heldSel) }), "the held refusal shows when the pointer leaves")

	// The filter asks the server for one client's refusals only.
	browsertest.Do(t, ctx, "filter by client", chromedp.SendKeys(chromedp.CSS(`#filter input[name=client]`), "no-such-client"))
	assert.True(t, waitFor(3*time.Second, func() bool {
		return browsertest.Eval[int](t, ctx, `document.querySelectorAll("#live li").length`) == 0 &&
			browsertest.Eval[string](t, ctx, `document.querySelector("#live .status").textContent`) == "live"
	}), "the list starts again, with what matches")
	assert.Equal(t, byte(0x87), mqtttest.Publish5(t, probe, topic+"/again", 1, 3))
	time.Sleep(time.Second)
	assert.Zero(t, browsertest.Eval[int](t, ctx, `document.querySelectorAll("#live li").length`), "another client's refusal is filtered out")

	// The rogue appears in the clients table, its trust state changing
	// as it attacks (the probe, still connected under the rogue's
	// account, shares its username's state).
	browsertest.Do(t, ctx, "open the clients page", chromedp.Navigate(base+"clients?q=rogue"))
	states := map[string]bool{}
	shot := false
	waitFor(60*time.Second, func() bool {
		rows := browsertest.Eval[[]struct{ ID, State string }](t, ctx,
			`[...document.querySelectorAll("#clients tbody tr, #accounts tbody tr")].map(r => ({ID: r.dataset.client || r.dataset.key, State: r.querySelector(".state").textContent}))`)
		for _, r := range rows {
			if strings.HasPrefix(r.ID, "rogue-1") {
				states[r.State] = true
			}
		}
		if !shot && len(states) >= 2 {
			shot = true
			screenshot(t, ctx, base)
			browsertest.Do(t, ctx, "back to the clients page", chromedp.Navigate(base+"clients?q=rogue"))
		}
		select {
		case <-d.RogueDone:
			return true
		default:
			return false
		}
	})
	probe.Close()
	t.Logf("the rogue's states seen in the clients table: %v", states)
	assert.GreaterOrEqual(t, len(states), 2, "the rogue's trust state changed in the table: %v", states)
	select {
	case <-d.RogueDone:
	default:
		t.Fatal("the rogue did not finish within a minute")
	}

	// The devices page lists the rogue's too-early readings.
	browsertest.Do(t, ctx, "the devices page", chromedp.Navigate(base+"devices"), chromedp.WaitVisible(chromedp.CSS(`#anomalous tr[data-client="rogue-1"]`)))
	anomaly := browsertest.Eval[string](t, ctx, `document.querySelector('#anomalous tr[data-client="rogue-1"]').textContent`)
	assert.Contains(t, anomaly, "too-early")
	assert.Contains(t, anomaly, "sensors/temperature/rogue-1")

	// After the attacks the rogue's account is shut out; a pardon made
	// in the page lets it connect again.
	rogue := s.Accounts["rogue-1"]
	shut := dialTLS(t, s)
	code := mqtttest.Connect5(t, shut, "rogue-1-after", rogue.User, rogue.Password, nil)
	require.NotZero(t, code, "the rogue's account is refused after its attacks")
	browsertest.Do(t, ctx, "pardon the rogue's account",
		chromedp.Navigate(base+"clients?q=rogue"),
		chromedp.WaitVisible(chromedp.CSS(`#accounts tr[data-key="rogue-1"] button.pardon`)),
		chromedp.Click(chromedp.CSS(`#accounts tr[data-key="rogue-1"] button.pardon`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)))
	done := browsertest.Eval[string](t, ctx, `document.querySelector("p.done").textContent`)
	assert.Contains(t, done, "pardoned username rogue-1")
	back := dialTLS(t, s)
	require.Equal(t, byte(0), mqtttest.Connect5(t, back, "rogue-1-after", rogue.User, rogue.Password, nil),
		"pardoned, the rogue's account connects again")

	// A ban made in the page kicks the connection at once.
	browsertest.Do(t, ctx, "ban the rogue's connection",
		chromedp.Navigate(base+"bans?kind=client&value=rogue-1-after"),
		chromedp.WaitVisible(chromedp.CSS(`#ban input[name=reason]`)),
		chromedp.SendKeys(chromedp.CSS(`#ban input[name=reason]`), "banned from the dashboard test"),
		chromedp.Click(chromedp.CSS(`#ban button`)))
	kicked, _ := mqtttest.Disconnected(t, back, 5*time.Second)
	assert.Equal(t, 0x98, kicked, "the ban kicked the connection (DISCONNECT 0x98: 0x8A banned is a CONNACK code)")
	browsertest.Do(t, ctx, "the ban is listed", chromedp.WaitVisible(chromedp.CSS(`#bans tr[data-value="rogue-1-after"]`)))
	by := browsertest.Eval[string](t, ctx, `document.querySelector('#bans tr[data-value="rogue-1-after"]').textContent`)
	assert.Contains(t, by, "dashboard")
	assert.Contains(t, by, "banned from the dashboard test")
}

// screenshot writes the overview to $MQTTGUARD_SCREENSHOT, if set.
func screenshot(t *testing.T, ctx context.Context, base string) {
	path := os.Getenv(screenshotEnv)
	if path == "" {
		return
	}
	browsertest.Do(t, ctx, "open the overview",
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS(`#components`)),
		chromedp.Sleep(2500*time.Millisecond)) // a refresh, with the attack in the charts
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("the overview, mid-attack: %s", path)
}
