package drivertest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// A submission's event whose data is the submission's body (Event.DataSubmissionID) stores
// its envelope without the data, and every reader gets the whole envelope back: Claim, ByID
// and the event_envelopes view for operators. Erasing the respondent clears the link; an event
// whose submission is gone otherwise reads as erased, never as an envelope without its data.
func testEventsDataInSubmission(t *testing.T, db *store.DB) {
	ctx := context.Background()
	intakeSeed(t, db)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	body := []byte(`{"id":"sub_1","recall":{"meals":[{"name":"\u003cb\u003e"}]}}`)
	head := []byte(`{"id":"evt_sub_1","type":"survey.session.submitted","submissionId":"sub_1"}`)
	it := intakeItem("sub_1", "u", "k1", "", at)
	it.Submission.Body = body
	it.Event.UserID = "u"
	it.Event.Payload, it.Event.DataSubmissionID = head, "sub_1"
	whole := store.JoinEnvelope(head, body)
	if want := `{"id":"evt_sub_1","type":"survey.session.submitted","submissionId":"sub_1","data":` + string(body) + `}`; string(whole) != want {
		t.Fatalf("JoinEnvelope: %s, want %s", whole, want)
	}
	if err := db.Driver.Submissions().Commit(ctx, &store.SubmissionBatch{Items: []store.SubmissionItem{it}}); err != nil {
		t.Fatal(err)
	}
	// A plain event beside it keeps its payload whole.
	plain := intakeEvents("evt_plain", 1, at)
	if err := db.Driver.Events().Insert(ctx, time.Time{}, plain); err != nil {
		t.Fatal(err)
	}

	var stored []byte
	if err := db.QueryRow(ctx, `SELECT payload FROM events WHERE id = 'evt_sub_1' AND data_submission_id = 'sub_1'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, head) {
		t.Fatalf("stored payload %s, want the envelope without data %s", stored, head)
	}
	check := func(how string, evs []store.Event) {
		t.Helper()
		got := map[string]string{}
		for _, ev := range evs {
			got[ev.ID] = string(ev.Payload)
			if ev.ID == "evt_sub_1" && (ev.DataSubmissionID != "sub_1" || !ev.ErasedAt.IsZero() || ev.UserID != "u") {
				t.Errorf("%s: %+v", how, ev)
			}
		}
		if got["evt_sub_1"] != string(whole) || got["evt_plain_0000"] != string(plain[0].Payload) {
			t.Errorf("%s: payloads %v, want %s and %s", how, got, whole, plain[0].Payload)
		}
	}
	claimed, err := db.Driver.Events().Claim(ctx, time.Now(), time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	check("Claim", claimed)
	byID, err := db.Driver.Events().ByID(ctx, []string{"evt_sub_1", "evt_plain_0000"})
	if err != nil {
		t.Fatal(err)
	}
	check("ByID", byID)
	var viewed []store.Event
	rows, err := db.Query(ctx, `SELECT id, payload FROM event_envelopes WHERE id IN ('evt_sub_1', 'evt_plain_0000')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ev store.Event
		if err := rows.Scan(&ev.ID, &ev.Payload); err != nil {
			t.Fatal(err)
		}
		ev.DataSubmissionID, ev.UserID = "sub_1", "u" // not in the view; check compares payloads
		viewed = append(viewed, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	check("event_envelopes", viewed)

	// A submission gone without the erasure (a change outside the service): the event
	// reads as erased.
	intakeExec(t, db, `UPDATE events SET data_submission_id = 'sub_gone' WHERE id = 'evt_sub_1' AND created_at < $1`)
	byID, err = db.Driver.Events().ByID(ctx, []string{"evt_sub_1"})
	if err != nil || len(byID) != 1 {
		t.Fatalf("ByID: %v, %v", byID, err)
	}
	if ev := byID[0]; string(ev.Payload) != store.ErasedPayload || ev.ErasedAt.IsZero() {
		t.Fatalf("event of a missing submission: payload %s, erased at %v; want it erased", ev.Payload, ev.ErasedAt)
	}
	intakeExec(t, db, `UPDATE events SET data_submission_id = 'sub_1' WHERE id = 'evt_sub_1' AND created_at < $1`)

	// Erasing the respondent clears the link with the payload.
	if n, err := db.Driver.Events().EraseUser(ctx, "u", time.Now()); err != nil || n != 1 {
		t.Fatalf("EraseUser: %d, %v", n, err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = 'evt_sub_1' AND data_submission_id IS NULL
		AND erased_at IS NOT NULL`); n != 1 {
		t.Fatalf("erased event still names its submission")
	}
	byID, err = db.Driver.Events().ByID(ctx, []string{"evt_sub_1"})
	if err != nil || len(byID) != 1 || string(byID[0].Payload) != store.ErasedPayload || byID[0].DataSubmissionID != "" {
		t.Fatalf("ByID after erasure: %+v, %v", byID, err)
	}
}
