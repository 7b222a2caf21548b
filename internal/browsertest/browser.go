// Package browsertest runs a headless Chromium (Debian's chromium
// package) for tests that drive the dashboard in a real browser, through
// chromedp. A missing Chromium skips the test loudly, or fails it under
// .ci/run (package testenv).
package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/stretchr/testify/require"
)

// Start starts a browser for the test, closed when it ends, and
// returns its context (one tab).
func Start(t *testing.T) context.Context {
	t.Helper()
	path := testenv.Find("chromium")
	if path == "" {
		path = testenv.Program(t, "chromium", "chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1360, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx), "starting %s", path)
	return ctx
}

// Do runs browser steps, within 20 s.
func Do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...), what)
}

// Eval evaluates a script in the page, within 20 s.
func Eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := TryEval[T](ctx, js)
	require.NoError(t, err, js)
	return v
}

// TryEval is Eval that reports an error instead of failing the test:
// for a page that may be navigating (the script's context goes away).
func TryEval[T any](ctx context.Context, js string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// SignIn signs the browser in to the dashboard on the admin address
// with the token, and waits for the overview.
func SignIn(t *testing.T, ctx context.Context, admin, token string) {
	t.Helper()
	Do(t, ctx, "sign in",
		chromedp.Navigate("http://"+admin+"/dashboard/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), token),
		chromedp.Submit(chromedp.CSS(`input[name=token]`)),
		chromedp.WaitVisible(chromedp.CSS(`#components`)))
}
