package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/openapi/openapitest"
	"github.com/dispatch24/dispatch24/internal/runtest"
)

// apiCall sends a JSON request with an access token and decodes the answer.
func apiCall(t *testing.T, method, u, token string, in any, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := openapitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	if resp.StatusCode >= 400 && out == nil {
		t.Logf("%s %s → %d %s", method, u, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// adminToken signs in as the configured admin and returns an access token.
func adminToken(t *testing.T, base, email, password string) string {
	t.Helper()
	var rt struct{ RefreshToken string }
	if code := apiCall(t, "POST", base+"/api/signin", "", map[string]string{"email": email, "password": password}, &rt); code != 200 {
		t.Fatalf("signin %d", code)
	}
	req, _ := http.NewRequest("POST", base+"/api/refresh", nil)
	req.Header.Set("X-Auth-Token", rt.RefreshToken)
	resp, err := openapitest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var at struct{ AccessToken string }
	_ = json.NewDecoder(resp.Body).Decode(&at)
	if at.AccessToken == "" {
		t.Fatalf("refresh %d", resp.StatusCode)
	}
	return at.AccessToken
}

// consoleFixture is an embedded api with an admin, a survey, and one failed delivery (a test
// send to a receiver that answers 500), ready for the console.
type consoleFixture struct {
	url, email, password string
	deliveryID           string
	receiverURL          string // answers every delivery 500
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError) // a failing receiver: its delivery is worth replaying
		_, _ = io.WriteString(w, "receiver is down for maintenance")
	}))
	t.Cleanup(receiver.Close)

	f := &consoleFixture{email: "ops@example.org", password: "correct horse battery"}
	p := runtest.Start(t, run, map[string]string{
		"DATA_DIR": t.TempDir(), "ADMIN_EMAIL": f.email, "ADMIN_PASSWORD": f.password,
		"WEBHOOK_ALLOW_NETS": "127.0.0.0/8", "WEBHOOK_RETRY_SCHEDULE": "0s",
	})
	f.url, f.receiverURL = p.URL, receiver.URL
	token := adminToken(t, p.URL, f.email, f.password)
	if code := apiCall(t, "POST", p.URL+"/api/admin/surveys", token, map[string]any{"id": "demo", "name": "Demo"}, nil); code != 201 {
		t.Fatalf("create survey %d", code)
	}
	var hook struct{ ID string }
	if code := apiCall(t, "POST", p.URL+"/api/admin/surveys/demo/webhooks", token, map[string]any{"url": receiver.URL + "/hook"}, &hook); code != 201 {
		t.Fatalf("create webhook %d", code)
	}
	var test struct{ DeliveryID string }
	apiCall(t, "POST", p.URL+"/api/admin/surveys/demo/webhooks/"+hook.ID+"/test", token, nil, &test)
	if test.DeliveryID == "" || hits.Load() != 1 {
		t.Fatalf("test send: %+v hits=%d", test, hits.Load())
	}
	f.deliveryID = test.DeliveryID
	return f
}

func TestConsole(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		resp, err := browser.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string, string) {
		resp, err := browser.PostForm(f.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Request.URL.Path
	}

	// Not signed in: the sign-in page.
	if code, body := get("/console/"); code != 200 || !strings.Contains(body, `action="/console/signin"`) {
		t.Fatalf("anonymous console: %d", code)
	}
	if code, body, _ := post("/console/signin", url.Values{"email": {f.email}, "password": {"wrong password"}}); code != 401 || !strings.Contains(body, "Wrong e-mail or password") {
		t.Fatalf("bad sign-in: %d", code)
	}
	code, body, _ := post("/console/signin", url.Values{"email": {f.email}, "password": {f.password}})
	if code != 200 || !strings.Contains(body, f.deliveryID) || !strings.Contains(body, "failed") {
		t.Fatalf("deliveries page after sign-in: %d\n%s", code, body)
	}
	if strings.Contains(body, f.password) {
		t.Fatal("password echoed")
	}

	// Filters reach the API.
	if _, body := get("/console/?status=succeeded"); strings.Contains(body, f.deliveryID) {
		t.Fatal("status filter ignored")
	}
	// The attempt log shows the receiver's answer.
	code, body = get("/console/deliveries/" + f.deliveryID)
	if code != 200 || !strings.Contains(body, "receiver is down for maintenance") || !strings.Contains(body, "500") {
		t.Fatalf("delivery page %d\n%s", code, body)
	}
	// Range replay, dry run first. (Already-replayed deliveries are not matched again.)
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, body, _ = post("/console/replays", url.Values{"since": {since}, "until": {until}, "status": {"failed"}, "dryRun": {"1"}})
	if code != 200 || !regexp.MustCompile(`Dry run: [1-9]\d* deliveries match`).MatchString(body) {
		t.Fatalf("dry run: %d\n%s", code, body)
	}
	code, body, landed := post("/console/replays", url.Values{"since": {since}, "until": {until}, "status": {"failed"}, "surveyId": {"demo"}})
	if code != 200 || !strings.HasPrefix(landed, "/console/replays/") || !strings.Contains(body, "Matched") {
		t.Fatalf("range replay: %d at %s\n%s", code, landed, body)
	}

	// Replay one: a new delivery linked to the old one.
	code, body, landed = post("/console/deliveries/"+f.deliveryID+"/replay", nil)
	if code != 200 || landed == "/console/deliveries/"+f.deliveryID || !strings.Contains(body, f.deliveryID) {
		t.Fatalf("replay one: %d at %s\n%s", code, landed, body)
	}
	// A form posted from another origin is refused.
	req, _ := http.NewRequest("POST", f.url+"/console/deliveries/"+f.deliveryID+"/replay", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("cross-origin post: %d", resp.StatusCode)
	}

	// Signing out ends the session.
	post("/console/signout", nil)
	if _, body := get("/console/"); !strings.Contains(body, `action="/console/signin"`) {
		t.Fatal("still signed in after sign-out")
	}
}
