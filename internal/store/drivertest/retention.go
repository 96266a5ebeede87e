package drivertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// testRetention runs the retention queries' part of the suite: the leases table, the purge of
// deliveries with their attempts, and of published events, the pruning of tombstones, and
// the hold a replay takes on the delivery it replays.
func testRetention(t *testing.T, open Opener) {
	t.Run("Leases", func(t *testing.T) { testLeases(t, open(t)) })
	t.Run("PurgeDeliveries", func(t *testing.T) { testPurgeDeliveries(t, open(t)) })
	t.Run("PurgeDeliveriesLimit", func(t *testing.T) { testPurgeDeliveriesLimit(t, open(t)) })
	t.Run("PurgePublished", func(t *testing.T) { testPurgePublished(t, open(t)) })
	t.Run("PurgePublishedCursor", func(t *testing.T) { testPurgePublishedCursor(t, open(t)) })
	t.Run("ReclaimSpace", func(t *testing.T) { testReclaimSpace(t, open(t)) })
	t.Run("PruneTombstones", func(t *testing.T) { testPruneTombstones(t, open(t)) })
	t.Run("Hold", func(t *testing.T) { testHold(t, open(t)) })
}

// SeedDelivery stores a delivery of event ev with status and updated_at, and n attempts.
func SeedDelivery(t testing.TB, db *store.DB, id, ev, status string, updated time.Time, n int) {
	t.Helper()
	ctx := context.Background()
	us := store.Micros(updated)
	if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
		created_at, updated_at) VALUES ($1, $2, 'wh_1', 's', 'survey.session.submitted', 'https://example.com/h', $3, $4, $5, $6)`,
		id, ev, status, n, us-int64(n)*1000, us); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := db.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, response_body)
			VALUES ($1, $2, $3, 12, 500, 'oops')`, id, i, us-int64(n-i+1)*1000); err != nil {
			t.Fatal(err)
		}
	}
}

