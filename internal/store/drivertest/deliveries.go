package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testDeliveries(t *testing.T, open Opener) {
	t.Helper()
	t.Run("claim", func(t *testing.T) {
		testClaimDue(t, open)
		testClaimDueBacklog(t, open)
		testClaimDueConcurrentDrain(t, open)
	})
	t.Run("insert get attempts", func(t *testing.T) { t.Parallel(); testDeliveryInsertGet(t, open(t)) })
	t.Run("record results", func(t *testing.T) { t.Parallel(); testRecordResults(t, open(t)) })
	t.Run("record results in a transaction", func(t *testing.T) { t.Parallel(); testRecordResultsInTx(t, open(t)) })
	t.Run("list", func(t *testing.T) { t.Parallel(); testDeliveryList(t, open(t)) })
	t.Run("replay", func(t *testing.T) { t.Parallel(); testReplay(t, open(t)) })
	t.Run("replay records", func(t *testing.T) { t.Parallel(); testReplayRecords(t, open(t)) })
}

// base is the tests' clock: a fixed time at microsecond precision.
var base = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

// addWebhook stores a survey (once) and an endpoint of it.
func addWebhook(t *testing.T, db *store.DB, surveyID, id, url string, disabled bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $1, 1, 1)
		ON CONFLICT (id) DO NOTHING`, surveyID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, 'survey.session.submitted', 'whsec_x', $4, 1, 1)`, id, surveyID, url, disabled); err != nil {
		t.Fatal(err)
	}
}

func insertDelivery(t *testing.T, db *store.DB, d store.Delivery, attempts ...store.Attempt) {
	t.Helper()
	if err := db.Driver.Deliveries().Insert(context.Background(), &d, attempts); err != nil {
		t.Fatal(err)
	}
}

func testDeliveryInsertGet(t *testing.T, db *store.DB) {
	ctx := context.Background()
	q := db.Driver.Deliveries()
	full := store.Delivery{ID: "dlv_full", EventID: "evt_1", WebhookID: "wh_1", SurveyID: "s1", Type: "survey.session.submitted",
		URL: "http://127.0.0.1/a", Status: store.DeliveryPending, Attempts: 2, LastStatusCode: 503, LastError: "http_status",
		NextAttemptAt: at(60), ReplayOf: "dlv_old", ReplayID: "rpl_1", CreatedAt: at(1), UpdatedAt: at(2)}
	insertDelivery(t, db, full,
		store.Attempt{N: 2, StartedAt: at(3), Duration: 1500 * time.Millisecond, StatusCode: 503, Error: "http_status", ResponseBody: "busy"},
		store.Attempt{N: 1, StartedAt: at(2), Duration: 20 * time.Millisecond, Error: "connection_error: refused"})
	// Zero values are NULLs, and come back as zero values.
	bare := store.Delivery{ID: "dlv_bare", EventID: "evt_1", WebhookID: "wh_2", SurveyID: "s1", Type: "t", URL: "u",
		Status: store.DeliverySucceeded, Attempts: 1, CreatedAt: at(1), UpdatedAt: at(1)}
	insertDelivery(t, db, bare)

	// Pending and parked: dlv_full; a pending delivery without a due time is not counted.
	insertDelivery(t, db, store.Delivery{ID: "dlv_unparked", EventID: "evt_2", WebhookID: "wh_2", SurveyID: "s1", Type: "t", URL: "u",
		Status: store.DeliveryPending, CreatedAt: at(1), UpdatedAt: at(1)})
	if n, err := q.PendingRetries(ctx); err != nil || n != 1 {
		t.Fatalf("PendingRetries = %d, %v; want 1", n, err)
	}

	got, err := q.Get(ctx, "dlv_full")
	if err != nil || got != full {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, err, full)
	}
	if got, err := q.Get(ctx, "dlv_bare"); err != nil || got != bare {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, err, bare)
	}
	if _, err := q.Get(ctx, "dlv_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing delivery: %v, want ErrNotFound", err)
	}
	if err := q.Insert(ctx, &bare, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second insert of an id: %v, want ErrConflict", err)
	}

	log, err := q.Attempts(ctx, "dlv_full")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Attempt{
		{DeliveryID: "dlv_full", N: 1, StartedAt: at(2), Duration: 20 * time.Millisecond, Error: "connection_error: refused"},
		{DeliveryID: "dlv_full", N: 2, StartedAt: at(3), Duration: 1500 * time.Millisecond, StatusCode: 503, Error: "http_status", ResponseBody: "busy"},
	}
	if !slices.Equal(log, want) {
		t.Fatalf("Attempts = %+v\nwant %+v (in order of n)", log, want)
	}
	if log, err := q.Attempts(ctx, "dlv_bare"); err != nil || log == nil || len(log) != 0 {
		t.Fatalf("Attempts of a delivery without any = %#v, %v; want an empty list", log, err)
	}

	ids, err := q.EventDeliveries(ctx, "evt_1")
	slices.Sort(ids)
	if err != nil || fmt.Sprint(ids) != "[dlv_bare dlv_full]" {
		t.Fatalf("EventDeliveries = %v, %v", ids, err)
	}
	if ids, err := q.EventDeliveries(ctx, "evt_none"); err != nil || len(ids) != 0 {
		t.Fatalf("EventDeliveries of an unknown event = %v, %v", ids, err)
	}

	addWebhook(t, db, "s1", "wh_on", "http://127.0.0.1/on", false)
	addWebhook(t, db, "s1", "wh_off", "http://127.0.0.1/off", true)
	if url, survey, disabled, err := q.Target(ctx, "wh_on"); err != nil || url != "http://127.0.0.1/on" || survey != "s1" || disabled {
		t.Fatalf("Target(wh_on) = %q %q %v %v", url, survey, disabled, err)
	}
	if _, _, disabled, err := q.Target(ctx, "wh_off"); err != nil || !disabled {
		t.Fatalf("Target(wh_off) = disabled %v, %v", disabled, err)
	}
	if _, _, _, err := q.Target(ctx, "wh_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Target of a missing webhook: %v, want ErrNotFound", err)
	}
}

