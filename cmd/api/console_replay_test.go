package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleBrowser is a signed-in cookie-keeping HTTP client of the console.
type consoleBrowser struct {
	t   *testing.T
	f   *consoleFixture
	hc  *http.Client
	jar http.CookieJar
}

func signedInConsole(t *testing.T, f *consoleFixture) *consoleBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &consoleBrowser{t: t, f: f, hc: &http.Client{Jar: jar}, jar: jar}
	if code, body, _ := b.post("/console/signin", url.Values{"email": {f.email}, "password": {f.password}}); code != 200 {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	return b
}

func (b *consoleBrowser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.f.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func (b *consoleBrowser) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.f.url+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Request.URL.Path
}

// TestRootRedirectsToConsole: GET / answers 303 to /console/ (CONTRACT §8).
func TestRootRedirectsToConsole(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, f.url+"/", nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
			t.Errorf("%s /: %d Location %q, want 303 to /console/", method, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Other unknown paths are still the API's 404.
	resp, err := noFollow.Get(f.url + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d", resp.StatusCode)
	}
}

// TestConsoleRangeReplayTellsFailures: the replay form takes durations and no until, as the
// command line does; a replay whose deliveries all fail again says so (counts, a red bar, no
// "completed" alone), and the list links each replay to its original.
func TestConsoleRangeReplayTellsFailures(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)
	b := signedInConsole(t, f)

	code, body, _ := b.post("/console/replays", url.Values{"since": {"1h"}, "status": {"failed"}, "dryRun": {"1"}})
	if code != 200 || !strings.Contains(body, "Dry run: 1 deliveries match") {
		t.Fatalf("dry run with since=1h and no until: %d\n%s", code, body)
	}
	code, body, _ = b.post("/console/replays", url.Values{"since": {"yesterday"}})
	if code != 400 || !strings.Contains(body, "Since: &#34;yesterday&#34; is neither an RFC 3339 time") {
		t.Fatalf("since=yesterday: %d\n%s", code, body)
	}
	code, body, landed := b.post("/console/replays", url.Values{"since": {"1h"}, "until": {"0s"}, "surveyId": {"demo"}})
	if code != 200 || !strings.HasPrefix(landed, "/console/replays/rpl_") {
		t.Fatalf("range replay: %d at %s\n%s", code, landed, body)
	}

	// The receiver answers 500 and the schedule has no retries: the replay ends with its one
	// delivery failed again.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(body, "<dt>Status</dt><dd>completed") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		_, body = b.get(landed)
	}
	for _, want := range []string{
		"<dt>Status</dt><dd>completed: 1 of 1 failed again",
		"<dt>Succeeded</dt><dd>0</dd>", "<dt>Failed</dt><dd>1</dd>",
		`<span class="ok" style="width:0.00%"></span><span class="bad" style="width:100.00%"></span>`,
		"See the failed deliveries",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("replay page lacks %q:\n%s", want, body)
		}
	}

	_, list := b.get("/console/")
	if !strings.Contains(list, "<th>Replay of</th>") {
		t.Fatal("the list has no Replay of column")
	}
	link := regexp.MustCompile(`data-label="Replay of"><a class="clip" href="/console/deliveries/` + regexp.QuoteMeta(f.deliveryID) + `"`)
	if !link.MatchString(list) {
		t.Errorf("no row links back to the original %s:\n%s", f.deliveryID, list)
	}
	// The list's own since filter takes a duration as well.
	if code, body := b.get("/console/?since=2h&status=failed"); code != 200 || !strings.Contains(body, f.deliveryID) {
		t.Errorf("list since=2h: %d", code)
	}
}
