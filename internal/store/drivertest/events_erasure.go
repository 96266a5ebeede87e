package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// EraseUser replaces the payload and trace headers of a respondent's events and forgets whose
// they were, keeps their rows,
// marks an unpublished one published so the outbox never sends it, leaves other respondents'
// events alone, and erases each event once.
func testEventsEraseUser(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	all := intakeEvents("evt_e", 4, created)
	for i := range all {
		all[i].Trace = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	}
	all[0].UserID, all[1].UserID, all[2].UserID = "usr_gone", "usr_gone", "usr_kept"
	if err := evs.Insert(ctx, time.Time{}, all[:3]); err != nil {
		t.Fatal(err)
	}
	if err := evs.InsertPublished(ctx, all[3]); err != nil { // no respondent
		t.Fatal(err)
	}
	if err := evs.MarkPublished(ctx, created, []string{all[0].ID}); err != nil {
		t.Fatal(err)
	}
	now := created.Add(time.Minute)
	n, err := evs.EraseUser(ctx, "usr_gone", now)
	if err != nil || n != 2 {
		t.Fatalf("EraseUser = %d, %v; want 2", n, err)
	}
	got, err := evs.ByID(ctx, intakeIDs(all))
	if err != nil || len(got) != len(all) {
		t.Fatalf("ByID after erasure: %d events, %v; want every row kept", len(got), err)
	}
	byID := map[string]store.Event{}
	for _, e := range got {
		byID[e.ID] = e
	}
	for _, e := range all[:2] {
		g := byID[e.ID]
		if string(g.Payload) != store.ErasedPayload || g.Trace != nil || !g.ErasedAt.Equal(now) || g.UserID != "" {
			t.Errorf("erased event %s reads %q trace %v erased %v user %q", e.ID, g.Payload, g.Trace, g.ErasedAt, g.UserID)
		}
	}
	for _, e := range all[2:] {
		g := byID[e.ID]
		if string(g.Payload) != string(e.Payload) || g.Trace == nil || !g.ErasedAt.IsZero() || g.UserID != e.UserID {
			t.Errorf("event %s of another respondent changed: %q trace %v erased %v user %q", e.ID, g.Payload, g.Trace,
				g.ErasedAt, g.UserID)
		}
	}
	// The erased unpublished event is never published; the published one keeps its time.
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = $1 AND published_at = $2 AND claimed_until IS NULL`,
		all[1].ID, store.Micros(now)); n != 1 {
		t.Error("the erased unpublished event was not marked published")
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = $1 AND published_at = $2`,
		all[0].ID, store.Micros(created)); n != 1 {
		t.Error("the erased published event's publish time changed")
	}
	claimed, err := evs.Claim(ctx, now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		if c.UserID == "usr_gone" {
			t.Errorf("the outbox claimed erased event %s", c.ID)
		}
	}
	if n, err := evs.EraseUser(ctx, "usr_gone", now.Add(time.Minute)); err != nil || n != 0 {
		t.Errorf("erasing again = %d, %v; want 0", n, err)
	}
	if n, err := evs.EraseUser(ctx, "usr_none", now); err != nil || n != 0 {
		t.Errorf("erasing an unknown respondent = %d, %v; want 0", n, err)
	}
}

// DeleteSurvey deletes a survey's events, published or not, and no other survey's.
func testEventsDeleteSurvey(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	mine := intakeEvents("evt_mine", 3, created)
	other := intakeEvents("evt_other", 2, created)
	for i := range other {
		other[i].SurveyID = "s2"
	}
	if err := evs.Insert(ctx, time.Time{}, append(mine[:2:2], other...)); err != nil {
		t.Fatal(err)
	}
	if err := evs.InsertPublished(ctx, mine[2]); err != nil {
		t.Fatal(err)
	}
	n, err := evs.DeleteSurvey(ctx, "s")
	if err != nil || n != 3 {
		t.Fatalf("DeleteSurvey = %d, %v; want 3", n, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE survey_id = 's'`); n != 0 {
		t.Errorf("%d events of the deleted survey left", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE survey_id = 's2'`); n != 2 {
		t.Errorf("%d events of the other survey left, want 2", n)
	}
	if n, err := evs.DeleteSurvey(ctx, "s"); err != nil || n != 0 {
		t.Errorf("deleting again = %d, %v; want 0", n, err)
	}
}
