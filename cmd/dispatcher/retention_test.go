package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/store"
)

// A purge running all along while the dispatcher delivers loses nothing pending: events go
// out in waves to a receiver that refuses each one's first two attempts, so deliveries sit
// pending for retries (which read their event from the archive) while a purger with a
// 2-second retention deletes, every 20 ms, whatever has finished or was published and has no
// delivery left, including thousands of expired deliveries seeded beforehand. Every event
// still reaches the receiver, the ancient pending delivery stays, and what finished long
// enough ago is gone.
func TestPurgeDuringDeliveryLosesNothingPending(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	// The receiver: 503 for the first two attempts of each event, then 204.
	var mu sync.Mutex
	tries := map[string]int{}
	w.rc.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d, err := w.rc.verifier.Verify(r.Header, body)
		if err != nil {
			w.rc.bad.Add(1)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		tries[d.ID]++
		n := tries[d.ID]
		mu.Unlock()
		if n <= 2 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.rc.mu.Lock()
		w.rc.seen[d.ID]++
		w.rc.mu.Unlock()
		w.rc.total.Add(1)
		rw.WriteHeader(http.StatusNoContent)
	})

	// Expired history to purge meanwhile, and one ancient delivery still pending.
	old := store.Micros(time.Now().Add(-100 * 24 * time.Hour))
	if _, err := w.db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, created_at, updated_at)
		SELECT 'dlv_old_' || i, 'evt_old_' || i, 'wh_kill', $1, 'survey.session.submitted', 'https://x', 'succeeded', 1, $2::bigint, $2::bigint + i
		FROM generate_series(1, 20000) AS i`, w.survey, old); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code)
		SELECT 'dlv_old_' || i, 1, $1, 5, 200 FROM generate_series(1, 20000) AS i`, old); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
		next_attempt_at, created_at, updated_at) VALUES ('dlv_ancient', 'evt_ancient', 'wh_kill', $1, 'survey.session.submitted',
		'https://x', 'pending', 3, $2, $3, $3)`, w.survey, store.Micros(time.Now().Add(24*time.Hour)), old); err != nil {
		t.Fatal(err)
	}

	env := w.env("WEBHOOK_RETRY_SCHEDULE", "0s,1s,2s,2s,2s,2s")
	var logs syncBuffer
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, nil, getenvFrom(env), io.Discard, &logs) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitListening(t, logs.String)

	purger, err := retention.New(retention.Config{DB: w.db, Retention: 2 * time.Second, FirstDelay: time.Millisecond,
		Interval: 20 * time.Millisecond, BatchSize: 500, Pause: time.Millisecond, Holder: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan error, 1)
	go func() { purged <- purger.Run(purgeCtx) }()

	const waves, perWave = 4, 150
	for i := 0; i < waves; i++ {
		w.publish(t, perWave)
		// Marked published once JetStream has them, as the outbox does.
		if _, err := w.db.Exec(ctx, "UPDATE events SET published_at = $1 WHERE published_at IS NULL", store.Micros(time.Now())); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	waitFor(t, 90*time.Second, fmt.Sprintf("all %d events delivered", waves*perWave), func() bool { return w.rc.distinct() == waves*perWave })
	if w.rc.bad.Load() != 0 {
		t.Errorf("%d deliveries failed verification", w.rc.bad.Load())
	}
	// Let the purge catch up with the expired history and with the waves' events that
	// finished over 2 s ago, then stop it.
	waitFor(t, 30*time.Second, "the expired history and the first waves to be purged", func() bool {
		var old, evs int
		if err := w.db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE id LIKE 'dlv_old_%'").Scan(&old); err != nil {
			t.Fatal(err)
		}
		if err := w.db.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&evs); err != nil {
			t.Fatal(err)
		}
		return old == 0 && evs < waves*perWave
	})
	stopPurge()
	if err := <-purged; err != nil {
		t.Fatal(err)
	}
	// The last results are written in batches after the receiver answered: wait for them.
	var pending, ancient, orphanAttempts int
	waitFor(t, 30*time.Second, "every delivery but the ancient one to finish", func() bool {
		if err := w.db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE status = 'pending' AND id <> 'dlv_ancient'").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
	if err := w.db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE id = 'dlv_ancient'").Scan(&ancient); err != nil {
		t.Fatal(err)
	}
	if err := w.db.QueryRow(ctx, "SELECT count(*) FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)").Scan(&orphanAttempts); err != nil {
		t.Fatal(err)
	}
	if pending != 0 || ancient != 1 || orphanAttempts != 0 {
		t.Errorf("pending left %d (want 0), ancient pending delivery rows %d (want 1), attempts without their delivery %d (want 0)",
			pending, ancient, orphanAttempts)
	}
	if n := w.rc.total.Load(); n < waves*perWave {
		t.Errorf("%d successful deliveries, want at least %d", n, waves*perWave)
	}
}