// webhookState is an endpoint's failure counters and disabling as stored.
type webhookState struct {
	failures int
	first    int64 // 0: NULL
	disabled bool
	reason   string
}

func readWebhook(t *testing.T, db *store.DB, id string) webhookState {
	t.Helper()
	var (
		s     webhookState
		first *int64
	)
	if err := db.QueryRow(context.Background(), `SELECT consecutive_failures, first_failure_at, disabled, disabled_reason
		FROM webhooks WHERE id = $1`, id).Scan(&s.failures, &first, &s.disabled, &s.reason); err != nil {
		t.Fatal(err)
	}
	if first != nil {
		s.first = *first
	}
	return s
}

func testRecordResults(t *testing.T, db *store.DB) {
	ctx := context.Background()
	q := db.Driver.Deliveries()
	for _, id := range []string{"wh_ok", "wh_flaky", "wh_gone", "wh_dead"} {
		addWebhook(t, db, "s1", id, "http://127.0.0.1/"+id, false)
	}
	d := func(id, webhook, status string, attempts int, next time.Time) store.Delivery {
		return store.Delivery{ID: id, EventID: "evt_" + id, WebhookID: webhook, SurveyID: "s1", Type: "t", URL: "http://127.0.0.1/" + webhook,
			Status: status, Attempts: attempts, NextAttemptAt: next, CreatedAt: at(0), UpdatedAt: at(attempts)}
	}

	// A batch of 300 deliveries (more than the largest statement: several chunks), their
	// attempts, and every kind of endpoint effect.
	r := &store.DeliveryResults{Now: at(10)}
	for i := range 300 {
		id := fmt.Sprintf("dlv_%03d", i)
		r.Deliveries = append(r.Deliveries, d(id, "wh_ok", store.DeliverySucceeded, 1, time.Time{}))
		r.Attempts = append(r.Attempts, store.Attempt{DeliveryID: id, N: 1, StartedAt: at(1), Duration: time.Millisecond, StatusCode: 204})
	}
	r.Deliveries = append(r.Deliveries, d("dlv_retry", "wh_flaky", store.DeliveryPending, 1, at(30)),
		d("dlv_gone", "wh_gone", store.DeliveryFailed, 1, time.Time{}))
	r.Attempts = append(r.Attempts,
		store.Attempt{DeliveryID: "dlv_retry", N: 1, StartedAt: at(2), Duration: time.Second, Error: "timeout"},
		store.Attempt{DeliveryID: "dlv_gone", N: 1, StartedAt: at(2), Duration: time.Second, StatusCode: 410, Error: "http_status"})
	r.Counters = []store.EndpointCounter{
		{WebhookID: "wh_flaky", Failures: 1, FirstFailureAt: at(3)},
		{WebhookID: "wh_gone", Failures: 1, FirstFailureAt: at(3)},
	}
	r.Gone = []string{"wh_gone"}
	r.Failing = &store.FailingEndpoints{WebhookIDs: []string{"wh_flaky", "wh_gone"}, Threshold: 2, SpanUntil: at(10)}
	disabled, err := q.RecordResults(ctx, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(disabled) != 1 || disabled[0] != (store.DisabledEndpoint{ID: "wh_gone", SurveyID: "s1", Reason: store.GoneReason}) {
		t.Fatalf("disabled %+v, want wh_gone for its 410 only (wh_flaky has 1 failure of 2)", disabled)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'").Scan(&n); err != nil || n != 300 {
		t.Fatalf("%d succeeded deliveries stored (%v), want 300", n, err)
	}
	if err := db.QueryRow(ctx, "SELECT count(*) FROM delivery_attempts").Scan(&n); err != nil || n != 302 {
		t.Fatalf("%d attempts stored (%v), want 302", n, err)
	}
	if got, err := q.Get(ctx, "dlv_retry"); err != nil || got != d("dlv_retry", "wh_flaky", store.DeliveryPending, 1, at(30)) {
		t.Fatalf("dlv_retry stored as %+v, %v", got, err)
	}
	if s := readWebhook(t, db, "wh_flaky"); s.failures != 1 || s.first != store.Micros(at(3)) || s.disabled {
		t.Fatalf("wh_flaky = %+v, want one failure since at(3)", s)
	}

	// The next batch: the retry fails again (the threshold is reached and its first failure
	// is old enough), a replayed old outcome must not overwrite the newer state, a second
	// copy of an attempt is ignored, and a success resets wh_ok's (untouched) counter.
	if _, err := db.Exec(ctx, "UPDATE webhooks SET consecutive_failures = 5, first_failure_at = 1 WHERE id = 'wh_ok'"); err != nil {
		t.Fatal(err)
	}
	r = &store.DeliveryResults{Now: at(40)}
	r.Deliveries = []store.Delivery{
		d("dlv_retry", "wh_flaky", store.DeliveryPending, 2, at(90)),
		d("dlv_000", "wh_ok", store.DeliveryPending, 0, at(50)), // stale: the stored row is finished
	}
	r.Attempts = []store.Attempt{
		{DeliveryID: "dlv_retry", N: 2, StartedAt: at(31), Duration: time.Second, Error: "timeout"},
		{DeliveryID: "dlv_000", N: 1, StartedAt: at(99), Duration: time.Hour, StatusCode: 500}, // a second copy
	}
	r.Counters = []store.EndpointCounter{
		{WebhookID: "wh_flaky", Failures: 1, FirstFailureAt: at(32)},
		{WebhookID: "wh_ok", Reset: true},
	}
	r.Failing = &store.FailingEndpoints{WebhookIDs: []string{"wh_flaky"}, Threshold: 2, SpanUntil: at(20)}
	disabled, err = q.RecordResults(ctx, r, disabled[:0])
	if err != nil {
		t.Fatal(err)
	}
	if len(disabled) != 1 || disabled[0].ID != "wh_flaky" || disabled[0].Reason != "disabled after 2 consecutive failed attempts" {
		t.Fatalf("disabled %+v, want wh_flaky after 2 consecutive failed attempts", disabled)
	}
	if s := readWebhook(t, db, "wh_flaky"); s.failures != 2 || s.first != store.Micros(at(3)) || !s.disabled {
		t.Fatalf("wh_flaky = %+v, want 2 failures since at(3), disabled", s)
	}
	if s := readWebhook(t, db, "wh_ok"); s.failures != 0 || s.first != 0 {
		t.Fatalf("wh_ok = %+v, want its counter reset", s)
	}
	if got, _ := q.Get(ctx, "dlv_000"); got.Status != store.DeliverySucceeded || got.Attempts != 1 {
		t.Fatalf("a stale outcome overwrote a finished delivery: %+v", got)
	}
	if got, _ := q.Get(ctx, "dlv_retry"); got.Attempts != 2 || !got.NextAttemptAt.Equal(at(90)) {
		t.Fatalf("dlv_retry = %+v, want attempt 2, due at(90)", got)
	}
	log, err := q.Attempts(ctx, "dlv_000")
	if err != nil || len(log) != 1 || log[0].StatusCode != 204 {
		t.Fatalf("dlv_000's attempt log = %+v, %v; want the first copy only", log, err)
	}
	// A gone endpoint that is disabled already is not reported twice.
	disabled, err = q.RecordResults(ctx, &store.DeliveryResults{Now: at(50), Gone: []string{"wh_gone"}}, nil)
	if err != nil || len(disabled) != 0 {
		t.Fatalf("disabling a disabled endpoint again: %+v, %v", disabled, err)
	}
	// A failing batch writes nothing of itself: the delivery's row stays as it was.
	bad := &store.DeliveryResults{Now: at(60), Deliveries: []store.Delivery{d("dlv_new", "wh_ok", store.DeliverySucceeded, 1, time.Time{})},
		Attempts: []store.Attempt{{DeliveryID: "dlv_new", N: 1, StartedAt: at(1), ResponseBody: "nul\x00"}}}
	if _, err := q.RecordResults(ctx, bad, nil); err == nil {
		t.Log("this database stores NUL in text; nothing to roll back")
	} else if _, err := q.Get(ctx, "dlv_new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed batch left its delivery behind: %v", err)
	}
}

