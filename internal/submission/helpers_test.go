package submission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/submission"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// tokenAuth is the tests' Authenticator: X-Auth-Token names a principal directly.
type tokenAuth map[string]*httpapi.Principal

func (a tokenAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return nil, nil
	}
	p, ok := a[tok]
	if !ok {
		return nil, httpapi.Unauthorized("invalid_token", "unknown token")
	}
	return p, nil
}

// Respondents of the fixture: alice and bob answer survey-a (which redirects with the
// respondent's "pid" custom field), carol answers survey-b (no redirect).
var principals = tokenAuth{
	"alice": {UserID: "u-alice", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "survey-a", Username: "alice"},
	"bob":   {UserID: "u-bob", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "survey-a", Username: "bob"},
	"carol": {UserID: "u-carol", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "survey-b", Username: "carol"},
	"admin": {UserID: "g-admin", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleAdmin}, Username: "admin@localhost"},
	// dave's account is disabled; ghost's was deleted after the token was issued.
	"dave":  {UserID: "u-dave", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "survey-a", Username: "dave"},
	"ghost": {UserID: "u-ghost", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "survey-a", Username: "ghost"},
}

type bundle struct {
	db      *store.DB
	nats    *outboxtest.NATS
	relay   *outbox.Relay
	svc     *submission.Service
	metrics *telemetry.Metrics
	url     string
}

func setup(t *testing.T, db *store.DB) *bundle {
	t.Helper()
	seed(t, db)
	b := &bundle{db: db, nats: outboxtest.Start(t), metrics: telemetry.NewMetrics()}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	b.relay, err = outbox.New(outbox.Config{DB: db, JS: b.nats.JS, Metrics: b.metrics, Logger: logger,
		SweepInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.svc, err = submission.New(submission.Config{DB: db, Outbox: b.relay, Metrics: b.metrics, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = b.relay.Run(ctx)
	}()
	rt := httpapi.NewRouter(principals, logger)
	b.svc.Register(rt)
	srv := httptest.NewServer(httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger, Metrics: b.metrics}, rt))
	b.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wg.Wait()
	})
	return b
}

func seed(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	now := store.Micros(time.Now())
	for _, s := range []struct{ id, url, ident string }{
		{"survey-a", "https://example.org/done?pid={identifier}", "pid"},
		{"survey-b", "", ""},
	} {
		if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, redirect_url, redirect_identifier, created_at, updated_at)
			VALUES ($1, $1, $2, $3, $4, $4)`, s.id, s.url, s.ident, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range []string{"alice", "bob", "carol", "dave"} {
		p := principals[tok]
		fields := `[{"name":"pid","value":"P ` + tok + `&1"}]`
		if _, err := db.Exec(ctx, `INSERT INTO respondents (id, survey_id, username, auth_token, custom_fields, disabled, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, p.UserID, p.SurveyID, p.Username, "auth-"+tok, []byte(fields), tok == "dave", now); err != nil {
			t.Fatal(err)
		}
	}
}

// recall returns a valid recall with the given sessionId ("" for none).
func recall(sessionID string) string {
	s := `{"startTime":"2026-11-23T08:00:00Z", "endTime":"2026-11-23T08:30:00Z",`
	if sessionID != "" {
		s += `"sessionId":"` + sessionID + `",`
	}
	return s + ` "meals":[{"name":"Breakfast","foods":[{"code":"TOAST","note":"<&>"}]}], "extra": {"kept":  true}}`
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (b *bundle) do(t testing.TB, method, path, token string, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, body: buf.Bytes(), header: res.Header}
}

func (b *bundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *bundle) waitPublished(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.count(t, "SELECT count(*) FROM events WHERE published_at IS NULL") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("events not published")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
