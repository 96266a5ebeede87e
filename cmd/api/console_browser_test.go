package main

import (
	"context"
	"encoding/json"
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

// newBrowser starts headless Chromium for the test, stopped at its end or after timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancel() })
	return bctx
}

// TestConsoleInBrowser signs in to the console in headless Chromium as an operator would:
// types the credentials, follows the failed delivery from the list to its attempt log, and
// replays it with the button, landing on the new delivery linked to the old one.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)

	bctx := newBrowser(t, 90*time.Second)

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

// layout is what the layout probe measures on a page.
type layout struct {
	ScrollWidth int      `json:"scrollWidth"`
	ClientWidth int      `json:"clientWidth"`
	Rows        int      `json:"rows"`
	Scrolling   []string `json:"scrolling"` // table containers wider than their box
	Cut         []string `json:"cut"`       // visible elements reaching past the viewport
}

// layoutProbe measures the page: its width against the viewport's, the table containers
// that scroll, and every visible cell, field or heading that reaches past the right edge.
const layoutProbe = `(() => {
  const de = document.documentElement, vw = de.clientWidth;
  const out = {scrollWidth: de.scrollWidth, clientWidth: vw, rows: document.querySelectorAll('tbody tr').length, scrolling: [], cut: []};
  for (const w of document.querySelectorAll('.table-wrap')) {
    if (w.scrollWidth > w.clientWidth + 1) out.scrolling.push(w.scrollWidth + 'px in ' + w.clientWidth + 'px');
  }
  for (const el of document.querySelectorAll('td, th, input, select, button, dt, dd, h1, label, header a')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1) out.cut.push(el.tagName.toLowerCase() + '[' + (el.dataset.label || el.name || el.textContent.trim().slice(0, 20)) + '] ends at ' + Math.round(r.right));
  }
  return JSON.stringify(out);
})()`

// TestConsoleLayoutInBrowser loads the console's pages in headless Chromium at 1280 and
// 800 px wide (and the list at 1400) with realistic data (a webhook URL of 200+ characters, a full page of 50
// deliveries, replays linked to their originals) and checks that no page is wider than the
// window, that no table needs to scroll sideways, and that no cell is cut off at the edge.
func TestConsoleLayoutInBrowser(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)
	token := adminToken(t, f.url, f.email, f.password)
	longURL := f.receiverURL + "/integrations/intake24/nutrition-study-2026/wave-3/northern-region/webhooks/v2/receive" +
		"?tenant=university-of-somewhere-department-of-population-health&signature-version=standard-webhooks-v1&retry=true"
	var hook struct{ ID string }
	if code := apiCall(t, "POST", f.url+"/api/admin/surveys/demo/webhooks", token, map[string]any{"url": longURL,
		"description": "Research data warehouse ingestion endpoint (production)"}, &hook); code != 201 {
		t.Fatalf("create webhook with a long URL: %d", code)
	}
	var longDelivery string
	for range 55 {
		var test struct{ DeliveryID string }
		apiCall(t, "POST", f.url+"/api/admin/surveys/demo/webhooks/"+hook.ID+"/test", token, nil, &test)
		if test.DeliveryID == "" {
			t.Fatal("test send failed")
		}
		longDelivery = test.DeliveryID
	}
	var replay struct{ ReplayID string }
	if code := apiCall(t, "POST", f.url+"/api/admin/deliveries/replay", token, map[string]any{
		"webhookId": hook.ID, "since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		"until": time.Now().Add(time.Minute).UTC().Format(time.RFC3339),
	}, &replay); code != 202 || replay.ReplayID == "" {
		t.Fatalf("range replay: %d", code)
	}
	// A disabled webhook with the long URL: the first page lists it above the deliveries.
	var off struct{ ID string }
	if code := apiCall(t, "POST", f.url+"/api/admin/surveys/demo/webhooks", token, map[string]any{"url": longURL + "&copy=2"}, &off); code != 201 ||
		apiCall(t, "PATCH", f.url+"/api/admin/surveys/demo/webhooks/"+off.ID, token, map[string]any{"disabled": true}, nil) != 200 {
		t.Fatal("creating a disabled webhook failed")
	}

	bctx := newBrowser(t, 3*time.Minute)

	measure := func(width int64, path string) {
		t.Helper()
		if err := chromedp.Do(bctx,
			chromedp.EmulateViewport(width, 900),
			chromedp.Navigate(f.url+path),
			chromedp.WaitVisible(chromedp.CSS(`body > main`)),
		); err != nil {
			t.Fatalf("%d px %s: %v", width, path, err)
		}
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](layoutProbe))
		if err != nil {
			t.Fatalf("%d px %s: measuring: %v", width, path, err)
		}
		var l layout
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("%d px %s: %v: %s", width, path, err, raw)
		}
		t.Logf("%d px %s: page %d/%d px, %d rows", width, path, l.ScrollWidth, l.ClientWidth, l.Rows)
		if l.ScrollWidth > l.ClientWidth {
			t.Errorf("%d px %s: the page is %d px wide in a %d px window", width, path, l.ScrollWidth, l.ClientWidth)
		}
		if len(l.Scrolling) > 0 {
			t.Errorf("%d px %s: tables scroll sideways: %v", width, path, l.Scrolling)
		}
		if len(l.Cut) > 0 {
			t.Errorf("%d px %s: cut off at the right edge: %v", width, path, l.Cut)
		}
	}
	// Signed out: the sign-in page.
	measure(800, "/console/signin")
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(`input[name="email"]`),
		chromedp.SendKeys(`input[name="email"]`, f.email),
		chromedp.SendKeys(`input[name="password"]`, f.password),
		chromedp.Click(`form[action="/console/signin"] button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`table.deliveries`)),
	); err != nil {
		t.Fatalf("signing in: %v", err)
	}
	// The first page (newest first) is 50 of the replay's deliveries, each with the id of
	// its original in the Replay of column, and the long URL.
	list, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`table.deliveries`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(list, "dlv_") != 100 || strings.Count(list, "/northern-region/") != 50 {
		t.Fatalf("the first page does not show 50 replays with their originals and URLs:\n%s", list)
	}
	measure(1400, "/console/") // where the table used to overflow
	for _, width := range []int64{1280, 800} {
		for _, path := range []string{
			"/console/",
			"/console/?webhookId=" + hook.ID + "&status=failed&since=24h",
			"/console/deliveries/" + longDelivery,
			"/console/replays/new?webhookId=" + hook.ID,
			"/console/replays/" + replay.ReplayID,
		} {
			measure(width, path)
		}
	}
}
