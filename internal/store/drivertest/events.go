package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testEvents(t *testing.T, open Opener) {
	t.Helper()
	t.Run("Insert", func(t *testing.T) { testEventsInsert(t, open(t)) })
	t.Run("InsertPublished", func(t *testing.T) { testEventsInsertPublished(t, open(t)) })
	t.Run("Claim", func(t *testing.T) { testEventsClaim(t, open(t)) })
	t.Run("ClaimConcurrent", func(t *testing.T) { testEventsClaimConcurrent(t, open(t)) })
	t.Run("MarkPublished", func(t *testing.T) { testEventsMarkPublished(t, open(t)) })
	t.Run("Release", func(t *testing.T) { testEventsRelease(t, open(t)) })
	t.Run("ByID", func(t *testing.T) { testEventsByID(t, open(t)) })
	t.Run("EraseUser", func(t *testing.T) { testEventsEraseUser(t, open(t)) })
	t.Run("DeleteSurvey", func(t *testing.T) { testEventsDeleteSurvey(t, open(t)) })
	t.Run("DataInSubmission", func(t *testing.T) { testEventsDataInSubmission(t, open(t)) })
}

// intakeEvents returns n events of survey s, created a millisecond apart from start.
func intakeEvents(prefix string, n int, start time.Time) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		id := fmt.Sprintf("%s_%04d", prefix, i)
		out[i] = store.Event{ID: id, Type: "survey.session.started", SurveyID: "s", Subject: "surveys.s.survey.session.started",
			Payload: []byte(`{"id":"` + id + `"}`), CreatedAt: start.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

func intakeIDs(evs []store.Event) []string {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	return ids
}

// Insert stores every field, leases as asked (none: NULL), stores version 0 as NULL, writes
// more rows than one statement takes, and refuses a duplicate id.
func testEventsInsert(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	many := intakeEvents("evt_many", 520, start) // more than one statement's chunk (500)
	if err := evs.Insert(ctx, time.Time{}, many); err != nil {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE claimed_until IS NULL AND published_at IS NULL
		AND webhooks_version IS NULL AND publish_attempts = 0`); n != len(many) {
		t.Fatalf("%d free events, want %d", n, len(many))
	}
	lease := start.Add(2 * time.Hour)
	one := intakeEvents("evt_one", 1, start)
	one[0].Trace = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	one[0].WebhooksVersion = 42
	if err := evs.Insert(ctx, lease, one); err != nil {
		t.Fatal(err)
	}
	var (
		typ, survey, subject string
		payload, headers     []byte
		created, claimed     int64
		version              int64
	)
	if err := db.QueryRow(ctx, `SELECT type, survey_id, subject, payload, headers, created_at, claimed_until, webhooks_version
		FROM events WHERE id = $1`, one[0].ID).Scan(&typ, &survey, &subject, &payload, &headers, &created, &claimed, &version); err != nil {
		t.Fatal(err)
	}
	if typ != one[0].Type || survey != "s" || subject != one[0].Subject || created != store.Micros(start) ||
		claimed != store.Micros(lease) || version != 42 {
		t.Errorf("stored %s %s %s created %d claimed %d version %d", typ, survey, subject, created, claimed, version)
	}
	if len(payload) == 0 || len(headers) < len(`{"traceparent":""}`) {
		t.Errorf("payload %s, headers %s", payload, headers)
	}
	if err := evs.Insert(ctx, time.Time{}, one); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate id: %v, want ErrConflict", err)
	}
	if err := evs.Insert(ctx, time.Time{}, nil); err != nil {
		t.Errorf("no events: %v", err)
	}
}

// A test send's event is archived as published: no claim takes it.
func testEventsInsertPublished(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	at := time.Now().Add(-time.Minute)
	ev := intakeEvents("evt_test", 1, at)[0]
	ev.Type = "webhook.test"
	ev.Trace = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if err := evs.InsertPublished(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = $1 AND type = 'webhook.test' AND published_at = $2
		AND created_at = $2 AND claimed_until IS NULL AND webhooks_version IS NULL`, ev.ID, store.Micros(at)); n != 1 {
		t.Fatalf("%d published test events stored as given, want 1", n)
	}
	claimed, err := evs.Claim(ctx, time.Now(), time.Now().Add(time.Minute), 10)
	if err != nil || len(claimed) != 0 {
		t.Fatalf("claimed %v, %v; want nothing", intakeIDs(claimed), err)
	}
	if err := evs.InsertPublished(ctx, ev); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate id: %v, want ErrConflict", err)
	}
}