// SeedEvent stores event id, published at `published` (the zero time: not published).
func SeedEvent(t testing.TB, db *store.DB, id string, created, published time.Time) {
	t.Helper()
	ev := store.Event{ID: id, Type: "survey.session.submitted", SurveyID: "s", Subject: "dispatch24.events.s.survey.session.submitted",
		Payload: []byte(`{"id":"` + id + `"}`), CreatedAt: created}
	ctx := context.Background()
	if err := db.Driver.Events().Insert(ctx, time.Time{}, []store.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if !published.IsZero() {
		if err := db.Driver.Events().MarkPublished(ctx, published, []string{id}); err != nil {
			t.Fatal(err)
		}
	}
}

func retentionCount(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	return intakeCount(t, db, query, args...)
}

// Leases: one holder at a time; the holder renews; an expired lease goes to the next taker;
// Release frees only the holder's own.
func testLeases(t *testing.T, db *store.DB) {
	ctx := context.Background()
	l := db.Driver.Leases()
	now := time.Now().UTC().Truncate(time.Microsecond)
	take := func(holder string, at time.Time, want bool) {
		t.Helper()
		got, err := l.TryAcquire(ctx, "purge", holder, at, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s at %s: acquired %v, want %v", holder, at.Sub(now), got, want)
		}
	}
	take("a", now, true)
	take("b", now.Add(time.Second), false)
	take("a", now.Add(30*time.Second), true) // renews until now+90s
	take("b", now.Add(80*time.Second), false)
	take("b", now.Add(91*time.Second), true) // expired
	take("a", now.Add(92*time.Second), false)
	if err := l.Release(ctx, "purge", "a"); err != nil { // not a's: nothing happens
		t.Fatal(err)
	}
	take("a", now.Add(93*time.Second), false)
	if err := l.Release(ctx, "purge", "b"); err != nil {
		t.Fatal(err)
	}
	take("a", now.Add(94*time.Second), true)
	// Another name is another lease.
	got, err := l.TryAcquire(ctx, "other", "b", now, now.Add(time.Minute))
	if err != nil || !got {
		t.Fatalf("another lease: %v, %v", got, err)
	}
}

// PurgeDeliveries deletes finished deliveries older than the cutoff with every attempt, and
// keeps recent ones, pending ones however old, and the attempts of both.
func testPurgeDeliveries(t *testing.T, db *store.DB) {
	ctx := context.Background()
	p := db.Driver.Deliveries()
	now := time.Now().UTC().Truncate(time.Microsecond)
	cutoff := now.Add(-24 * time.Hour)
	if oldest, err := p.OldestFinishedDelivery(ctx); err != nil || !oldest.IsZero() {
		t.Fatalf("oldest of none: %v, %v", oldest, err)
	}
	old := cutoff.Add(-time.Hour)
	SeedDelivery(t, db, "d_old_ok", "e1", "succeeded", old, 1)
	SeedDelivery(t, db, "d_old_failed", "e1", "failed", old.Add(-time.Hour), 3)
	SeedDelivery(t, db, "d_old_skipped", "e2", "skipped", cutoff.Add(-time.Microsecond), 0)
	SeedDelivery(t, db, "d_old_pending", "e2", "pending", old.Add(-1000*time.Hour), 2)
	SeedDelivery(t, db, "d_edge", "e3", "succeeded", cutoff, 1) // not before the cutoff
	SeedDelivery(t, db, "d_new", "e3", "failed", now, 2)
	oldest, err := p.OldestFinishedDelivery(ctx)
	if err != nil || !oldest.Equal(old.Add(-time.Hour)) {
		t.Fatalf("oldest finished delivery %v (%v), want %v", oldest, err, old.Add(-time.Hour))
	}
	got, err := p.PurgeDeliveries(ctx, time.Time{}, cutoff, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.PurgedDeliveries{Deliveries: 3, Attempts: 4, Last: cutoff.Add(-time.Microsecond)}); got != want {
		t.Fatalf("purged %+v, want %+v", got, want)
	}
	for id, want := range map[string]int{"d_old_ok": 0, "d_old_failed": 0, "d_old_skipped": 0, "d_old_pending": 1, "d_edge": 1, "d_new": 1} {
		if n := retentionCount(t, db, "SELECT count(*) FROM deliveries WHERE id = $1", id); n != want {
			t.Errorf("delivery %s: %d rows, want %d", id, n, want)
		}
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM delivery_attempts"); n != 5 {
		t.Errorf("%d attempts left, want 5 (pending 2, edge 1, new 2)", n)
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM delivery_attempts WHERE delivery_id IN ('d_old_ok', 'd_old_failed')"); n != 0 {
		t.Errorf("%d attempts of purged deliveries left", n)
	}
	again, err := p.PurgeDeliveries(ctx, time.Time{}, cutoff, 100)
	if err != nil || again != (store.PurgedDeliveries{}) {
		t.Fatalf("second purge: %+v, %v", again, err)
	}
	if oldest, err := p.OldestFinishedDelivery(ctx); err != nil || !oldest.Equal(cutoff) {
		t.Fatalf("oldest finished delivery after the purge %v (%v), want %v", oldest, err, cutoff)
	}
}

// PurgeDeliveries takes at most limit deliveries, the oldest first, from `from` on (ties
// included), and says where the batch ended.
func testPurgeDeliveriesLimit(t *testing.T, db *store.DB) {
	ctx := context.Background()
	p := db.Driver.Deliveries()
	base := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := 0; i < 7; i++ {
		SeedDelivery(t, db, fmt.Sprintf("d_%d", i), "e", "succeeded", base.Add(time.Duration(i/2)*time.Second), 2)
	}
	SeedDelivery(t, db, "d_before", "e", "failed", base.Add(-time.Second), 1)
	cutoff := base.Add(time.Hour)
	got, err := p.PurgeDeliveries(ctx, base, cutoff, 3) // d_0, d_1 at base, one of d_2/d_3 at base+1s
	if want := (store.PurgedDeliveries{Deliveries: 3, Attempts: 6, Last: base.Add(time.Second)}); err != nil || got != want {
		t.Fatalf("first batch %+v, %v; want %+v", got, err, want)
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM deliveries WHERE id IN ('d_0', 'd_1', 'd_before')"); n != 1 {
		t.Errorf("d_0 and d_1 should be gone and d_before (before from) kept: %d of them left", n)
	}
	from := got.Last
	for _, want := range []int{3, 1, 0} {
		got, err := p.PurgeDeliveries(ctx, from, cutoff, 3)
		if err != nil || got.Deliveries != want || got.Attempts != 2*want {
			t.Fatalf("batch from %v: %+v, %v; want %d deliveries", from, got, err, want)
		}
		if want > 0 {
			from = got.Last
		} else if !got.Last.IsZero() {
			t.Errorf("an empty batch ended at %v", got.Last)
		}
	}
	if !from.Equal(base.Add(3 * time.Second)) {
		t.Errorf("the batches ended at %v, want %v", from, base.Add(3*time.Second))
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM deliveries"); n != 1 {
		t.Errorf("%d deliveries left, want d_before", n)
	}
}

// PurgePublished deletes old published events that no delivery refers to, and keeps
// unpublished ones however old, recent ones, and those a delivery still refers to.
func testPurgePublished(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	now := time.Now().UTC().Truncate(time.Microsecond)
	cutoff := now.Add(-24 * time.Hour)
	old := cutoff.Add(-time.Hour)
	if oldest, err := evs.OldestPublished(ctx); err != nil || !oldest.IsZero() {
		t.Fatalf("oldest of none: %v, %v", oldest, err)
	}
	SeedEvent(t, db, "e_old", old.Add(-time.Second), old)
	SeedEvent(t, db, "e_old_unpublished", old.Add(-1000*time.Hour), time.Time{})
	SeedEvent(t, db, "e_old_delivered", old, old.Add(time.Second))
	SeedDelivery(t, db, "d_1", "e_old_delivered", "succeeded", now, 1) // replayed lately
	SeedEvent(t, db, "e_old_pending", old, old.Add(2*time.Second))
	SeedDelivery(t, db, "d_2", "e_old_pending", "pending", old, 1)
	SeedEvent(t, db, "e_late", old, now) // created long ago, published only now
	SeedEvent(t, db, "e_new", now, now)
	if oldest, err := evs.OldestPublished(ctx); err != nil || !oldest.Equal(old) {
		t.Fatalf("oldest published %v (%v), want %v", oldest, err, old)
	}
	got, err := evs.PurgePublished(ctx, cutoff, store.EventCursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got.Deleted != 1 || got.Scanned != 3 || got.Next.ID != "e_old_pending" || !got.Next.PublishedAt.Equal(old.Add(2*time.Second)) {
		t.Fatalf("purged %+v, want 1 deleted of 3 scanned, next e_old_pending", got)
	}
	for id, want := range map[string]int{"e_old": 0, "e_old_unpublished": 1, "e_old_delivered": 1, "e_old_pending": 1, "e_late": 1, "e_new": 1} {
		if n := retentionCount(t, db, "SELECT count(*) FROM events WHERE id = $1", id); n != want {
			t.Errorf("event %s: %d rows, want %d", id, n, want)
		}
	}
	// Once its deliveries are gone, an event goes too.
	if _, err := db.Exec(ctx, "DELETE FROM deliveries WHERE id = 'd_1'"); err != nil {
		t.Fatal(err)
	}
	got, err = evs.PurgePublished(ctx, cutoff, store.EventCursor{}, 100)
	if err != nil || got.Deleted != 1 || got.Scanned != 2 {
		t.Fatalf("second purge %+v, %v; want 1 deleted of 2", got, err)
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM events WHERE id = 'e_old_delivered'"); n != 0 {
		t.Error("an event whose deliveries are gone was kept")
	}
}

// PurgePublished moves its window on past kept events, and stops at the end.
func testPurgePublishedCursor(t *testing.T, db *store.DB) {
	ctx := context.Background()
	evs := db.Driver.Events()
	base := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("e_%d", i)
		SeedEvent(t, db, id, base, base) // one publication time: the id orders them
		if i%2 == 0 {
			SeedDelivery(t, db, "d_"+id, id, "pending", base, 0)
		}
	}
	cutoff := base.Add(time.Hour)
	var cur store.EventCursor
	deleted, batches := 0, 0
	for {
		got, err := evs.PurgePublished(ctx, cutoff, cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		batches++
		deleted += got.Deleted
		if got.Scanned < 2 {
			if got.Scanned == 0 && got.Next != cur {
				t.Errorf("an empty window moved the cursor to %+v", got.Next)
			}
			break
		}
		if got.Next == cur {
			t.Fatal("the window did not move")
		}
		cur = got.Next
		if batches > 5 {
			t.Fatal("the window never ends")
		}
	}
	if deleted != 2 || batches != 3 {
		t.Fatalf("deleted %d in %d batches, want 2 in 3 (windows of 2, 2 and 1)", deleted, batches)
	}
	if n := retentionCount(t, db, "SELECT count(*) FROM events"); n != 3 {
		t.Fatalf("%d events left, want the 3 with pending deliveries", n)
	}
}

// ReclaimSpace runs (converting a new SQLite database to incremental auto-vacuum) and reports
// no free pages left after a step large enough.
func testReclaimSpace(t *testing.T, db *store.DB) {
	ctx := context.Background()
	p := db.Driver.Deliveries()
	base := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Microsecond)
	for i := 0; i < 200; i++ {
		SeedDelivery(t, db, fmt.Sprintf("d_%03d", i), "e", "failed", base, 3)
	}
	if _, err := p.PurgeDeliveries(ctx, time.Time{}, base.Add(time.Hour), 1000); err != nil {
		t.Fatal(err)
	}
	if left, err := p.ReclaimSpace(ctx, 0); err != nil || left < 0 {
		t.Fatalf("preparing: %d, %v", left, err)
	}
	if _, err := p.ReclaimSpace(ctx, 1); err != nil && !errors.Is(err, store.ErrVacuumNeeded) {
		t.Fatal(err)
	}
	left, err := p.ReclaimSpace(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d free pages left after reclaiming them all", left)
	}
}

// PruneTombstones deletes the tombstones of surveys deleted before the cutoff, and only
// those: a delivery time inside a pruned one is no longer reported purged by it (its age
// says so), one inside a kept one still is.
func testPruneTombstones(t *testing.T, db *store.DB) {
	ctx := context.Background()
	p := db.Driver.Deliveries()
	now := time.Now().UTC().Truncate(time.Microsecond)
	cutoff := now.Add(-24 * time.Hour)
	// Survey "old" lived from 10 days to 2 days ago; "new" from 10 hours to 1 hour ago; "edge"
	// was deleted exactly at the cutoff, which a delivery created then could still be inside.
	for _, sv := range []struct {
		id         string
		since, del time.Time
	}{{"old", now.Add(-240 * time.Hour), now.Add(-48 * time.Hour)}, {"new", now.Add(-10 * time.Hour), now.Add(-time.Hour)},
		{"edge", now.Add(-30 * time.Hour), cutoff}} {
		if _, err := p.DeleteSurvey(ctx, sv.id, sv.since, sv.del); err != nil {
			t.Fatal(err)
		}
	}
	n, err := p.PruneTombstones(ctx, cutoff)
	if err != nil || n != 1 {
		t.Fatalf("PruneTombstones = %d, %v; want 1 (the survey deleted before the cutoff)", n, err)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{now.Add(-72 * time.Hour), false}, {now.Add(-5 * time.Hour), true}, {cutoff.Add(-time.Hour), true}} {
		if got, err := p.Purged(ctx, c.at); err != nil || got != c.want {
			t.Errorf("Purged(%s ago) = %v, %v; want %v", now.Sub(c.at), got, err, c.want)
		}
	}
	if n, err := p.PruneTombstones(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second PruneTombstones = %d, %v; want 0", n, err)
	}
	if got := retentionCount(t, db, "SELECT count(*) FROM delivery_tombstones"); got != 2 {
		t.Fatalf("%d tombstones left, want 2", got)
	}
}

// Hold finds a stored delivery and answers ErrNotFound for one that is not; on PostgreSQL a
// held delivery is passed over by the purge (FOR UPDATE SKIP LOCKED), which does not wait
// for the hold, and goes at the next purge once released.
func testHold(t *testing.T, db *store.DB) {
	ctx := context.Background()
	old := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Microsecond)
	SeedDelivery(t, db, "d_held", "e_held", "succeeded", old, 1)
	cutoff := old.Add(time.Hour)
	err := db.Driver.InTx(ctx, func(tx store.Executor) error {
		if err := tx.Deliveries().Hold(ctx, "d_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Hold(missing) = %v, want ErrNotFound", err)
		}
		if err := tx.Deliveries().Hold(ctx, "d_held"); err != nil {
			return err
		}
		if db.Dialect != store.Postgres {
			return nil // SQLite: the write transaction itself keeps the purge out
		}
		got, err := db.Driver.Deliveries().PurgeDeliveries(ctx, time.Time{}, cutoff, 100)
		if err != nil {
			return err
		}
		if got.Deliveries != 0 || got.Attempts != 0 {
			t.Errorf("the purge deleted a held delivery: %+v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Driver.Deliveries().PurgeDeliveries(ctx, time.Time{}, cutoff, 100)
	if err != nil || got.Deliveries != 1 || got.Attempts != 1 {
		t.Fatalf("after the hold: PurgeDeliveries = %+v, %v; want the delivery and its attempt", got, err)
	}
}
