package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// buildBinaries compiles cmd/api and cmd/dispatcher into one temporary directory.
func buildBinaries(t *testing.T) (api, dispatcher string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), ".", "../api")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "api"), filepath.Join(dir, "dispatcher")
}

// Receiver modes.
const (
	answer500 = iota // every request gets 500
	hold             // the held events wait for release, then succeed; others get 500
	answerOK         // requests succeed
)

// opsReceiver is a webhook receiver on 127.0.0.1 whose answer the test switches.
type opsReceiver struct {
	*httptest.Server
	verifier atomic.Pointer[webhook.Verifier]
	mode     atomic.Int32
	holdIDs  atomic.Pointer[map[string]bool] // event ids held in hold mode
	requests atomic.Int64
	release  chan struct{}
	once     sync.Once

	mu        sync.Mutex
	delivered map[string]int // webhook-id → verified 2xx answers
}

func newOpsReceiver(t *testing.T) *opsReceiver {
	t.Helper()
	rc := &opsReceiver{release: make(chan struct{}), delivered: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		mode := rc.mode.Load()
		if mode == hold {
			if ids := rc.holdIDs.Load(); ids == nil || !(*ids)[r.Header.Get(webhook.HeaderID)] {
				mode = answer500
			}
		}
		switch mode {
		case answer500:
			http.Error(w, "receiver down for the test", http.StatusInternalServerError)
			return
		case hold:
			select {
			case <-rc.release:
			case <-r.Context().Done():
				return
			}
		}
		v := rc.verifier.Load()
		if v == nil {
			http.Error(w, "no verifier yet", http.StatusInternalServerError)
			return
		}
		d, err := v.Verify(r.Header, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rc.mu.Lock()
		rc.delivered[d.ID]++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		rc.releaseHeld()
		rc.Close()
	})
	return rc
}

func (rc *opsReceiver) releaseHeld() { rc.once.Do(func() { close(rc.release) }) }

func (rc *opsReceiver) deliveredIDs() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.delivered))
	for k, v := range rc.delivered {
		out[k] = v
	}
	return out
}

// apiClient calls the API the test started.
type apiClient struct {
	t    *testing.T
	base string
}