// testRecordResultsInTx records results inside a transaction of the driver: rolled back,
// nothing remains.
func testRecordResultsInTx(t *testing.T, db *store.DB) {
	ctx := context.Background()
	errRollback := errors.New("rollback")
	r := &store.DeliveryResults{Now: at(1), Deliveries: []store.Delivery{{ID: "dlv_tx", EventID: "e", WebhookID: "w", SurveyID: "s",
		Type: "t", URL: "u", Status: store.DeliverySucceeded, Attempts: 1, CreatedAt: at(0), UpdatedAt: at(1)}}}
	err := db.Driver.InTx(ctx, func(tx store.Executor) error {
		if _, err := tx.Deliveries().RecordResults(ctx, r, nil); err != nil {
			return err
		}
		if _, err := tx.Deliveries().Get(ctx, "dlv_tx"); err != nil {
			return fmt.Errorf("the transaction does not see its own write: %w", err)
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if _, err := db.Driver.Deliveries().Get(ctx, "dlv_tx"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rolled back batch left its delivery: %v", err)
	}
	if _, err := db.Driver.Deliveries().RecordResults(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Driver.Deliveries().Get(ctx, "dlv_tx"); err != nil {
		t.Fatal(err)
	}
}

func testDeliveryList(t *testing.T, db *store.DB) {
	ctx := context.Background()
	q := db.Driver.Deliveries()
	// 30 deliveries one second apart; two share a created_at (the id breaks the tie).
	for i := range 30 {
		survey, webhook, status, typ := "s1", "wh_1", store.DeliverySucceeded, "survey.session.submitted"
		if i%3 == 0 {
			survey, webhook = "s2", "wh_2"
		}
		if i%5 == 0 {
			status = store.DeliveryFailed
		}
		if i%7 == 0 {
			typ = "webhook.test"
		}
		created := at(i)
		if i == 11 {
			created = at(10)
		}
		insertDelivery(t, db, store.Delivery{ID: fmt.Sprintf("dlv_%02d", i), EventID: "e", WebhookID: webhook, SurveyID: survey,
			Type: typ, URL: "u", Status: status, CreatedAt: created, UpdatedAt: created})
	}
	list := func(f store.DeliveryFilter) []string {
		t.Helper()
		got, err := q.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, d := range got {
			ids = append(ids, strings.TrimPrefix(d.ID, "dlv_"))
		}
		return ids
	}
	if got := strings.Join(list(store.DeliveryFilter{Limit: 5}), " "); got != "29 28 27 26 25" {
		t.Fatalf("newest five: %s", got)
	}
	// Paging with the cursor visits every delivery once, in order, across the tie.
	var all []string
	f := store.DeliveryFilter{Limit: 4}
	for {
		page, err := q.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			all = append(all, strings.TrimPrefix(d.ID, "dlv_"))
		}
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.Before = &store.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if len(all) != 30 || all[18] != "11" || all[19] != "10" || all[29] != "00" {
		t.Fatalf("pages visited %v", all)
	}
	if got := strings.Join(list(store.DeliveryFilter{SurveyID: "s2", Status: []string{store.DeliveryFailed}, Limit: 50}), " "); got != "15 00" {
		t.Fatalf("s2's failed: %s", got)
	}
	if got := strings.Join(list(store.DeliveryFilter{Surveys: []string{"s2"}, Type: "webhook.test", Limit: 50}), " "); got != "21 00" {
		t.Fatalf("s2's tests: %s", got)
	}
	if got := list(store.DeliveryFilter{Surveys: []string{}, Limit: 50}); len(got) != 0 {
		t.Fatalf("an empty scope lists %v", got)
	}
	if got := strings.Join(list(store.DeliveryFilter{WebhookID: "wh_1", Since: at(20), Until: at(25), Limit: 50}), " "); got != "23 22 20" {
		t.Fatalf("wh_1 in [20, 25): %s", got)
	}
	// The cursor and until together: the tighter one bounds the page.
	before := &store.DeliveryCursor{CreatedAt: at(5), ID: "dlv_05"}
	if got := strings.Join(list(store.DeliveryFilter{Until: at(3), Before: before, Limit: 50}), " "); got != "02 01 00" {
		t.Fatalf("until 3 before 5: %s", got)
	}
	if got := strings.Join(list(store.DeliveryFilter{Until: at(20), Before: before, Limit: 50}), " "); got != "04 03 02 01 00" {
		t.Fatalf("until 20 before 5: %s", got)
	}
}

func testReplay(t *testing.T, db *store.DB) {
	ctx := context.Background()
	q := db.Driver.Deliveries()
	addWebhook(t, db, "s1", "wh_1", "http://127.0.0.1/now", false)
	addWebhook(t, db, "s1", "wh_off", "http://127.0.0.1/off", true)
	for i := range 10 {
		wh, status := "wh_1", store.DeliveryFailed
		if i == 9 {
			wh = "wh_off"
		}
		if i == 8 {
			status = store.DeliverySucceeded
		}
		insertDelivery(t, db, store.Delivery{ID: fmt.Sprintf("dlv_%02d", i), EventID: fmt.Sprintf("evt_%d", i), WebhookID: wh,
			SurveyID: "s1", Type: "survey.session.submitted", URL: "http://127.0.0.1/then", Status: status, Attempts: 3,
			CreatedAt: at(i), UpdatedAt: at(i)})
	}
	// dlv_07 was replayed already.
	insertDelivery(t, db, store.Delivery{ID: "dlv_r07", EventID: "evt_7", WebhookID: "wh_1", SurveyID: "s1", Type: "survey.session.submitted",
		URL: "u", Status: store.DeliveryFailed, ReplayOf: "dlv_07", CreatedAt: at(7), UpdatedAt: at(7)})

	m := store.ReplayMatch{Status: []string{store.DeliveryFailed}, Since: at(0), Until: at(100)}
	if n, err := q.CountReplay(ctx, m); err != nil || n != 8 {
		// 0–6 and dlv_r07: not 7 (replayed), 8 (succeeded), 9 (disabled endpoint).
		t.Fatalf("CountReplay = %d, %v; want 8", n, err)
	}
	if n, err := q.CountReplay(ctx, store.ReplayMatch{Status: []string{store.DeliverySucceeded, store.DeliveryFailed},
		SurveyID: "s1", WebhookID: "wh_1", Type: "survey.session.submitted", Since: at(2), Until: at(9)}); err != nil || n != 7 {
		t.Fatalf("CountReplay of [2, 9) = %d, %v; want 7", n, err)
	}
	end, err := q.ReplayBatchEnd(ctx, m, 3)
	if err != nil || end.ID != "dlv_02" || !end.CreatedAt.Equal(at(2)) {
		t.Fatalf("ReplayBatchEnd(3) = %+v, %v; want dlv_02", end, err)
	}
	if _, err := q.ReplayBatchEnd(ctx, m, 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplayBatchEnd past the end: %v, want ErrNotFound", err)
	}
	// The first batch: up to dlv_02.
	first := m
	first.Through, first.Exclude = &end, "rpl_1"
	n, err := q.EnqueueReplay(ctx, first, "rpl_1", at(200))
	if err != nil || n != 3 {
		t.Fatalf("EnqueueReplay = %d, %v; want 3", n, err)
	}
	rows, err := q.List(ctx, store.DeliveryFilter{Since: at(200), Limit: 50})
	if err != nil || len(rows) != 3 {
		t.Fatalf("replay deliveries %+v, %v", rows, err)
	}
	seen := map[string]bool{}
	for _, d := range rows {
		if !strings.HasPrefix(d.ID, "dlv_") || len(d.ID) != 36 || seen[d.ID] || d.ReplayID != "rpl_1" ||
			d.Status != store.DeliveryPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(at(200)) ||
			d.URL != "http://127.0.0.1/now" || d.EventID != "evt_"+strings.TrimPrefix(d.ReplayOf, "dlv_0") {
			t.Fatalf("replay delivery %+v", d)
		}
		seen[d.ID] = true
	}
	// The rest, after the cursor: the replay's own deliveries never match again.
	rest := m
	rest.After, rest.Exclude = &end, "rpl_1"
	rest.Until = at(300)
	if n, err := q.EnqueueReplay(ctx, rest, "rpl_1", at(201)); err != nil || n != 5 {
		t.Fatalf("the rest: %d, %v; want 5", n, err)
	}
	if n, err := q.CountReplay(ctx, store.ReplayMatch{Status: []string{store.DeliveryFailed}, Since: at(0), Until: at(100)}); err != nil || n != 0 {
		t.Fatalf("after the replay %d deliveries still match (%v): replayed deliveries must not", n, err)
	}
}

func testReplayRecords(t *testing.T, db *store.DB) {
	ctx := context.Background()
	q := db.Driver.Deliveries()
	r1 := &store.ReplayRecord{ID: "rpl_1", Filter: []byte(`{"status":["failed"]}`), FilterKey: "k1", Matched: 10,
		Status: store.ReplayRunning, CreatedBy: "usr_1", CreatedAt: at(1)}
	if err := q.InsertReplay(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := q.InsertReplay(ctx, &store.ReplayRecord{ID: "rpl_2", Filter: []byte(`{}`), FilterKey: "k1", Status: store.ReplayRunning,
		CreatedAt: at(2)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second running replay of a filter: %v, want ErrConflict", err)
	}
	done := &store.ReplayRecord{ID: "rpl_3", Filter: []byte(`{}`), FilterKey: "k1", Status: store.ReplayCompleted, CreatedAt: at(3),
		EnqueuedAt: at(3)}
	if err := q.InsertReplay(ctx, done); err != nil {
		t.Fatalf("a completed replay beside a running one: %v", err)
	}
	if running, err := q.ReplayRunning(ctx, "k1"); err != nil || !running {
		t.Fatalf("ReplayRunning(k1) = %v, %v", running, err)
	}
	if running, err := q.ReplayRunning(ctx, "k2"); err != nil || running {
		t.Fatalf("ReplayRunning(k2) = %v, %v", running, err)
	}
	got, err := q.GetReplay(ctx, "rpl_1")
	if err != nil || got.ID != "rpl_1" || got.FilterKey != "k1" || got.Matched != 10 || got.Status != store.ReplayRunning ||
		got.CreatedBy != "usr_1" || !got.CreatedAt.Equal(at(1)) || !got.UpdatedAt.Equal(at(1)) || !got.EnqueuedAt.IsZero() ||
		got.Cursor != nil || !strings.Contains(string(got.Filter), `"failed"`) {
		t.Fatalf("GetReplay = %+v, %v", got, err)
	}
	if _, err := q.GetReplay(ctx, "rpl_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetReplay of a missing replay: %v", err)
	}

	// Batches: NextReplay takes the running replay with batches left.
	next, err := q.NextReplay(ctx)
	if err != nil || next.ID != "rpl_1" {
		t.Fatalf("NextReplay = %+v, %v", next, err)
	}
	cursor := store.DeliveryCursor{CreatedAt: at(5), ID: "dlv_05"}
	if err := q.ReplayProgress(ctx, "rpl_1", 4, cursor, at(6)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_1"); got.Enqueued != 4 || got.Cursor == nil || *got.Cursor != cursor || !got.UpdatedAt.Equal(at(6)) {
		t.Fatalf("after progress: %+v", got)
	}
	if ids, err := q.EnqueuingReplays(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("EnqueuingReplays while batches remain = %v, %v", ids, err)
	}
	if err := q.ReplayEnqueued(ctx, "rpl_1", 6, store.ReplayRunning, at(7)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_1"); got.Enqueued != 6 || got.Matched != 6 || !got.EnqueuedAt.Equal(at(7)) {
		t.Fatalf("after the last batch: %+v", got)
	}
	if _, err := q.NextReplay(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("NextReplay with no batches left: %v", err)
	}
	if ids, err := q.EnqueuingReplays(ctx); err != nil || fmt.Sprint(ids) != "[rpl_1]" {
		t.Fatalf("EnqueuingReplays = %v, %v", ids, err)
	}

	// Outcomes and completion.
	for i, status := range []string{store.DeliverySucceeded, store.DeliverySucceeded, store.DeliveryFailed, store.DeliverySkipped,
		store.DeliveryPending, store.DeliveryPending} {
		insertDelivery(t, db, store.Delivery{ID: fmt.Sprintf("dlv_r%d", i), EventID: "e", WebhookID: "w", SurveyID: "s", Type: "t",
			URL: "u", Status: status, ReplayID: "rpl_1", CreatedAt: at(7), UpdatedAt: at(7)})
	}
	oc, err := q.ReplayOutcomes(ctx, "rpl_1")
	if err != nil || oc[store.DeliverySucceeded] != 2 || oc[store.DeliveryFailed] != 1 || oc[store.DeliverySkipped] != 1 ||
		oc[store.DeliveryPending] != 2 {
		t.Fatalf("ReplayOutcomes = %v, %v", oc, err)
	}
	if err := q.RefreshReplay(ctx, "rpl_1", 4, at(8)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_1"); got.Done != 4 || got.Status != store.ReplayRunning {
		t.Fatalf("with 2 pending: %+v", got)
	}
	if err := q.RefreshReplay(ctx, "rpl_1", 6, at(9)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_1"); got.Done != 6 || got.Status != store.ReplayCompleted || !got.UpdatedAt.Equal(at(9)) {
		t.Fatalf("all done: %+v", got)
	}
	// A completed replay is not failed, and no longer refreshed.
	if err := q.FailReplay(ctx, "rpl_1", "why", at(10)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_1"); got.Status != store.ReplayCompleted || got.Error != "" {
		t.Fatalf("FailReplay changed a completed replay: %+v", got)
	}
	if err := q.InsertReplay(ctx, &store.ReplayRecord{ID: "rpl_4", Filter: []byte(`{}`), FilterKey: "k4", Status: store.ReplayRunning,
		CreatedAt: at(11)}); err != nil {
		t.Fatal(err)
	}
	if err := q.FailReplay(ctx, "rpl_4", "the stored filter is unreadable", at(12)); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.GetReplay(ctx, "rpl_4"); got.Status != store.ReplayFailed || got.Error != "the stored filter is unreadable" {
		t.Fatalf("after FailReplay: %+v", got)
	}
}
