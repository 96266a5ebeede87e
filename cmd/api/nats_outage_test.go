package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// metric returns the value of an unlabelled series on /metrics (-1 when absent).
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

func waitWithin(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// respondent signs in as a respondent of a new survey and returns a submitter.
func respondent(t *testing.T, base, email, password string) func() int {
	t.Helper()
	admin := adminToken(t, base, email, password)
	if code := apiCall(t, "POST", base+"/api/admin/surveys", admin, map[string]any{"id": "outage", "name": "Outage"}, nil); code != 201 {
		t.Fatalf("create survey %d", code)
	}
	if code := apiCall(t, "POST", base+"/api/admin/surveys/outage/respondents", admin,
		map[string]any{"username": "r1", "password": "correct horse battery"}, nil); code != 201 {
		t.Fatalf("create respondent %d", code)
	}
	var rt struct{ RefreshToken string }
	if code := apiCall(t, "POST", base+"/api/signin/alias", "",
		map[string]any{"surveyId": "outage", "userName": "r1", "password": "correct horse battery"}, &rt); code != 200 {
		t.Fatalf("respondent sign-in %d", code)
	}
	req, _ := http.NewRequest("POST", base+"/api/refresh", nil)
	req.Header.Set("X-Auth-Token", rt.RefreshToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok, _, _ := strings.Cut(strings.TrimPrefix(string(raw), `{"accessToken":"`), `"`)
	n := 0
	return func() int {
		n++
		body := map[string]any{"startTime": "2026-11-30T08:00:00Z", "endTime": "2026-11-30T08:20:00Z",
			"meals": []any{map[string]any{"name": fmt.Sprintf("Meal %d", n), "foods": []any{map[string]any{"code": "TOAST"}}}}}
		return apiCall(t, "POST", base+"/api/surveys/outage/submission", tok, body, nil)
	}
}

// The api starts and serves while NATS is down, is ready (the store answers) with NATS's
// state in the body and in dispatch24_nats_connected, accepts submissions into the outbox,
// and publishes them as soon as NATS comes back — also when it comes back with an empty
// store, the stream then being created again.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			n := outboxtest.Start(t)
			n.Stop()
			env := map[string]string{
				"DATA_DIR": t.TempDir(), "NATS_URL": n.URL(),
				"ADMIN_EMAIL": "ops@example.org", "ADMIN_PASSWORD": "correct horse battery",
			}
			if db == "postgres" {
				env["DATABASE_URL"] = storetest.PostgresURL(t)
				env["TOKEN_SECRET"] = strings.Repeat("k", 40)
				env["SECRETS_KEY"] = testSecretsKey
			}
			p := runtest.Start(t, run, env)

			code, body := getJSON(t, p.URL+"/readyz")
			checks, _ := body["checks"].(map[string]any)
			if code != 200 || body["status"] != "degraded" || checks["store"] != "ok" || checks["nats"] != "connecting" {
				t.Fatalf("readyz with NATS down: %d %v", code, body)
			}
			if v := metric(t, p.URL, "dispatch24_nats_connected"); v != 0 {
				t.Fatalf("dispatch24_nats_connected = %v with NATS down", v)
			}
			submit := respondent(t, p.URL, env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
			for i := 0; i < 5; i++ {
				if code := submit(); code != 201 {
					t.Fatalf("submission %d with NATS down: %d", i, code)
				}
			}
			if v := metric(t, p.URL, "dispatch24_outbox_backlog"); v < 5 {
				t.Fatalf("outbox backlog %v, want at least 5", v)
			}

			n.Restart()
			restarted := time.Now()
			waitWithin(t, 30*time.Second, "the outbox to drain", func() bool { return metric(t, p.URL, "dispatch24_outbox_backlog") == 0 })
			t.Logf("outbox drained %s after NATS started again (its reconnect included)", time.Since(restarted).Round(time.Millisecond))
			if got := len(n.Messages(t)); got < 5 {
				t.Fatalf("stream holds %d messages, want the 5 submissions' events", got)
			}
			waitWithin(t, 10*time.Second, "NATS ready", func() bool {
				_, body := getJSON(t, p.URL+"/readyz")
				return body["status"] == "ok"
			})
			if c, r := metric(t, p.URL, "dispatch24_nats_connected"), metric(t, p.URL, "dispatch24_nats_ready"); c != 1 || r != 1 {
				t.Fatalf("dispatch24_nats_connected %v, dispatch24_nats_ready %v with NATS up", c, r)
			}

			// Back with an empty store: the api creates the stream again and publishes.
			n.Stop()
			waitWithin(t, 10*time.Second, "the api to notice", func() bool { return metric(t, p.URL, "dispatch24_nats_connected") == 0 })
			for i := 0; i < 3; i++ {
				if code := submit(); code != 201 {
					t.Fatalf("submission %d with NATS down again: %d", i, code)
				}
			}
			n.RestartEmpty()
			waitWithin(t, 30*time.Second, "the outbox to drain after an empty restart", func() bool {
				return metric(t, p.URL, "dispatch24_outbox_backlog") == 0
			})
			if got := len(n.Messages(t)); got < 3 {
				t.Fatalf("new stream holds %d messages, want the 3 submissions' events", got)
			}
			if err := p.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if logs := p.Stderr.String(); strings.Contains(logs, "level=ERROR") {
				t.Errorf("errors logged:\n%s", logs)
			}
		})
	}
}
