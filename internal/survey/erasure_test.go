package survey

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// seedSeq numbers the seeded events.
var seedSeq atomic.Int64

// erasureSeed is what seedRespondent recorded about one respondent.
type erasureSeed struct {
	userID, username string
	// marker is a string that appears only in the respondent's recall and envelopes.
	marker   string
	eventIDs []string
}

// seedRespondent creates a respondent of surveyID through the API and records for it, through
// the store's families as the intake does, a refresh token, an open session, a submission
// and their events (with the recall's marker in the envelopes).
func (f *fixture) seedRespondent(surveyID, username string) erasureSeed {
	f.t.Helper()
	ctx := f.t.Context()
	r := f.do("POST", "/api/admin/surveys/"+surveyID+"/respondents", "admin", map[string]any{"username": username, "password": "pw-123456"})
	expect(f.t, r, http.StatusCreated, "")
	s := erasureSeed{userID: r.json(f.t)["userId"].(string), username: username, marker: "recall-of-" + username}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := f.db.Driver.Accounts().InsertRefreshToken(ctx, store.RefreshToken{JTI: "jti-" + username, UserID: s.userID,
		Kind: store.AccountRespondent, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		f.t.Fatal(err)
	}
	sub := f.db.Driver.Submissions()
	if err := sub.OpenSession(ctx, "ses_"+username, surveyID, s.userID, now); err != nil {
		f.t.Fatal(err)
	}
	envelope := func(evID, typ string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"type":%q,"surveyId":%q,"userId":%q,"username":%q,"data":{"recall":%q}}`,
			evID, typ, surveyID, s.userID, username, s.marker)
	}
	// Event ids do not name the respondent: erased events keep their rows and ids.
	n := seedSeq.Add(1)
	startID, subEventID := fmt.Sprintf("evt_%d_start", n), fmt.Sprintf("evt_%d_sub", n)
	started := store.Event{ID: startID, Type: "survey.session.started", SurveyID: surveyID, UserID: s.userID,
		Subject: "dispatch24.events." + surveyID + ".survey.session.started", CreatedAt: now,
		Payload: envelope(startID, "survey.session.started"),
		Trace:   map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	if err := f.db.Driver.Events().Insert(ctx, time.Time{}, []store.Event{started}); err != nil {
		f.t.Fatal(err)
	}
	subID := "sub_" + username
	b := &store.SubmissionBatch{Items: []store.SubmissionItem{{
		Submission: store.Submission{ID: subID, SurveyID: surveyID, UserID: s.userID, IdempotencyKey: "k",
			Body: fmt.Appendf(nil, `{"id":%q,"recall":%q}`, subID, s.marker), SubmittedAt: now},
		Event: store.Event{ID: subEventID, Type: "survey.session.submitted", SurveyID: surveyID, UserID: s.userID,
			Subject: "dispatch24.events." + surveyID + ".survey.session.submitted", CreatedAt: now,
			Payload: envelope(subEventID, "survey.session.submitted")},
	}}}
	if err := sub.Commit(ctx, b); err != nil || !b.Items[0].Created {
		f.t.Fatalf("committing the submission: %v (created %v)", err, b.Items[0].Created)
	}
	if err := f.db.Driver.Events().MarkPublished(ctx, now, []string{started.ID}); err != nil {
		f.t.Fatal(err)
	}
	s.eventIDs = []string{startID, subEventID}
	return s
}

// seedWebhook stores a webhook of surveyID.
func (f *fixture) seedWebhook(surveyID, id string) {
	f.t.Helper()
	now := store.Micros(time.Now())
	if _, err := f.db.Exec(f.t.Context(), `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
		VALUES ($1, $2, 'https://receiver.example.org/hook', 'survey.session.submitted', 'whsec_x', $3, $3)`, id, surveyID, now); err != nil {
		f.t.Fatal(err)
	}
}

// seedDelivery stores a delivery of an event of surveyID to webhookID with one attempt, and a
// range replay of the survey.
func (f *fixture) seedDelivery(surveyID, webhookID, eventID, id string) store.Delivery {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	d := store.Delivery{ID: id, EventID: eventID, WebhookID: webhookID, SurveyID: surveyID, Type: "survey.session.submitted",
		URL: "https://receiver.example.org/hook", Status: store.DeliveryFailed, Attempts: 1, LastStatusCode: 500,
		CreatedAt: now, UpdatedAt: now}
	err := f.db.Driver.Deliveries().Insert(f.t.Context(), &d, []store.Attempt{{DeliveryID: id, N: 1, StartedAt: now,
		Duration: time.Millisecond, StatusCode: 500, Error: "http_500", ResponseBody: "receiver said no"}})
	if err != nil {
		f.t.Fatal(err)
	}
	rp := &store.ReplayRecord{ID: "rpl_" + id, Filter: fmt.Appendf(nil, `{"surveyId":%q,"status":["failed"]}`, surveyID),
		FilterKey: "key-" + id, Status: store.ReplayCompleted, CreatedAt: now, UpdatedAt: now}
	if err := f.db.Driver.Deliveries().InsertReplay(f.t.Context(), rp); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// tableColumns lists every table of the schema with its columns, from the database's catalog,
// so that a table a later migration adds is searched too.
func tableColumns(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	ctx := t.Context()
	var tablesQ, columnsQ string
	switch db.Dialect {
	case store.Postgres:
		tablesQ = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
		columnsQ = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`
	default:
		tablesQ = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
		columnsQ = `SELECT name FROM pragma_table_info($1)`
	}
	read := func(q string, args ...any) []string {
		rows, err := db.Query(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := map[string][]string{}
	for _, tbl := range read(tablesQ) {
		out[tbl] = read(columnsQ, tbl)
	}
	if len(out) < 15 {
		t.Fatalf("read %d tables from the catalog: %v", len(out), out)
	}
	return out
}

// traces returns, for every table, the rows in which any column (as text) contains one of
// markers: "table: n rows".
func traces(t *testing.T, db *store.DB, markers ...string) []string {
	t.Helper()
	var found []string
	for tbl, cols := range tableColumns(t, db) {
		var conds []string
		var args []any
		for _, c := range cols {
			for _, m := range markers {
				args = append(args, "%"+m+"%")
				conds = append(conds, fmt.Sprintf("CAST(%s AS TEXT) LIKE $%d", c, len(args)))
			}
		}
		var n int
		if err := db.QueryRow(t.Context(), "SELECT count(*) FROM "+tbl+" WHERE "+strings.Join(conds, " OR "), args...).Scan(&n); err != nil {
			t.Fatalf("searching %s: %v", tbl, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s: %d rows", tbl, n))
		}
	}
	sort.Strings(found)
	return found
}

// liveRefreshTokens counts the refresh tokens of userID that still work.
func liveRefreshTokens(t *testing.T, db *store.DB, userID string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(t.Context(), `SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL`, userID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Deleting a survey leaves no row anywhere that names it, its respondents or their data, so a
// survey created again under the same id starts empty; other surveys keep everything.
func TestDeleteSurveyErasesEverything(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("erase-me", nil)
		f.createSurvey("keep-me", nil)
		gone := []erasureSeed{f.seedRespondent("erase-me", "alice-erased"), f.seedRespondent("erase-me", "bob-erased")}
		kept := f.seedRespondent("keep-me", "carol-kept")
		f.seedWebhook("erase-me", "wh_erased")
		f.seedWebhook("keep-me", "wh_kept")
		old := f.seedDelivery("erase-me", "wh_erased", gone[0].eventIDs[1], "dlv_erased")
		f.seedDelivery("keep-me", "wh_kept", kept.eventIDs[1], "dlv_kept")

		markers := []string{"erase-me", "wh_erased", "dlv_erased"}
		for _, s := range gone {
			markers = append(markers, s.userID, s.username, s.marker)
		}
		if got := traces(t, db, markers...); len(got) < 6 {
			t.Fatalf("the seed left traces in %v only", got)
		}

		expect(t, f.do("DELETE", "/api/admin/surveys/erase-me", "admin", nil), http.StatusNoContent, "")

		// Revoked refresh tokens keep their row (user id, jti, times) until they expire and
		// are pruned; they no longer work. The tombstone names the survey and when it existed.
		got := traces(t, db, markers...)
		want := []string{"delivery_tombstones: 1 rows", fmt.Sprintf("refresh_tokens: %d rows", len(gone))}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after the deletion, traces in %v; want only %v", got, want)
		}
		for _, s := range gone {
			if n := liveRefreshTokens(t, db, s.userID); n != 0 {
				t.Errorf("%d live refresh tokens of %s", n, s.username)
			}
		}
		if got := traces(t, db, "keep-me", kept.userID, kept.marker, "wh_kept", "dlv_kept"); len(got) < 9 {
			t.Errorf("the other survey lost data: traces only in %v", got)
		}
		expect(t, f.do("DELETE", "/api/admin/surveys/erase-me", "admin", nil), http.StatusNotFound, "")

		// Created again under the same id, the survey shows nothing of the old one.
		f.createSurvey("erase-me", nil)
		r := f.do("GET", "/api/admin/surveys/erase-me/respondents", "admin", nil)
		expect(t, r, http.StatusOK, "")
		if items, _ := r.json(t)["items"].([]any); len(items) != 0 {
			t.Errorf("the new survey lists the old respondents: %s", r.body)
		}
		listed, err := db.Driver.Deliveries().List(t.Context(), store.DeliveryFilter{SurveyID: "erase-me", Limit: 10})
		if err != nil || len(listed) != 0 {
			t.Errorf("the new survey lists %d deliveries, %v; want none", len(listed), err)
		}

		// A dispatcher's attempt that was in flight during the deletion ends: its result
		// does not bring the delivery back. A delivery of the new survey is recorded.
		later := time.Now().UTC().Add(time.Second)
		old.Status, old.Attempts, old.UpdatedAt = store.DeliverySucceeded, 2, later
		fresh := store.Delivery{ID: "dlv_fresh", EventID: "evt_fresh", WebhookID: "wh_new", SurveyID: "erase-me",
			Type: "survey.session.submitted", URL: "https://receiver.example.org/hook", Status: store.DeliverySucceeded,
			Attempts: 1, CreatedAt: later, UpdatedAt: later}
		_, err = db.Driver.Deliveries().RecordResults(t.Context(), &store.DeliveryResults{
			Deliveries: []store.Delivery{old, fresh},
			Attempts: []store.Attempt{{DeliveryID: old.ID, N: 2, StartedAt: later, StatusCode: 200},
				{DeliveryID: fresh.ID, N: 1, StartedAt: later, StatusCode: 200}},
			Now: later,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := traces(t, db, "dlv_erased"); len(got) != 0 {
			t.Errorf("the in-flight result brought the deleted delivery back: %v", got)
		}
		if got := traces(t, db, "dlv_fresh"); fmt.Sprint(got) != "[deliveries: 1 rows delivery_attempts: 1 rows]" {
			t.Errorf("the new survey's delivery: traces in %v", got)
		}
	})
}

// Deleting a respondent deletes its submissions and sessions and erases its events'
// payloads: the events keep their rows (for their deliveries' log), marked erased, and no
// column anywhere holds its recall or username; other respondents keep everything.
func TestDeleteRespondentErasesItsData(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("erasure", nil)
		gone := f.seedRespondent("erasure", "dave-erased")
		kept := f.seedRespondent("erasure", "erin-kept")

		expect(t, f.do("DELETE", "/api/admin/surveys/erasure/respondents/dave-erased", "admin", nil), http.StatusNoContent, "")

		got := traces(t, db, gone.userID, gone.username, gone.marker)
		want := []string{"refresh_tokens: 1 rows"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after the deletion, traces in %v; want only %v", got, want)
		}
		if n := liveRefreshTokens(t, db, gone.userID); n != 0 {
			t.Errorf("%d live refresh tokens", n)
		}
		evs, err := db.Driver.Events().ByID(context.Background(), append(gone.eventIDs, kept.eventIDs...))
		if err != nil || len(evs) != 4 {
			t.Fatalf("read %d events, %v; want every row kept", len(evs), err)
		}
		for _, e := range evs {
			erased := slices.Contains(gone.eventIDs, e.ID)
			switch {
			case erased && (e.ErasedAt.IsZero() || string(e.Payload) != store.ErasedPayload || e.UserID != ""):
				t.Errorf("event %s not erased: %q erased at %v user %q", e.ID, e.Payload, e.ErasedAt, e.UserID)
			case !erased && (!e.ErasedAt.IsZero() || !strings.Contains(string(e.Payload), kept.marker) || e.UserID != kept.userID):
				t.Errorf("event %s of the other respondent changed: %q erased at %v", e.ID, e.Payload, e.ErasedAt)
			}
		}
		if got := traces(t, db, kept.userID, kept.marker); len(got) < 4 {
			t.Errorf("the other respondent lost data: traces only in %v", got)
		}
		// The erased unpublished event (the submission's) is never handed to the outbox.
		if n, err := db.Driver.Events().CountUnpublished(t.Context()); err != nil || n != 1 {
			t.Errorf("%d unpublished events, %v; want only the other respondent's submission", n, err)
		}
		expect(t, f.do("DELETE", "/api/admin/surveys/erasure/respondents/dave-erased", "admin", nil), http.StatusNotFound, "")
	})
}
