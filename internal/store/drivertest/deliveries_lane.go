package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// testLanes checks FIFO lanes on both stores (see internal/dispatch, "FIFO endpoints"): events
// numbered in acceptance order, the lane position taken from them, the head claimed alone and
// only once the deliveries of earlier events the endpoint should get are recorded, replays
// claimed beside the lane, and the ordering moving the webhooks version.
func testLanes(t *testing.T, open Opener) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s1', 's1', $1, $1)",
		store.Micros(t0)); err != nil {
		t.Fatal(err)
	}
	wh := db.Driver.Webhooks()
	// An event accepted before the endpoint exists is not waited for.
	insertEvent := func(id, typ string) {
		t.Helper()
		if err := db.Driver.Events().Insert(ctx, time.Time{}, []store.Event{{ID: id, Type: typ, SurveyID: "s1",
			Subject: "x", Payload: []byte(`{}`), CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	insertEvent("e0", "survey.session.submitted")
	w := &store.Webhook{ID: "w1", SurveyID: "s1", URL: "https://example.org/w1", Events: []string{"survey.session.submitted"},
		SignatureScheme: store.SignatureSchemeV1, Secret: "whsec_x", Ordering: store.OrderingFIFO, CreatedAt: t0, UpdatedAt: t0}
	if err := wh.Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	if got, err := wh.Get(ctx, "s1", "w1"); err != nil || got.Ordering != store.OrderingFIFO {
		t.Fatalf("ordering after create: %+v, %v", got, err)
	}
	insertEvent("e1", "survey.session.submitted")
	insertEvent("x1", "survey.session.started") // not subscribed: never waited for
	insertEvent("e2", "survey.session.submitted")
	insertEvent("e3", "survey.session.submitted")

	record := func(status string, lane bool, ids ...string) {
		t.Helper()
		r := &store.DeliveryResults{Now: t0}
		for _, id := range ids {
			r.Deliveries = append(r.Deliveries, store.Delivery{ID: "d" + id, EventID: id, WebhookID: "w1", SurveyID: "s1",
				Type: "survey.session.submitted", URL: w.URL, Status: status, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0,
				Lane: lane})
		}
		if _, err := db.Driver.Deliveries().RecordResults(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	claim := func(gapUntil time.Time) []string {
		t.Helper()
		got, err := db.Driver.Deliveries().ClaimDue(ctx, store.DeliveryClaim{Now: now, LeaseUntil: now.Add(time.Minute),
			PerEndpoint: 10, Limit: 10, LaneGapUntil: gapUntil})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range got {
			if d.Lane != (d.ReplayOf == "" && d.ID != "replay") {
				t.Errorf("claimed %s with Lane %v", d.ID, d.Lane)
			}
			ids = append(ids, d.ID)
		}
		return ids
	}
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: claimed %v, want %v", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: claimed %v, want %v", what, got, want)
			}
		}
	}

	// e2 and e3 are recorded before e1: nothing may go while e1's delivery is missing.
	record(store.DeliveryPending, true, "e2", "e3")
	expect("e1 missing", claim(time.Time{}))
	// A replay is sent outside the order, while the lane waits.
	if err := db.Driver.Deliveries().Insert(ctx, &store.Delivery{ID: "replay", EventID: "e3", WebhookID: "w1", SurveyID: "s1",
		Type: "survey.session.submitted", URL: w.URL, Status: store.DeliveryPending, NextAttemptAt: t0, ReplayOf: "de3",
		CreatedAt: t0, UpdatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	expect("replay beside a waiting lane", claim(time.Time{}), "replay")
	// Past the gap wait the head goes without e1 (its message may be lost for good).
	if got := claim(now.Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("a head stored within the gap wait went: %v", got)
	}
	record(store.DeliveryPending, true, "e1")
	expect("head", claim(time.Time{}), "de1")
	expect("head in flight", claim(time.Time{}))
	record(store.DeliverySucceeded, true, "e1")
	expect("next head", claim(time.Time{}), "de2")
	// A failed (exhausted) head lets the next one go.
	record(store.DeliveryFailed, true, "e2")
	expect("after a failed head", claim(time.Time{}), "de3")

	// The ordering is part of what the webhooks version covers.
	v0, err := wh.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Ordering = store.OrderingNone
	if err := wh.Update(ctx, w); err != nil {
		t.Fatal(err)
	}
	if v1, err := wh.Version(ctx); err != nil || v1 <= v0 {
		t.Errorf("version after an ordering change: %d, %v; was %d", v1, err, v0)
	}
	if got, err := wh.Get(ctx, "s1", "w1"); err != nil || got.Ordering != store.OrderingNone {
		t.Errorf("ordering after update: %+v, %v", got, err)
	}
}