// Claim takes free events and those whose lease ended, the oldest up to the limit, and
// returns them as stored; a lease still running keeps an event out.
func testEventsClaim(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	now := time.Now().UTC().Truncate(time.Microsecond)
	free := intakeEvents("evt_free", 3, now.Add(-time.Hour))
	free[1].Trace = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	free[2].WebhooksVersion = 9
	expired := intakeEvents("evt_expired", 1, now.Add(-2*time.Hour)) // the oldest
	held := intakeEvents("evt_held", 1, now.Add(-3*time.Hour))
	for _, c := range []struct {
		until time.Time
		evs   []store.Event
	}{{time.Time{}, free}, {now.Add(-time.Second), expired}, {now.Add(time.Minute), held}} {
		if err := evs.Insert(ctx, c.until, c.evs); err != nil {
			t.Fatal(err)
		}
	}
	until := now.Add(30 * time.Second)
	got, err := evs.Claim(ctx, now, until, 3)
	if err != nil {
		t.Fatal(err)
	}
	// The oldest three, returned in no particular order.
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	if ids := intakeIDs(got); fmt.Sprint(ids) != "[evt_expired_0000 evt_free_0000 evt_free_0001]" {
		t.Fatalf("claimed %v, want the expired one and the two oldest free ones", ids)
	}
	if e := got[2]; e.Trace["traceparent"] == "" || e.SurveyID != "s" || e.Type != free[1].Type ||
		e.Subject != free[1].Subject || !e.CreatedAt.Equal(free[1].CreatedAt) || string(e.Payload) != string(free[1].Payload) {
		t.Errorf("claimed %+v, want %+v", e, free[1])
	}
	if got[0].Trace != nil || got[0].WebhooksVersion != 0 {
		t.Errorf("event without trace or version claimed as %+v", got[0])
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE claimed_until = $1`, store.Micros(until)); n != 3 {
		t.Errorf("%d events leased until the claim's end, want 3", n)
	}
	// The claimed are held now: the next claim takes only what is left.
	got, err = evs.Claim(ctx, now, until, 10)
	if err != nil || len(got) != 1 || got[0].ID != "evt_free_0002" || got[0].WebhooksVersion != 9 {
		t.Fatalf("second claim %+v, %v; want evt_free_0002 of version 9", got, err)
	}
	if got, err = evs.Claim(ctx, now, until, 10); err != nil || len(got) != 0 {
		t.Fatalf("third claim %v, %v; want nothing", intakeIDs(got), err)
	}
	// Once every lease has ended, everything unpublished comes back.
	if got, err = evs.Claim(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 10); err != nil || len(got) != 5 {
		t.Fatalf("after the leases: %v, %v; want all 5", intakeIDs(got), err)
	}
}

// Concurrent claims take disjoint events.
func testEventsClaimConcurrent(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	now := time.Now()
	if err := evs.Insert(ctx, time.Time{}, intakeEvents("evt_c", 200, now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := db.Driver.Events().Claim(ctx, now, now.Add(time.Minute), 16)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 200 {
		t.Errorf("%d events claimed, want 200", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}

// MarkPublished marks exactly the given events, across several statements, in one
// transaction; a cancelled context marks nothing.
func testEventsMarkPublished(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	created := time.Now().Add(-time.Minute)
	all := intakeEvents("evt_m", 520, created)
	if err := evs.Insert(ctx, created.Add(time.Hour), all); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE events SET last_error = 'earlier failure', publish_attempts = 1 WHERE id = $1`, all[0].ID); err != nil {
		t.Fatal(err)
	}
	ids := intakeIDs(all)
	marked := ids[:len(ids)-3] // more than one statement's chunk
	now := time.Now()
	if err := evs.MarkPublished(ctx, now, marked); err != nil {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE published_at = $1 AND claimed_until IS NULL
		AND last_error IS NULL`, store.Micros(now)); n != len(marked) {
		t.Fatalf("%d published, want %d", n, len(marked))
	}
	if n := intakeCount(t, db, `SELECT coalesce(sum(publish_attempts), 0) FROM events`); n != len(marked)+1 {
		t.Errorf("%d publish attempts in all, want %d", n, len(marked)+1)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE published_at IS NULL AND claimed_until IS NOT NULL`); n != 3 {
		t.Fatalf("%d events left unpublished and leased, want 3", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := evs.MarkPublished(cctx, time.Now(), ids[len(ids)-3:]); err == nil {
		t.Fatal("marking with a cancelled context succeeded")
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE published_at IS NULL`); n != 3 {
		t.Fatalf("%d events unpublished after a failed mark, want 3", n)
	}
	// Inside the caller's transaction the marks roll back with it.
	errAbort := errors.New("abort")
	err := db.Driver.InTx(ctx, func(tx store.Executor) error {
		if err := tx.Events().MarkPublished(ctx, time.Now(), ids[len(ids)-3:]); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE published_at IS NULL`); n != 3 {
		t.Fatalf("%d events unpublished after a rolled back mark, want 3", n)
	}
}

// Release ends the lease of unpublished events and records the attempt and its reason;
// published events are left alone, and the released ones are claimed again at once.
func testEventsRelease(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	now := time.Now()
	all := intakeEvents("evt_r", 4, now.Add(-time.Minute))
	if err := evs.Insert(ctx, now.Add(time.Hour), all); err != nil {
		t.Fatal(err)
	}
	if err := evs.MarkPublished(ctx, now, []string{all[3].ID}); err != nil {
		t.Fatal(err)
	}
	if err := evs.Release(ctx, []string{all[0].ID, all[1].ID, all[3].ID}, "nats: timeout"); err != nil {
		t.Fatal(err)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE claimed_until IS NULL AND published_at IS NULL
		AND publish_attempts = 1 AND last_error = 'nats: timeout'`); n != 2 {
		t.Fatalf("%d released events, want 2", n)
	}
	if n := intakeCount(t, db, `SELECT count(*) FROM events WHERE id = $1 AND last_error IS NULL AND publish_attempts = 1`,
		all[3].ID); n != 1 {
		t.Error("releasing touched a published event")
	}
	got, err := evs.Claim(ctx, now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	ids := intakeIDs(got)
	sort.Strings(ids)
	if fmt.Sprint(ids) != fmt.Sprint([]string{all[0].ID, all[1].ID}) {
		t.Fatalf("claimed %v after the release, want the two released", ids)
	}
	if err := evs.Release(ctx, nil, "nothing"); err != nil {
		t.Errorf("releasing nothing: %v", err)
	}
}

// ByID reads events published or not, in chunks, leaving out unknown ids; CountUnpublished
// counts the backlog.
func testEventsByID(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	created := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	all := intakeEvents("evt_b", 510, created) // more than one statement's chunk (500)
	all[0].Trace = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	all[0].WebhooksVersion = 3
	if err := evs.Insert(ctx, time.Time{}, all); err != nil {
		t.Fatal(err)
	}
	published := intakeEvents("evt_p", 1, created)[0]
	if err := evs.InsertPublished(ctx, published); err != nil {
		t.Fatal(err)
	}
	if n, err := evs.CountUnpublished(ctx); err != nil || n != len(all) {
		t.Fatalf("CountUnpublished = %d, %v; want %d", n, err, len(all))
	}
	ids := append(intakeIDs(all), published.ID, "evt_unknown")
	got, err := evs.ByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all)+1 {
		t.Fatalf("read %d events, want %d", len(got), len(all)+1)
	}
	byID := map[string]store.Event{}
	for _, e := range got {
		byID[e.ID] = e
	}
	if e := byID[all[0].ID]; e.Trace["traceparent"] == "" || e.WebhooksVersion != 3 || !e.CreatedAt.Equal(created) ||
		string(e.Payload) != string(all[0].Payload) || e.Subject != all[0].Subject || e.Type != all[0].Type || e.SurveyID != "s" {
		t.Errorf("read %+v, want %+v", e, all[0])
	}
	if _, ok := byID[published.ID]; !ok {
		t.Error("the published event was not read")
	}
	if got, err := evs.ByID(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v, %v", got, err)
	}
	if err := evs.MarkPublished(ctx, time.Now(), intakeIDs(all[:10])); err != nil {
		t.Fatal(err)
	}
	if n, err := evs.CountUnpublished(ctx); err != nil || n != len(all)-10 {
		t.Fatalf("CountUnpublished after marking 10 = %d, %v; want %d", n, err, len(all)-10)
	}
}
