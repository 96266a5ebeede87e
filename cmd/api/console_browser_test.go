package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is the headless browser the console's browser test drives: CHROMIUM, else
// chromium on PATH. Without one the test is skipped, so the README's test command works on a
// machine without a browser, unless DISPATCH24_REQUIRE_BROWSER is set: .ci/run installs
// Debian's chromium package and sets it, so CI fails rather than skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		const msg = "the console's browser test needs Chromium: apt-get install chromium, or set CHROMIUM to its path"
		if os.Getenv("DISPATCH24_REQUIRE_BROWSER") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// TestConsoleInBrowser signs in to the console in headless Chromium as an operator would:
// types the credentials, follows the failed delivery from the list to its attempt log, and
// replays it with the button, landing on the new delivery linked to the old one.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	deliveryLink := `a[href="/console/deliveries/` + f.deliveryID + `"]`
	replayButton := `form[action="/console/deliveries/` + f.deliveryID + `/replay"] button`

	step("signing in",
		chromedp.Navigate(f.url+"/console/"),
		chromedp.WaitVisible(`input[name="email"]`),
		chromedp.SendKeys(`input[name="email"]`, f.email),
		chromedp.SendKeys(`input[name="password"]`, f.password),
		chromedp.Click(`form[action="/console/signin"] button[type="submit"]`),
		chromedp.WaitVisible(deliveryLink),
	)
	listText := read("reading the list", chromedp.Text(`body`))
	step("opening the delivery", chromedp.Click(deliveryLink), chromedp.WaitVisible(replayButton))
	logText := read("reading the attempt log", chromedp.Text(`body`))
	// The new delivery's page links back to the replayed one ("Replay of").
	step("replaying", chromedp.Click(replayButton), chromedp.WaitVisible(deliveryLink))
	landed := read("reading the location", chromedp.Location())
	replayText := read("reading the new delivery", chromedp.Text(`body`))

	if !strings.Contains(listText, "failed") {
		t.Errorf("the list does not show the failed delivery:\n%s", listText)
	}
	if !strings.Contains(logText, "receiver is down for maintenance") || !strings.Contains(logText, "500") {
		t.Errorf("the attempt log does not show the receiver's answer:\n%s", logText)
	}
	if !strings.Contains(landed, "/console/deliveries/dlv_") || strings.HasSuffix(landed, f.deliveryID) {
		t.Errorf("after replaying, the browser is at %s, want the new delivery", landed)
	}
	if !strings.Contains(replayText, "Replay of") || !strings.Contains(replayText, f.deliveryID) {
		t.Errorf("the new delivery does not name the one it replays:\n%s", replayText)
	}
	if strings.Contains(listText+logText+replayText, f.password) {
		t.Error("a page shows the password")
	}
}
