package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// DeleteRespondent deletes one respondent's submissions and sessions, and nobody else's;
// DeleteSurvey a survey's.
func testSubmissionsErasure(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	intakeExec(t, db,
		`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at)
			VALUES ('v', 's', 'user-v', 't-v', $1, $1)`)
	sub := db.Driver.Submissions()
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	for _, sess := range []struct{ id, user string }{{"ses_u1", "u"}, {"ses_u2", "u"}, {"ses_v", "v"}} {
		if err := sub.OpenSession(ctx, sess.id, "s", sess.user, at); err != nil {
			if _, err := sub.CancelOpenSessions(ctx, "s", sess.user, at); err != nil {
				t.Fatal(err)
			}
			if err := sub.OpenSession(ctx, sess.id, "s", sess.user, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := &store.SubmissionBatch{Items: []store.SubmissionItem{
		intakeItem("sub_u1", "u", "k1", "", at), intakeItem("sub_u2", "u", "k2", "ses_u2", at), intakeItem("sub_v", "v", "k1", "", at),
	}}
	if err := sub.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	n, err := sub.DeleteRespondent(ctx, "s", "u")
	if err != nil || n != 2 {
		t.Fatalf("DeleteRespondent = %d, %v; want 2", n, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions WHERE user_id = 'u'`); n != 0 {
		t.Errorf("%d submissions of the deleted respondent left", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE user_id = 'u'`); n != 0 {
		t.Errorf("%d sessions of the deleted respondent left", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions WHERE user_id = 'v'`); n != 1 {
		t.Errorf("%d submissions of the other respondent, want 1", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM survey_sessions WHERE user_id = 'v'`); n != 1 {
		t.Errorf("%d sessions of the other respondent, want 1", n)
	}
	if n, err := sub.DeleteRespondent(ctx, "s", "u"); err != nil || n != 0 {
		t.Errorf("deleting again = %d, %v; want 0", n, err)
	}
	if n, err := sub.DeleteSurvey(ctx, "s"); err != nil || n != 1 {
		t.Fatalf("DeleteSurvey = %d, %v; want 1", n, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM submissions`) + intakeCount(t, db, `SELECT count(*) FROM survey_sessions`); n != 0 {
		t.Errorf("%d submissions and sessions of the deleted survey left", n)
	}
}
