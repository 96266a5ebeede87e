package dispatch

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// With a real dispatcher: a survey deleted while an attempt of one of its deliveries is in
// flight stays deleted (the attempt's result is dropped, not written back, and no error
// loop follows), and pending retries of erased events end without sending anything.
func TestErasureWithARunningDispatcher(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		release := make(chan struct{})
		slow := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int {
			<-release
			return http.StatusOK
		})
		fast := newReceiver(t, always(http.StatusOK))
		deleted := h.addSurvey("")
		h.storeDue(deleted, h.addEndpoint(deleted, slow.url()), 1)
		erased := h.addSurvey("")
		h.storeDue(erased, h.addEndpoint(erased, fast.url()), 3)
		ctx := context.Background()
		if _, err := db.Exec(ctx, `UPDATE events SET user_id = 'usr_gone' WHERE survey_id = $1`, erased); err != nil {
			t.Fatal(err)
		}
		if n, err := db.Driver.Events().EraseUser(ctx, "usr_gone", time.Now()); err != nil || n != 3 {
			t.Fatalf("EraseUser = %d, %v", n, err)
		}

		cfg := h.config("0s,1h")
		cfg.PollInterval = 50 * time.Millisecond
		stop := h.start(cfg)
		waitFor(t, "the deleted survey's attempt to reach its receiver", func() bool { return slow.count() == 1 })

		// As internal/survey's DeleteSurvey does, in one transaction; the tombstone covers
		// the survey's lifetime.
		since := time.Now().Add(-time.Hour)
		err := db.Driver.InTx(ctx, func(tx store.Executor) error {
			if _, err := tx.Events().DeleteSurvey(ctx, deleted); err != nil {
				return err
			}
			if _, err := tx.Deliveries().DeleteSurvey(ctx, deleted, since, time.Now()); err != nil {
				return err
			}
			return tx.Surveys().DeleteSurvey(ctx, deleted)
		})
		if err != nil {
			t.Fatal(err)
		}
		close(release)

		waitFor(t, "the erased events' deliveries to end", func() bool {
			return len(h.deliveries("survey_id = $1 AND status = 'failed' AND last_error = $2", erased, CodeEventMissing)) == 3
		})
		// Let the in-flight attempt finish and its result be written, then stop (the writer
		// flushes on the way out).
		waitFor(t, "the in-flight attempt to be answered", func() bool { return slow.count() == 1 })
		time.Sleep(300 * time.Millisecond)
		stop()
		if got := h.deliveries("survey_id = $1", deleted); len(got) != 0 {
			t.Errorf("the deleted survey's delivery came back: %+v", got)
		}
		var attempts int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM delivery_attempts a WHERE NOT EXISTS
			(SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)`).Scan(&attempts); err != nil || attempts != 0 {
			t.Errorf("%d attempts of no delivery, %v", attempts, err)
		}
		if n := fast.count(); n != 0 {
			t.Errorf("the receiver got %d erased events", n)
		}
		if n := slow.count(); n != 1 {
			t.Errorf("the deleted survey's receiver got %d requests, want the one in flight", n)
		}
	})
}