// call sends body as JSON (nil: no body) with token in X-Auth-Token and decodes the answer
// into out (nil: discard). It fails the test unless the status is want.
func (c *apiClient) call(method, path, token string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// signIn posts creds to a sign-in route and trades the refresh token for an access token.
func (c *apiClient) signIn(path string, creds any) string {
	c.t.Helper()
	var s struct{ RefreshToken string }
	c.call("POST", path, "", creds, http.StatusOK, &s)
	var a struct{ AccessToken string }
	c.call("POST", "/api/refresh", s.RefreshToken, nil, http.StatusOK, &a)
	if a.AccessToken == "" {
		c.t.Fatalf("no access token from %s", path)
	}
	return a.AccessToken
}

type listedDelivery struct {
	ID             string `json:"id"`
	EventID        string `json:"eventId"`
	WebhookID      string `json:"webhookId"`
	Status         string `json:"status"`
	Attempts       int    `json:"attempts"`
	LastStatusCode *int   `json:"lastStatusCode"`
	ReplayOf       string `json:"replayOf"`
	ReplayID       string `json:"replayId"`
}

// deliveries lists every delivery of a survey through the API.
func (c *apiClient) deliveries(token, survey string) []listedDelivery {
	c.t.Helper()
	var all []listedDelivery
	cursor := ""
	for {
		var page struct {
			Items      []listedDelivery `json:"items"`
			NextCursor *string          `json:"nextCursor"`
		}
		path := "/api/admin/deliveries?limit=500&surveyId=" + survey
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		c.call("GET", path, token, nil, http.StatusOK, &page)
		all = append(all, page.Items...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all
		}
		cursor = *page.NextCursor
	}
}

// cliResult is one finished run of the dispatcher binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs the dispatcher binary with env as its whole environment.
func cli(t *testing.T, bin string, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = envList(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("dispatcher %v: %v\nstderr: %s", args, err, res.stderr)
	}
	return res
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// mustSucceed fails the test unless r exited 0.
func (r cliResult) mustSucceed(t *testing.T, what string) cliResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit status %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
	return r
}

var apiListening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startAPI starts the api binary on a PostgreSQL schema of its own with embedded NATS and
// in-process workers, and returns its base URL.
func startAPI(t *testing.T, bin string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = envList(env)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	// SIGTERM first so the api shuts down cleanly; CommandContext kills after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		// Wait reports context.Canceled for a clean exit after the interrupt.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("api exit: %v", err)
		}
		if t.Failed() {
			t.Logf("api logs (tail):\n%s", tail(logs.String()))
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := apiListening.FindStringSubmatch(logs.String()); m != nil {
			return "http://" + m[1]
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("api exited before listening: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("api did not listen within 90s:\n%s", logs.String())
		}
	}
}

// TestOpsCommandsEndToEnd builds the api and dispatcher binaries, runs the api on PostgreSQL
// with a webhook whose receiver fails, and drives the failed deliveries with the dispatcher's
// ops commands: list, show, a dry-run replay that changes nothing, a range replay that
// delivers everything once the receiver is back, a refused overlapping replay while it runs,
// and a bad token that is refused without being echoed.
func TestOpsCommandsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	apiBin, dispatcherBin := buildBinaries(t)
	const (
		n          = 4
		survey     = "ops-e2e"
		adminEmail = "ops-admin@example.org"
		adminPass  = "a long admin password"
	)
	rc := newOpsReceiver(t)
	base := startAPI(t, apiBin, map[string]string{
		"HTTP_ADDR":              "127.0.0.1:0",
		"DATA_DIR":               t.TempDir(),
		"DATABASE_URL":           storetest.PostgresURL(t),
		"TOKEN_SECRET":           strings.Repeat("e", 40),
		"SECRETS_KEY":            testSecretsKey,
		"DISPATCH_IN_PROCESS":    "true",
		"ADMIN_EMAIL":            adminEmail,
		"ADMIN_PASSWORD":         adminPass,
		"WEBHOOK_ALLOW_NETS":     "127.0.0.0/8",
		"WEBHOOK_RETRY_SCHEDULE": "0s,100ms,100ms",
		// Held requests must not time out while the test checks the overlapping replay.
		"WEBHOOK_TIMEOUT": "2m",
		"LOG_LEVEL":       "info",
	})
	api := &apiClient{t: t, base: base}

	// The admin signs in and makes a personal access token for the ops commands.
	admin := api.signIn("/api/signin", map[string]string{"email": adminEmail, "password": adminPass})
	var pat struct{ Token string }
	api.call("POST", "/api/admin/user/personal-access-tokens", admin,
		map[string]string{"name": "ops-e2e", "expiresAt": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)},
		http.StatusCreated, &pat)
	if pat.Token == "" {
		t.Fatal("no personal access token")
	}

	// A survey, a respondent and a webhook to the receiver, which answers 500 for now.
	api.call("POST", "/api/admin/surveys", admin, map[string]any{"id": survey, "name": "Ops end to end"}, http.StatusCreated, nil)
	var resp struct{ AuthToken string }
	api.call("POST", "/api/admin/surveys/"+survey+"/respondents", admin,
		map[string]string{"username": "resp1", "password": "respondent password"}, http.StatusCreated, &resp)
	var hook struct{ ID, Secret string }
	api.call("POST", "/api/admin/surveys/"+survey+"/webhooks", admin, map[string]any{"url": rc.URL + "/hook"}, http.StatusCreated, &hook)
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{hook.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	rc.verifier.Store(v)

	// The respondent submits n recalls; each delivery fails three times and ends failed.
	// The replay range reaches into the future so that a delivery that fails later falls in
	// it too (see the overlapping replay below).
	since := time.Now().Add(-time.Second).UTC()
	until := time.Now().Add(time.Hour).UTC()
	respondent := api.signIn("/api/signin/token/"+resp.AuthToken, nil)
	submit := func(i int) {
		t.Helper()
		var s struct{ SessionID string }
		api.call("POST", "/api/surveys/"+survey+"/session", respondent, nil, http.StatusCreated, &s)
		start := time.Now().Add(-time.Hour).UTC()
		api.call("POST", "/api/surveys/"+survey+"/submission", respondent, map[string]any{
			"sessionId": s.SessionID,
			"startTime": start.Format(time.RFC3339),
			"endTime":   start.Add(20 * time.Minute).Format(time.RFC3339),
			"meals":     []any{map[string]any{"name": "Breakfast", "foods": []any{map[string]any{"code": fmt.Sprintf("F%d", i)}}}},
		}, http.StatusCreated, nil)
	}
	waitFailed := func(want int) {
		t.Helper()
		waitFor(t, 2*time.Minute, fmt.Sprintf("%d failed deliveries", want), func() bool {
			failed := 0
			for _, d := range api.deliveries(pat.Token, survey) {
				if d.Status == "failed" {
					failed++
				}
			}
			return failed == want
		})
	}
	for i := range n {
		submit(i)
	}
	waitFailed(n)
	requestsBefore := rc.requests.Load()
	if requestsBefore != 3*n {
		t.Errorf("receiver saw %d requests, want %d (three attempts per delivery)", requestsBefore, 3*n)
	}

	// The ops commands get the API and the token only: no NATS_URL, DATABASE_URL or
	// TOKEN_SECRET.
	opsEnv := map[string]string{"DISPATCH24_API_URL": base, "DISPATCH24_TOKEN": pat.Token}

	// webhooks list shows a survey's webhooks with their delivery options and state, from
	// another survey so that the deliveries above stay as they are.
	api.call("POST", "/api/admin/surveys", admin, map[string]any{"id": survey + "-hooks", "name": "Ops webhooks"}, http.StatusCreated, nil)
	var optioned struct{ ID string }
	api.call("POST", "/api/admin/surveys/"+survey+"-hooks/webhooks", admin, map[string]any{"url": rc.URL + "/ordered",
		"rateLimit": 7, "ordering": "fifo", "signatureScheme": "v1a", "events": []string{"survey.session.submitted", "delivery.exhausted"}},
		http.StatusCreated, &optioned)
	api.call("PATCH", "/api/admin/surveys/"+survey+"-hooks/webhooks/"+optioned.ID, admin, map[string]any{"disabled": true}, http.StatusOK, nil)
	hooks := cli(t, dispatcherBin, opsEnv, "webhooks", "list", "--survey", survey+"-hooks").mustSucceed(t, "webhooks list")
	for _, want := range []string{optioned.ID, "survey.session.submitted,delivery.exhausted", "v1a", "fifo", "7/s", "disabled since ", ": manual"} {
		if !strings.Contains(hooks.stdout, want) {
			t.Errorf("webhooks list lacks %q:\n%s", want, hooks.stdout)
		}
	}
	hooksJSON := cli(t, dispatcherBin, opsEnv, "webhooks", "list", "--survey", survey+"-hooks", "--json").mustSucceed(t, "webhooks list --json")
	var listedHook struct {
		ID, Ordering, SignatureScheme string
		RateLimit                     *int
		Disabled                      bool
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(hooksJSON.stdout)), &listedHook); err != nil {
		t.Fatalf("webhooks list --json %q: %v", hooksJSON.stdout, err)
	}
	if listedHook.ID != optioned.ID || listedHook.Ordering != "fifo" || listedHook.SignatureScheme != "v1a" ||
		listedHook.RateLimit == nil || *listedHook.RateLimit != 7 || !listedHook.Disabled {
		t.Errorf("webhooks list --json: %+v", listedHook)
	}
	if strings.Contains(hooksJSON.stdout, "whsk_") || strings.Contains(hooks.stdout, "whsk_") {
		t.Error("webhooks list shows a signing key")
	}
	if r := cli(t, dispatcherBin, opsEnv, "webhooks", "list"); r.code != 2 || !strings.Contains(r.stderr, "--survey is required") {
		t.Errorf("webhooks list without --survey: exit %d, stderr %q", r.code, r.stderr)
	}

	// deliveries list --json shows the failed deliveries.
	out := cli(t, dispatcherBin, opsEnv, "deliveries", "list", "--survey", survey, "--status", "failed", "--json").mustSucceed(t, "deliveries list")
	var listed []listedDelivery
	sc := bufio.NewScanner(strings.NewReader(out.stdout))
	for sc.Scan() {
		var d listedDelivery
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("deliveries list --json line %q: %v", sc.Text(), err)
		}
		listed = append(listed, d)
	}
	if len(listed) != n {
		t.Fatalf("deliveries list --json: %d lines, want %d:\n%s", len(listed), n, out.stdout)
	}
	originals := map[string]listedDelivery{}
	holdIDs := map[string]bool{}
	for _, d := range listed {
		holdIDs[d.EventID] = true
		if d.Status != "failed" || d.Attempts != 3 || d.LastStatusCode == nil || *d.LastStatusCode != 500 || d.WebhookID != hook.ID {
			t.Errorf("listed delivery %+v, want failed after 3 attempts answered 500 at %s", d, hook.ID)
		}
		originals[d.ID] = d
	}
	// The table form lists them too.
	table := cli(t, dispatcherBin, opsEnv, "deliveries", "list", "--survey", survey).mustSucceed(t, "deliveries list (table)")
	for id := range originals {
		if !strings.Contains(table.stdout, id) {
			t.Errorf("deliveries list table lacks %s:\n%s", id, table.stdout)
		}
	}

	// deliveries show ID prints the attempt log.
	first := listed[0]
	shown := cli(t, dispatcherBin, opsEnv, "deliveries", "show", first.ID).mustSucceed(t, "deliveries show")
	if !strings.Contains(shown.stdout, "failed after 3 attempt(s)") {
		t.Errorf("deliveries show: no status line:\n%s", shown.stdout)
	}
	attemptRow := regexp.MustCompile(`(?m)^[123]\s+\S+\s+\d+\s+500\s`)
	if rows := attemptRow.FindAllString(shown.stdout, -1); len(rows) != 3 {
		t.Errorf("deliveries show: %d attempt rows answered 500, want 3:\n%s", len(rows), shown.stdout)
	}
	if !strings.Contains(shown.stdout, "receiver down for the test") {
		t.Errorf("deliveries show: the response body is missing:\n%s", shown.stdout)
	}
	var detail struct {
		ID         string `json:"id"`
		AttemptLog []struct {
			N          int  `json:"n"`
			StatusCode *int `json:"statusCode"`
		} `json:"attemptLog"`
	}
	shownJSON := cli(t, dispatcherBin, opsEnv, "deliveries", "show", first.ID, "--json").mustSucceed(t, "deliveries show --json")
	if err := json.Unmarshal([]byte(shownJSON.stdout), &detail); err != nil {
		t.Fatalf("deliveries show --json: %v\n%s", err, shownJSON.stdout)
	}
	if detail.ID != first.ID || len(detail.AttemptLog) != 3 {
		t.Errorf("deliveries show --json: %+v", detail)
	}
	for i, a := range detail.AttemptLog {
		if a.N != i+1 || a.StatusCode == nil || *a.StatusCode != 500 {
			t.Errorf("attempt %d: n=%d status %v", i, a.N, a.StatusCode)
		}
	}

	// An unknown delivery is one clear line and exit status 1.
	missing := cli(t, dispatcherBin, opsEnv, "deliveries", "show", "dlv_does_not_exist")
	if missing.code != 1 || !strings.Contains(missing.stderr, "404") || strings.Count(strings.TrimSpace(missing.stderr), "\n") != 0 {
		t.Errorf("show of an unknown delivery: exit %d, stderr %q", missing.code, missing.stderr)
	}

	rangeArgs := []string{"replay", "--survey", survey, "--webhook", hook.ID, "--status", "failed",
		"--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano)}

	// A dry run reports the match count and changes nothing.
	dry := cli(t, dispatcherBin, opsEnv, append(rangeArgs, "--dry-run")...).mustSucceed(t, "replay --dry-run")
	if !strings.Contains(dry.stdout, fmt.Sprintf("dry run: %d deliveries match", n)) {
		t.Errorf("replay --dry-run: %q", dry.stdout)
	}
	if ds := api.deliveries(pat.Token, survey); len(ds) != n {
		t.Errorf("after the dry run the survey has %d deliveries, want %d", len(ds), n)
	}

	// The receiver now holds the replayed events, so the replay stays running while the test
	// asks for the same range again. Asked for deliveries it has already replayed, the API
	// would count none and accept a second, empty replay; a recall that fails meanwhile gives
	// the range a delivery to match, so the API refuses the overlap (409).
	rc.holdIDs.Store(&holdIDs)
	rc.mode.Store(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	follow := exec.CommandContext(ctx, dispatcherBin, rangeArgs...)
	follow.Env = envList(opsEnv)
	followOut, followErr := &syncBuffer{}, &syncBuffer{}
	follow.Stdout, follow.Stderr = followOut, followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followDone := make(chan error, 1)
	go func() { followDone <- follow.Wait() }()
	startedRe := regexp.MustCompile(fmt.Sprintf(`replay (rpl_\S+): %d deliveries match`, n))
	var replayID string
	waitFor(t, time.Minute, "the replay to start", func() bool {
		if m := startedRe.FindStringSubmatch(followOut.String()); m != nil {
			replayID = m[1]
			return true
		}
		select {
		case err := <-followDone:
			t.Fatalf("replay exited early: %v\nstdout: %s\nstderr: %s", err, followOut.String(), followErr.String())
		default:
		}
		return false
	})
	submit(n)
	waitFailed(n + 1)
	again := cli(t, dispatcherBin, opsEnv, rangeArgs...)
	if again.code != 1 || !strings.Contains(again.stderr, "409") || !strings.Contains(again.stderr, "replay_running") ||
		strings.Count(strings.TrimSpace(again.stderr), "\n") != 0 {
		t.Errorf("overlapping replay: exit %d\nstdout: %s\nstderr: %q", again.code, again.stdout, again.stderr)
	}

	// The receiver is back: the replay delivers every event and completes.
	rc.mode.Store(answerOK)
	rc.releaseHeld()
	select {
	case err := <-followDone:
		if err != nil {
			t.Fatalf("replay: %v\nstdout: %s\nstderr: %s", err, followOut.String(), followErr.String())
		}
	case <-ctx.Done():
		t.Fatalf("replay did not finish\nstdout: %s\nstderr: %s", followOut.String(), followErr.String())
	}
	progress := followOut.String()
	t.Logf("deliveries list:\n%s\ndeliveries show:\n%s\nreplay:\n%s", table.stdout, shown.stdout, progress)
	t.Logf("overlapping replay: %s", again.stderr)
	if !strings.Contains(progress, fmt.Sprintf("%d/%d done, %d enqueued, completed", n, n, n)) {
		t.Errorf("replay output lacks the completed line:\n%s", progress)
	}
	// Not a terminal: plain lines, no bar, no carriage returns.
	if strings.ContainsAny(progress, "\r\x1b") || strings.Contains(progress, "[#") || strings.Contains(progress, "[.") {
		t.Errorf("replay drew a progress bar into a pipe:\n%q", progress)
	}

	// Through the API: each delivery the replay matched has one succeeded replay, the one
	// that failed later is left alone, and the receiver got each replayed event once.
	ds := api.deliveries(pat.Token, survey)
	replays := map[string]listedDelivery{}
	var later []listedDelivery
	for _, d := range ds {
		if d.ReplayOf == "" {
			if d.Status != "failed" {
				t.Errorf("original delivery %s is %s, want it left failed", d.ID, d.Status)
			}
			if _, ok := originals[d.ID]; !ok {
				later = append(later, d)
			}
			continue
		}
		if _, ok := originals[d.ReplayOf]; !ok {
			t.Errorf("delivery %s replays %s, which was not a failed original", d.ID, d.ReplayOf)
		}
		if d.Status != "succeeded" || d.ReplayID != replayID {
			t.Errorf("replay delivery %+v, want succeeded by %s", d, replayID)
		}
		replays[d.ReplayOf] = d
	}
	if len(replays) != n || len(later) != 1 || len(ds) != 2*n+1 {
		t.Errorf("%d deliveries, %d replays, %d failed later; want %d, %d and 1", len(ds), len(replays), len(later), 2*n+1, n)
	}
	got := rc.deliveredIDs()
	for _, d := range originals {
		if got[d.EventID] != 1 {
			t.Errorf("event %s delivered %d times, want once", d.EventID, got[d.EventID])
		}
	}
	if len(got) != n {
		t.Errorf("receiver accepted %d events, want %d", len(got), n)
	}
	var view struct{ Matched, Enqueued, Done int64 }
	api.call("GET", "/api/admin/replays/"+replayID, pat.Token, nil, http.StatusOK, &view)
	if view.Matched != n || view.Enqueued != n || view.Done != n {
		t.Errorf("replay view %+v", view)
	}

	// The same range now matches only the delivery that failed later.
	empty := cli(t, dispatcherBin, opsEnv, append(rangeArgs, "--dry-run")...).mustSucceed(t, "second dry run")
	if !strings.Contains(empty.stdout, "dry run: 1 delivery matches") {
		t.Errorf("second dry run: %q", empty.stdout)
	}

	// A bad token is refused with one clear line that does not echo it, from the environment
	// and from the flag alike.
	const badToken = "d24pat_thisIsNotAValidTokenButLooksLikeOne0123456789abc"
	for name, run := range map[string]func() cliResult{
		"env": func() cliResult {
			return cli(t, dispatcherBin, map[string]string{"DISPATCH24_API_URL": base, "DISPATCH24_TOKEN": badToken}, "deliveries", "list")
		},
		"flag": func() cliResult {
			return cli(t, dispatcherBin, map[string]string{"DISPATCH24_API_URL": base}, "replay", "--token", badToken, "--since", "1h")
		},
	} {
		res := run()
		line := strings.TrimSpace(res.stderr)
		t.Logf("bad token (%s): %s", name, line)
		if res.code != 1 || !strings.Contains(line, "401") || strings.Contains(line, "\n") {
			t.Errorf("bad token (%s): exit %d, stderr %q", name, res.code, res.stderr)
		}
		if strings.Contains(res.stderr+res.stdout, badToken) || strings.Contains(res.stderr+res.stdout, badToken[7:]) {
			t.Errorf("bad token (%s): the token appears in the output: %q %q", name, res.stdout, res.stderr)
		}
	}
	// The real token never shows in anything the commands printed.
	for _, r := range []cliResult{out, table, shown, shownJSON, missing, dry, again, empty} {
		if strings.Contains(r.stdout+r.stderr, pat.Token) {
			t.Errorf("the token appears in the output of a command")
		}
	}
	if strings.Contains(progress+followErr.String(), pat.Token) {
		t.Errorf("the token appears in the replay's output")
	}

	// On a terminal the replay draws a progress bar instead: util-linux script(1) gives it a
	// pseudo-terminal. This replays the succeeded replays, so it comes after the counts.
	scriptBin, err := exec.LookPath("script")
	if runtime.GOOS != "linux" || err != nil {
		t.Log("no util-linux script(1): progress bar on a terminal not checked")
		return
	}
	ttyArgs := []string{dispatcherBin, "replay", "--survey", survey, "--status", "succeeded",
		"--since", since.Format(time.RFC3339Nano), "--until", time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)}
	for i, a := range ttyArgs {
		ttyArgs[i] = "'" + a + "'"
	}
	ttyCtx, ttyCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ttyCancel()
	tty := exec.CommandContext(ttyCtx, scriptBin, "-qec", strings.Join(ttyArgs, " "), os.DevNull)
	tty.Env = append(envList(opsEnv), "SHELL=/bin/sh", "PATH="+os.Getenv("PATH"))
	ttyOut, err := tty.CombinedOutput()
	if err != nil {
		t.Fatalf("replay on a terminal: %v\n%q", err, ttyOut)
	}
	bar := fmt.Sprintf("\r\x1b[K[##############################] %d/%d done, %d enqueued, completed", n, n, n)
	if !bytes.Contains(ttyOut, []byte(bar)) {
		t.Errorf("replay on a terminal: no completed progress bar %q in\n%q", bar, ttyOut)
	}
	if bytes.Contains(ttyOut, []byte(pat.Token)) {
		t.Errorf("the token appears in the replay's terminal output")
	}
}
