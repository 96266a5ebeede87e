package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The callers of the test authenticator, named by the X-Test-As header.
const (
	asAdmin      = "admin"
	asStaff      = "staff"    // staff assigned to s1
	asStranger   = "stranger" // staff assigned to nothing
	asRespondent = "respondent"
)

type testAuth struct{}

func (testAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	switch r.Header.Get("X-Test-As") {
	case asAdmin:
		return &httpapi.Principal{UserID: "u-admin", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleAdmin}}, nil
	case asStaff:
		return &httpapi.Principal{UserID: "u-staff", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleStaff}, Surveys: []string{"s1"}}, nil
	case asStranger:
		return &httpapi.Principal{UserID: "u-stranger", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleStaff}}, nil
	case asRespondent:
		return &httpapi.Principal{UserID: "u-resp", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "s1"}, nil
	}
	return nil, nil
}

// t0 is the start of the seeded history.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type bundle struct {
	db       *store.DB
	svc      *delivery.Service
	replayer *delivery.Replayer
	rt       *httpapi.Router
}

// setup seeds surveys s1 and s2 and webhooks wh1, wh2 (s1) and wh3 (s2), and returns the
// routes over db with a Replayer of the given batch size (not running).
func setup(t testing.TB, db *store.DB, batch int) *bundle {
	t.Helper()
	ctx := context.Background()
	now := store.Micros(time.Now())
	for _, s := range []string{"s1", "s2"} {
		if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $1, $2, $2)`, s, now); err != nil {
			t.Fatalf("seeding survey: %v", err)
		}
	}
	for _, w := range [][2]string{{"wh1", "s1"}, {"wh2", "s1"}, {"wh3", "s2"}} {
		if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
			VALUES ($1, $2, $3, 'survey.session.submitted', 'whsec_x', $4, $4)`, w[0], w[1], "https://"+w[0]+".example/hook", now); err != nil {
			t.Fatalf("seeding webhook: %v", err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rp, err := delivery.NewReplayer(delivery.ReplayerConfig{DB: db, BatchSize: batch, Logger: logger, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := delivery.NewService(delivery.Config{DB: db, Replayer: rp, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(testAuth{}, logger)
	svc.Register(rt)
	return &bundle{db: db, svc: svc, replayer: rp, rt: rt}
}

// row is a seeded delivery.
type row struct {
	id, event, webhook, survey, typ, status string
	created                                 time.Time
	replayOf                                string
}

const seedColumns = 14

// insert writes rows as the dispatch engine would have.
func insert(t testing.TB, db *store.DB, rows []row) {
	t.Helper()
	ctx := context.Background()
	for len(rows) > 0 {
		// SQLite looks $N parameters up linearly: keep statements to about 1,000 of them.
		n := min(len(rows), 70)
		args := make([]any, 0, n*seedColumns)
		for _, r := range rows[:n] {
			var next, code any
			if r.status == delivery.StatusPending {
				next = store.Micros(r.created.Add(time.Minute))
			}
			if r.status == delivery.StatusFailed {
				code = 500
			}
			var replayOf any
			if r.replayOf != "" {
				replayOf = r.replayOf
			}
			us := store.Micros(r.created)
			args = append(args, r.id, r.event, r.webhook, r.survey, r.typ, "https://"+r.webhook+".example/old",
				r.status, 1, code, "", next, replayOf, us, us)
		}
		_, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
			last_status_code, last_error, next_attempt_at, replay_of, created_at, updated_at) VALUES `+
			store.Placeholders(n, seedColumns, 1), args...)
		if err != nil {
			t.Fatalf("seeding deliveries: %v", err)
		}
		rows = rows[n:]
	}
}

// failedRows returns n failed deliveries of webhook (in survey) a minute apart from start.
func failedRows(prefix, webhook, survey string, n int, start time.Time) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{
			id: fmt.Sprintf("dlv_%s_%05d", prefix, i), event: fmt.Sprintf("evt_%s_%05d", prefix, i),
			webhook: webhook, survey: survey, typ: "survey.session.submitted", status: delivery.StatusFailed,
			created: start.Add(time.Duration(i) * time.Minute),
		}
	}
	return out
}

// do sends a request as who and returns the status, the decoded JSON object and the raw body.
func (b *bundle) do(t testing.TB, who, method, path string, body any) (int, map[string]any, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-As", who)
	}
	rec := httptest.NewRecorder()
	b.rt.ServeHTTP(rec, req)
	raw := rec.Body.Bytes()
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return rec.Code, out, raw
}

func fieldErrors(out map[string]any) []string {
	var fields []string
	errs, _ := out["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		fields = append(fields, f)
	}
	return fields
}

func expectValidation(t testing.TB, code int, out map[string]any, field string) {
	t.Helper()
	if code != http.StatusBadRequest || out["code"] != "validation_failed" {
		t.Fatalf("want 400 validation_failed on %s, got %d %v", field, code, out)
	}
	for _, f := range fieldErrors(out) {
		if f == field {
			return
		}
	}
	t.Fatalf("want an error on %q, got %v", field, out["errors"])
}

func count(t testing.TB, db *store.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
