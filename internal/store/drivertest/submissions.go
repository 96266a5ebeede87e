package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testSubmissions(t *testing.T, open Opener) {
	t.Helper()
	t.Run("Submitters", func(t *testing.T) { testSubmitters(t, open(t)) })
	t.Run("Commit", func(t *testing.T) { testCommit(t, open(t)) })
	t.Run("CommitAdmission", func(t *testing.T) { testCommitAdmission(t, open(t)) })
	t.Run("CommitFailsWhole", func(t *testing.T) { testCommitFailsWhole(t, open(t)) })
	t.Run("CommitInCallersTx", func(t *testing.T) { testCommitInCallersTx(t, open(t)) })
	t.Run("CloseSessions", func(t *testing.T) { testCloseSessions(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("Erasure", func(t *testing.T) { testSubmissionsErasure(t, open(t)) })
}

// intakeExec runs setup statements, failing the test on the first error.
func intakeExec(t *testing.T, db *store.DB, stmts ...string) {
	t.Helper()
	now := store.Micros(time.Now())
	for _, q := range stmts {
		if _, err := db.Exec(context.Background(), q, now); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// intakeCount returns one number read by query.
func intakeCount(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// intakeSeed stores survey s (with a redirect) and its respondents u (enabled) and d
// (disabled), and sets the webhooks version to 7.
func intakeSeed(t *testing.T, db *store.DB) {
	t.Helper()
	intakeExec(t, db,
		`INSERT INTO surveys (id, name, redirect_url, redirect_identifier, created_at, updated_at)
			VALUES ('s', 's', 'https://example.org/done', 'username', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, custom_fields, created_at, updated_at)
			VALUES ('u', 's', 'user-u', 't-u', '{"a":1}', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, disabled, created_at, updated_at)
			VALUES ('d', 's', 'user-d', 't-d', TRUE, $1, $1)`,
	)
	if _, err := db.Exec(context.Background(), `UPDATE webhooks_version SET version = 7`); err != nil {
		t.Fatal(err)
	}
}

// intakeItem is a submission of respondent userID of survey s, with its event.
func intakeItem(id, userID, key, session string, at time.Time) store.SubmissionItem {
	return store.SubmissionItem{
		Submission: store.Submission{ID: id, SurveyID: "s", UserID: userID, SessionID: session, IdempotencyKey: key,
			Body: []byte(`{"id":"` + id + `"}`), SubmittedAt: at},
		Event: store.Event{ID: "evt_" + id, Type: "survey.session.submitted", SurveyID: "s",
			Subject: "surveys.s.survey.session.submitted", Payload: []byte(`{"id":"evt_` + id + `"}`),
			Trace: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, CreatedAt: at},
	}
}

func testSubmitters(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	subs := db.Driver.Submissions()
	found, err := subs.Submitters(ctx, []store.SubmitterKey{{SurveyID: "s", UserID: "u"}, {SurveyID: "s", UserID: "d"},
		{SurveyID: "s", UserID: "nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("%d submitters, want 2: %v", len(found), found)
	}
	u := found[store.SubmitterKey{SurveyID: "s", UserID: "u"}]
	if u == nil || u.RedirectURL != "https://example.org/done" || u.RedirectIdentifier != "username" || u.Username != "user-u" ||
		u.AuthToken != "t-u" || u.Disabled || u.WebhooksVersion != 7 {
		t.Fatalf("u: %+v", u)
	}
	var fields map[string]int
	if err := json.Unmarshal(u.CustomFields, &fields); err != nil || fields["a"] != 1 {
		t.Errorf("custom fields %s (%v), want {\"a\":1}", u.CustomFields, err)
	}
	if d := found[store.SubmitterKey{SurveyID: "s", UserID: "d"}]; d == nil || !d.Disabled || d.Username != "user-d" {
		t.Errorf("d: %+v", d)
	}
	if none, err := subs.Submitters(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("no keys: %v, %v", none, err)
	}
}

// A batch creates its new submissions with their events (leased, with the submitter's
// webhooks version, trace headers kept) and answers repeats of committed submissions and of
// each other with the earlier id.
func testCommit(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	intakeExec(t, db,
		`INSERT INTO submissions (id, survey_id, user_id, idempotency_key, body, submitted_at) VALUES ('sub_earlier', 's', 'u', 'k-earlier', '{}', $1)`,
		`INSERT INTO submissions (id, survey_id, user_id, session_id, body, submitted_at) VALUES ('sub_ses', 's', 'u', 'ses-done', '{}', $1)`,
	)
	at := time.Now().UTC().Truncate(time.Millisecond)
	lease := at.Add(time.Minute)
	b := store.SubmissionBatch{
		Items: []store.SubmissionItem{
			intakeItem("sub_a", "u", "k-a", "", at),
			intakeItem("sub_b", "u", "", "ses-b", at),
			intakeItem("sub_again", "u", "k-earlier", "", at),    // repeats a committed key
			intakeItem("sub_ses2", "u", "k-new", "ses-done", at), // repeats a committed session
		},
		EventsClaimedUntil: lease,
	}
	// One item comes with its submitter read already (its version wins where the driver
	// does not read it again); the others are read by Commit.
	b.Items[1].Submitter = &store.Submitter{Username: "user-u", WebhooksVersion: 7}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		created bool
		result  string
	}{{true, "sub_a"}, {true, "sub_b"}, {false, "sub_earlier"}, {false, "sub_ses"}}
	for i, w := range want {
		it := b.Items[i]
		if it.Err != nil || it.Created != w.created || it.ResultID != w.result || it.Submitter == nil {
			t.Errorf("item %d: created %v, result %q, err %v, submitter %v; want %v, %q", i, it.Created, it.ResultID, it.Err,
				it.Submitter, w.created, w.result)
		}
		if w.created && it.Event.WebhooksVersion != 7 {
			t.Errorf("item %d: event version %d, want 7", i, it.Event.WebhooksVersion)
		}
	}
	if u := b.Items[0].Submitter; u.Username != "user-u" || u.RedirectURL != "https://example.org/done" {
		t.Errorf("submitter read by the commit: %+v", u)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`); n != 4 {
		t.Errorf("%d submissions, want 4", n)
	}
	var body string
	if err := db.QueryRow(ctx, `SELECT body FROM submissions WHERE id = 'sub_a'`).Scan(&body); err != nil || body != `{"id":"sub_a"}` {
		t.Errorf("stored body %q, %v", body, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions WHERE id = 'sub_b' AND session_id = 'ses-b'
		AND idempotency_key IS NULL AND submitted_at = $1`, store.Micros(at)); n != 1 {
		t.Errorf("sub_b stored %d times as given", n)
	}
	// Exactly the created submissions' events, leased, with the version.
	if n := intakeCount(t, db, `SELECT count(*) FROM events`); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id IN ('evt_sub_a', 'evt_sub_b') AND claimed_until = $1
		AND webhooks_version = 7 AND created_at = $2 AND published_at IS NULL`, store.Micros(lease), store.Micros(at)); n != 2 {
		t.Errorf("%d events stored as given, want 2", n)
	}
	claimed, err := db.Driver.Events().Claim(ctx, lease.Add(time.Second), lease.Add(time.Hour), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	for _, ev := range claimed {
		if ev.Trace["traceparent"] == "" || ev.Subject != "surveys.s.survey.session.submitted" || string(ev.Payload) != `{"id":"`+ev.ID+`"}` {
			t.Errorf("stored event %+v", ev)
		}
	}

	// Nothing to create: no events, no error.
	b = store.SubmissionBatch{Items: []store.SubmissionItem{intakeItem("sub_a_again", "u", "k-a", "", at)}}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil || b.Items[0].Created || b.Items[0].ResultID != "sub_a" {
		t.Fatalf("repeat alone: %+v, %v", b.Items[0], err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events`); n != 2 {
		t.Errorf("%d events after a repeat, want 2", n)
	}
}

var errRefused = errors.New("refused")

// Submitters Commit reads go through Admit: those it refuses are not written, the others
// are. Without Admit, only a missing submitter is refused.
func testCommitAdmission(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	intakeExec(t, db, `INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses-d', 's', 'd', 'open', $1, $1)`)
	at := time.Now()
	var asked []string
	b := store.SubmissionBatch{
		Items: []store.SubmissionItem{
			intakeItem("sub_u", "u", "k-u", "", at),
			intakeItem("sub_d", "d", "k-d", "ses-d", at),
			intakeItem("sub_gone", "nobody", "k-g", "", at),
		},
		Admit: func(s *store.Submitter) error {
			if s == nil {
				asked = append(asked, "nil")
				return store.ErrNotFound
			}
			asked = append(asked, s.Username)
			if s.Disabled {
				return errRefused
			}
			return nil
		},
	}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if len(asked) < 3 {
		t.Errorf("Admit asked about %v, want every item", asked)
	}
	if it := b.Items[0]; it.Err != nil || !it.Created || it.ResultID != "sub_u" {
		t.Errorf("admitted item: %+v", it)
	}
	if it := b.Items[1]; !errors.Is(it.Err, errRefused) || it.Created || it.Submitter != nil {
		t.Errorf("disabled item: %+v", it)
	}
	if it := b.Items[2]; !errors.Is(it.Err, store.ErrNotFound) || it.Created {
		t.Errorf("gone item: %+v", it)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`); n != 1 {
		t.Errorf("%d submissions, want 1", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE id = 'ses-d' AND status = 'open'`); n != 1 {
		t.Error("the refused submission closed its session")
	}

	// Everything refused: nothing written, no error.
	b = store.SubmissionBatch{Items: []store.SubmissionItem{intakeItem("sub_x", "nobody", "k-x", "", at)}}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil || !errors.Is(b.Items[0].Err, store.ErrNotFound) {
		t.Fatalf("all refused: %v, item err %v", err, b.Items[0].Err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`); n != 1 {
		t.Errorf("%d submissions after an all-refused batch, want 1", n)
	}
}

// A submission the insert skips while no earlier one explains it fails the whole batch:
// nothing of it is written.
func testCommitFailsWhole(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	intakeExec(t, db,
		`INSERT INTO submissions (id, survey_id, user_id, body, submitted_at) VALUES ('sub_taken', 's', 'u', '{}', $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses-u', 's', 'u', 'open', $1, $1)`,
	)
	at := time.Now()
	b := store.SubmissionBatch{Items: []store.SubmissionItem{
		intakeItem("sub_ok", "u", "k-ok", "ses-u", at),
		intakeItem("sub_taken", "u", "k-taken", "", at), // its id exists under no key of its own
	}}
	if err := db.Driver.Submissions().Commit(ctx, &b); err == nil {
		t.Fatal("the batch committed")
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`); n != 1 {
		t.Errorf("%d submissions, want only the earlier one", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events`); n != 0 {
		t.Errorf("%d events, want 0", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE status = 'open'`); n != 1 {
		t.Error("the failed batch closed a session")
	}
	// The database is usable afterwards: the good item alone commits.
	b = store.SubmissionBatch{Items: []store.SubmissionItem{intakeItem("sub_ok", "u", "k-ok", "ses-u", at)}}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil || !b.Items[0].Created {
		t.Fatalf("alone: %+v, %v", b.Items[0], err)
	}
}

// Inside the caller's transaction, Commit's writes commit or roll back with it.
func testCommitInCallersTx(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	at := time.Now()
	errAbort := errors.New("abort")
	err := db.Driver.InTx(ctx, func(tx store.Executor) error {
		b := store.SubmissionBatch{Items: []store.SubmissionItem{intakeItem("sub_rolled", "u", "k-r", "", at)}}
		if err := tx.Submissions().Commit(ctx, &b); err != nil || !b.Items[0].Created {
			return fmt.Errorf("commit: %+v, %w", b.Items[0], err)
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`) + intakeCount(t, db, `SELECT count(*) FROM events`); n != 0 {
		t.Fatalf("%d rows left by a rolled back transaction", n)
	}
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		b := store.SubmissionBatch{Items: []store.SubmissionItem{intakeItem("sub_kept", "u", "k-k", "", at)}}
		return tx.Submissions().Commit(ctx, &b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = 'evt_sub_kept' AND webhooks_version = 7`); n != 1 {
		t.Fatalf("%d events of the committed transaction, want 1", n)
	}
}

// A created submission closes the session it names only when that session is the submitting
// respondent's and open.
func testCloseSessions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeExec(t, db,
		`INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 's', $1, $1)`,
		`INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s2', 's2', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at) VALUES ('u', 's', 'u', 't-u', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at) VALUES ('w', 's', 'w', 't-w', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses_u', 's', 'u', 'open', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses_w', 's', 'w', 'open', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses_v', 's', 'v', 'open', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses_old', 's', 'u', 'cancelled', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses_x', 's2', 'u', 'open', $1, $1)`,
	)
	at := time.Now()
	b := store.SubmissionBatch{Items: []store.SubmissionItem{
		intakeItem("sub_1", "u", "k1", "ses_u", at),    // its own open session: closed
		intakeItem("sub_2", "w", "k2", "ses_w", at),    // likewise
		intakeItem("sub_3", "u", "k3", "ses_v", at),    // another respondent's: untouched
		intakeItem("sub_4", "u", "k4", "ses_old", at),  // cancelled already: untouched
		intakeItem("sub_5", "u", "k5", "ses_x", at),    // of another survey: untouched
		intakeItem("sub_6", "u", "k6", "", at),         // no session
		intakeItem("sub_7", "u", "k7", "ses_none", at), // no such session
	}}
	if err := db.Driver.Submissions().Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ses_u": "submitted", "ses_w": "submitted", "ses_v": "open", "ses_old": "cancelled", "ses_x": "open"}
	for id, status := range want {
		var got string
		if err := db.QueryRow(ctx, `SELECT status FROM survey_sessions WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != status {
			t.Errorf("session %s is %s, want %s", id, got, status)
		}
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE status = 'submitted' AND updated_at = $1`,
		store.Micros(at)); n != 2 {
		t.Errorf("%d sessions closed at the batch's time, want 2", n)
	}
}

// Sessions open one at a time per respondent and cancel together.
func testSessions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	subs := db.Driver.Submissions()
	now := time.Now()
	if err := subs.OpenSession(ctx, "ses_1", "s", "u", now); err != nil {
		t.Fatal(err)
	}
	if err := subs.OpenSession(ctx, "ses_other", "s", "d", now); err != nil {
		t.Fatal(err)
	}
	// A second open session of the same respondent breaks the unique index of open sessions.
	if err := subs.OpenSession(ctx, "ses_2", "s", "u", now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second open session: %v, want ErrConflict", err)
	}
	later := now.Add(time.Second)
	ids, err := subs.CancelOpenSessions(ctx, "s", "u", later)
	if err != nil || len(ids) != 1 || ids[0] != "ses_1" {
		t.Fatalf("cancelled %v, %v; want [ses_1]", ids, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE id = 'ses_1' AND status = 'cancelled' AND updated_at = $1`,
		store.Micros(later)); n != 1 {
		t.Error("ses_1 not cancelled at the given time")
	}
	if ids, err := subs.CancelOpenSessions(ctx, "s", "u", later); err != nil || len(ids) != 0 {
		t.Fatalf("cancelling again: %v, %v; want none", ids, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE id = 'ses_other' AND status = 'open'`); n != 1 {
		t.Error("another respondent's session was cancelled")
	}
	// Cancelled, the respondent may open a new one.
	if err := subs.OpenSession(ctx, "ses_2", "s", "u", later); err != nil {
		t.Fatal(err)
	}
}
