package opscli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

const testToken = "d24pat_opscli_test_token_0123456789"

// tokenAuth lets testToken in as an admin: the API's own authenticator needs the whole auth
// service, which these tests of the command line's messages do not exercise.
type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	if r.Header.Get("X-Auth-Token") != testToken {
		return nil, httpapi.Unauthorized("unauthenticated", "bad token")
	}
	return &httpapi.Principal{UserID: "u-admin", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleAdmin}}, nil
}

// apiFixture serves the real deliveries routes over a SQLite store on 127.0.0.1, with survey
// s1, webhook wh1 and n failed deliveries created a minute apart, ending a minute ago.
func apiFixture(t *testing.T, n int) func(args ...string) (stdout, stderr string, err error) {
	t.Helper()
	db := storetest.SQLite(t)
	ctx := context.Background()
	now := time.Now()
	us := store.Micros(now)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s1', 's1', $1, $1)`, us)
	mustExec(`INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
		VALUES ('wh1', 's1', 'https://wh1.example/hook', 'survey.session.submitted', 'whsec_x', $1, $1)`, us)
	for i := range n {
		at := store.Micros(now.Add(-time.Duration(n-i) * time.Minute))
		mustExec(`INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
			last_status_code, last_error, created_at, updated_at)
			VALUES ($1, $2, 'wh1', 's1', 'survey.session.submitted', 'https://wh1.example/hook', 'failed', 3, 500, '', $3, $3)`,
			fmt.Sprintf("dlv_t%04d", i), fmt.Sprintf("evt_t%04d", i), at)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := delivery.NewService(delivery.Config{DB: db, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(tokenAuth{}, logger)
	svc.Register(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	env := map[string]string{"DISPATCH24_API_URL": srv.URL, "DISPATCH24_TOKEN": testToken}
	return func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := Run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
		return out.String(), errOut.String(), err
	}
}

// TestListSaysWhenNothingMatches: an empty listing says so instead of printing a bare header.
func TestListSaysWhenNothingMatches(t *testing.T) {
	t.Parallel()
	cli := apiFixture(t, 2)
	out, errOut, err := cli("deliveries", "list", "--survey", "s1", "--status", "succeeded")
	if err != nil || out != "" || strings.TrimSpace(errOut) != "no deliveries match" {
		t.Fatalf("empty list: %v, stdout %q, stderr %q", err, out, errOut)
	}
	// --json prints nothing on stdout either.
	out, errOut, err = cli("deliveries", "list", "--status", "pending", "--json")
	if err != nil || out != "" || !strings.Contains(errOut, "no deliveries match") {
		t.Fatalf("empty list --json: %v, stdout %q, stderr %q", err, out, errOut)
	}
}

// TestListHintsAtMoreRows: a listing cut by --limit says how to get the rest, and the
// cursor it prints gives the next page.
func TestListHintsAtMoreRows(t *testing.T) {
	t.Parallel()
	cli := apiFixture(t, 5)
	out, errOut, err := cli("deliveries", "list", "--limit", "2")
	if err != nil || strings.Count(out, "dlv_t") != 2 || !strings.Contains(errOut, "more rows: use --all") {
		t.Fatalf("limited list: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	_, cursor, ok := strings.Cut(strings.TrimSpace(errOut), "--cursor ")
	cursor, _, _ = strings.Cut(cursor, " ")
	if !ok || cursor == "" {
		t.Fatalf("no cursor in %q", errOut)
	}
	out, errOut, err = cli("deliveries", "list", "--limit", "2", "--cursor", cursor)
	if err != nil || !strings.Contains(out, "dlv_t0002") || !strings.Contains(out, "dlv_t0001") || strings.Contains(out, "dlv_t0004") {
		t.Fatalf("next page: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	// The last page and --all say nothing more.
	out, errOut, err = cli("deliveries", "list", "--limit", "2", "--all")
	if err != nil || strings.Count(out, "dlv_t") != 5 || errOut != "" {
		t.Fatalf("--all: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
}

// TestReplayStatusMessages: replaying pending deliveries is refused before the API is asked,
// in words; list accepts pending; an unknown status names the choices.
func TestReplayStatusMessages(t *testing.T) {
	t.Parallel()
	cli := apiFixture(t, 1)
	_, errOut, err := cli("replay", "--since", "24h", "--status", "pending")
	if !errors.Is(err, ErrUsage) || !strings.Contains(errOut, "pending deliveries are still being attempted and cannot be replayed; choose from failed, skipped, succeeded") {
		t.Fatalf("replay --status pending: %v\n%s", err, errOut)
	}
	if _, errOut, err := cli("deliveries", "list", "--status", "pending"); err != nil {
		t.Fatalf("list --status pending: %v\n%s", err, errOut)
	}
	_, errOut, err = cli("deliveries", "list", "--status", "faild")
	if !errors.Is(err, ErrUsage) || !strings.Contains(errOut, `"faild" is not a delivery status; choose from pending, succeeded, failed, skipped`) {
		t.Fatalf("list --status faild: %v\n%s", err, errOut)
	}
}

// TestDryRunSaysTheDefaultStatus: without --status a dry run says it counted failed
// deliveries by default; with it, it does not.
func TestDryRunSaysTheDefaultStatus(t *testing.T) {
	t.Parallel()
	cli := apiFixture(t, 3)
	out, _, err := cli("replay", "--since", "24h", "--dry-run")
	if err != nil || strings.TrimSpace(out) != "dry run: 3 deliveries match (status=failed, the default; --status chooses others); nothing was replayed" {
		t.Fatalf("dry run: %v %q", err, out)
	}
	out, _, err = cli("replay", "--since", "24h", "--dry-run", "--status", "failed,skipped")
	if err != nil || strings.TrimSpace(out) != "dry run: 3 deliveries match; nothing was replayed" {
		t.Fatalf("dry run with --status: %v %q", err, out)
	}
}

// TestAPIRefusalIsOneLine: an API refusal names the request and the field, with advice for
// a bad token, and never the token.
func TestAPIRefusalIsOneLine(t *testing.T) {
	t.Parallel()
	cli := apiFixture(t, 1)
	_, _, err := cli("deliveries", "list", "--type", "no.such.type")
	if err == nil || !strings.Contains(err.Error(), "GET /api/admin/deliveries: the API answered 400 validation_failed") ||
		!strings.Contains(err.Error(), "type: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("bad type: %v", err)
	}
	_, _, err = cli("deliveries", "show", "dlv_t0000", "--token", "d24pat_wrong_but_long_enough")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "check the personal access token") ||
		strings.Contains(err.Error(), "d24pat_wrong") {
		t.Fatalf("bad token: %v", err)
	}
}
