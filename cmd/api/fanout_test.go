package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/openapi/openapitest"
	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// CONTRACT §8 "Delivery semantics": a webhook whose 201 came before a submission gets that
// submission's event, on every replica, every time; after a PATCH, DELETE or disable has
// answered, later events follow the new settings. These tests drive the real API (with its
// in-process dispatcher) and count at a real receiver.

const (
	fanoutAdmin    = "fanout@example.org"
	fanoutPassword = "correct horse battery"
	fanoutRounds   = 50
)

// submissionReceiver records, per request path, the submissionIds of the events it got.
type submissionReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]map[string]bool // path → submissionId → true
}

func newSubmissionReceiver(t *testing.T) *submissionReceiver {
	t.Helper()
	rc := &submissionReceiver{got: map[string]map[string]bool{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			SubmissionID string `json:"submissionId"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		if rc.got[r.URL.Path] == nil {
			rc.got[r.URL.Path] = map[string]bool{}
		}
		rc.got[r.URL.Path][ev.SubmissionID] = true
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *submissionReceiver) has(path, submissionID string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[path][submissionID]
}

// fanoutEnv is the environment of an API whose deliveries may go to 127.0.0.1, retried soon.
func fanoutEnv(t *testing.T, extra map[string]string) map[string]string {
	env := map[string]string{
		"DATA_DIR": t.TempDir(), "ADMIN_EMAIL": fanoutAdmin, "ADMIN_PASSWORD": fanoutPassword,
		"WEBHOOK_ALLOW_NETS": "127.0.0.0/8", "WEBHOOK_RETRY_SCHEDULE": "0s,1s,1s,1s,1s",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// fanoutSurvey creates a survey and a respondent through base and returns the admin's and the
// respondent's access tokens.
func fanoutSurvey(t *testing.T, base, survey string) (admin, respondent string) {
	t.Helper()
	admin = adminToken(t, base, fanoutAdmin, fanoutPassword)
	if code := apiCall(t, "POST", base+"/api/admin/surveys", admin, map[string]any{"id": survey, "name": survey}, nil); code != 201 {
		t.Fatalf("create survey %d", code)
	}
	var r struct{ AuthToken string }
	if code := apiCall(t, "POST", base+"/api/admin/surveys/"+survey+"/respondents", admin, map[string]any{"username": "r1"}, &r); code != 201 {
		t.Fatalf("create respondent %d", code)
	}
	var rt struct{ RefreshToken string }
	if code := apiCall(t, "POST", base+"/api/signin/token/"+r.AuthToken, "", nil, &rt); code != 200 {
		t.Fatalf("respondent sign-in %d", code)
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
		t.Fatalf("respondent refresh %d", resp.StatusCode)
	}
	return admin, at.AccessToken
}

// addWebhook registers url for the survey's submissions and returns its id.
func addWebhook(t *testing.T, base, admin, survey, url string) string {
	t.Helper()
	var hook struct{ ID string }
	if code := apiCall(t, "POST", base+"/api/admin/surveys/"+survey+"/webhooks", admin, map[string]any{"url": url}, &hook); code != 201 {
		t.Fatalf("create webhook %d", code)
	}
	return hook.ID
}

// submit posts a recall and returns its submissionId.
func submit(t *testing.T, base, respondent, survey string) string {
	t.Helper()
	recall := map[string]any{"startTime": "2026-11-30T08:00:00Z", "endTime": "2026-11-30T08:20:00Z",
		"meals": []any{map[string]any{"name": "Breakfast", "foods": []any{map[string]any{"code": "TOAST"}}}}}
	var sub struct{ SubmissionID string }
	if code := apiCall(t, "POST", base+"/api/surveys/"+survey+"/submission", respondent, recall, &sub); code != 201 {
		t.Fatalf("submit %d", code)
	}
	return sub.SubmissionID
}

// waitUntil polls cond until it holds, failing after a generous deadline (a correctness wait,
// not a timing claim).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// registerThenSubmit registers a webhook and at once submits, fanoutRounds times, going round
// the replicas (register on one, submit on the next), then checks that every submission's
// event reached the webhook registered just before it. Then it unsubscribes, deletes and
// disables webhooks and checks that submissions made afterwards do not reach them.
func registerThenSubmit(t *testing.T, replicas []string) {
	rc := newSubmissionReceiver(t)
	const survey = "fanout"
	admin, respondent := fanoutSurvey(t, replicas[0], survey)
	at := func(i int) string { return replicas[i%len(replicas)] }

	subs := make([]string, fanoutRounds)
	for i := range subs {
		addWebhook(t, at(i), admin, survey, fmt.Sprintf("%s/round-%d", rc.URL, i))
		subs[i] = submit(t, at(i+1), respondent, survey)
	}
	for i, sub := range subs {
		path := fmt.Sprintf("/round-%d", i)
		waitUntil(t, fmt.Sprintf("submission %d at the webhook registered just before it", i), func() bool {
			return rc.has(path, sub)
		})
	}

	// PATCH events, DELETE, PATCH disabled: submissions after the answers do not reach them;
	// /kept, unchanged, shows when they have been dispatched.
	hooks := map[string]string{}
	for _, name := range []string{"unsubscribed", "deleted", "disabled", "kept"} {
		hooks[name] = addWebhook(t, at(0), admin, survey, rc.URL+"/"+name)
	}
	first := submit(t, at(1), respondent, survey)
	for name := range hooks {
		waitUntil(t, name+" gets the submission made before the changes", func() bool { return rc.has("/"+name, first) })
	}
	base := at(0) + "/api/admin/surveys/" + survey + "/webhooks/"
	if code := apiCall(t, "PATCH", base+hooks["unsubscribed"], admin, map[string]any{"events": []string{"survey.session.started"}}, nil); code != 200 {
		t.Fatalf("PATCH events %d", code)
	}
	if code := apiCall(t, "DELETE", base+hooks["deleted"], admin, nil, nil); code != 204 {
		t.Fatalf("DELETE %d", code)
	}
	if code := apiCall(t, "PATCH", base+hooks["disabled"], admin, map[string]any{"disabled": true}, nil); code != 200 {
		t.Fatalf("PATCH disabled %d", code)
	}
	later := []string{submit(t, at(1), respondent, survey), submit(t, at(2), respondent, survey)}
	for _, sub := range later {
		waitUntil(t, "the unchanged webhook gets the later submissions", func() bool { return rc.has("/kept", sub) })
	}
	for _, name := range []string{"unsubscribed", "deleted", "disabled"} {
		for _, sub := range later {
			if rc.has("/"+name, sub) {
				t.Errorf("the %s webhook got a submission made after its change answered", name)
			}
		}
	}
}

func TestRegisterThenSubmitSQLite(t *testing.T) {
	t.Parallel()
	p := runtest.Start(t, run, fanoutEnv(t, nil))
	registerThenSubmit(t, []string{p.URL})
}

func TestRegisterThenSubmitPostgres(t *testing.T) {
	t.Parallel()
	p := runtest.Start(t, run, fanoutEnv(t, map[string]string{
		"DATABASE_URL": storetest.PostgresURL(t), "TOKEN_SECRET": strings.Repeat("k", 40), "SECRETS_KEY": testSecretsKey,
	}))
	registerThenSubmit(t, []string{p.URL})
}

// Two API replicas, each with its dispatcher, over one PostgreSQL and one NATS: webhooks are
// registered on one and submissions made on the other, and either dispatcher may take an
// event.
func TestRegisterThenSubmitTwoReplicas(t *testing.T) {
	t.Parallel()
	ns, err := embeddednats.Start(embeddednats.Config{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	shared := map[string]string{
		"DATABASE_URL": storetest.PostgresURL(t), "TOKEN_SECRET": strings.Repeat("k", 40), "SECRETS_KEY": testSecretsKey,
		"NATS_URL": ns.ClientURL(), "DISPATCH_IN_PROCESS": "true",
	}
	a := runtest.Start(t, run, fanoutEnv(t, shared))
	b := runtest.Start(t, run, fanoutEnv(t, shared))
	registerThenSubmit(t, []string{a.URL, b.URL})
}
