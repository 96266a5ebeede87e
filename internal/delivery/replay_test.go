package delivery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// rangeHistory seeds, inside [t0, t0+1h): wh1 (s1) 10 failed, 3 succeeded, 2 pending; wh2 (s1,
// disabled) 4 failed; wh3 (s2) 5 failed; and outside it 2 failed of wh1.
func rangeHistory(t *testing.T, db *store.DB) {
	t.Helper()
	rows := failedRows("a", "wh1", "s1", 10, t0)
	for i, st := range []string{"succeeded", "succeeded", "succeeded", "pending", "pending"} {
		r := failedRows("b", "wh1", "s1", 5, t0.Add(20*time.Minute))[i]
		r.status = st
		rows = append(rows, r)
	}
	rows = append(rows, failedRows("c", "wh2", "s1", 4, t0)...)
	rows = append(rows, failedRows("d", "wh3", "s2", 5, t0)...)
	rows = append(rows, failedRows("e", "wh1", "s1", 2, t0.Add(2*time.Hour))...)
	insert(t, db, rows)
	if _, err := db.Exec(context.Background(), "UPDATE webhooks SET disabled = $1 WHERE id = 'wh2'", true); err != nil {
		t.Fatal(err)
	}
}

func rangeBody(extra map[string]any) map[string]any {
	body := map[string]any{"since": t0.Format(time.RFC3339), "until": t0.Add(time.Hour).Format(time.RFC3339)}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func (b *bundle) replay(t *testing.T, who string, body map[string]any) (int, map[string]any) {
	t.Helper()
	code, out, _ := b.do(t, who, "POST", "/api/admin/deliveries/replay", body)
	return code, out
}

func (b *bundle) progress(t *testing.T, who, id string) map[string]any {
	t.Helper()
	code, out, raw := b.do(t, who, "GET", "/api/admin/replays/"+id, nil)
	if code != http.StatusOK {
		t.Fatalf("progress: %d %s", code, raw)
	}
	return out
}

func expectProgress(t *testing.T, out map[string]any, matched, enqueued, done int, status string) {
	t.Helper()
	if out["matched"] != float64(matched) || out["enqueued"] != float64(enqueued) || out["done"] != float64(done) || out["status"] != status {
		t.Fatalf("progress %v, want matched %d enqueued %d done %d %s", out, matched, enqueued, done, status)
	}
}

func TestRangeReplayValidationAndReach(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		rangeHistory(t, db)
		for field, body := range map[string]map[string]any{
			"since":  {"until": t0.Format(time.RFC3339)},
			"until":  rangeBody(map[string]any{"until": t0.Format(time.RFC3339)}),
			"status": rangeBody(map[string]any{"status": []string{"pending"}}),
			"type":   rangeBody(map[string]any{"type": "nope"}),
		} {
			code, out := b.replay(t, asAdmin, body)
			expectValidation(t, code, out, field)
		}
		code, out := b.replay(t, asAdmin, rangeBody(map[string]any{"status": []string{}}))
		expectValidation(t, code, out, "status")
		code, out = b.replay(t, asAdmin, rangeBody(map[string]any{"since": "last tuesday"}))
		expectValidation(t, code, out, "since")
		code, out = b.replay(t, asAdmin, rangeBody(map[string]any{"dryRun": "yes"}))
		expectValidation(t, code, out, "dryRun")

		// Staff must name a survey they manage.
		code, out = b.replay(t, asStaff, rangeBody(nil))
		expectValidation(t, code, out, "surveyId")
		for _, body := range []map[string]any{
			rangeBody(map[string]any{"surveyId": "s2"}),
			rangeBody(map[string]any{"surveyId": "s1", "webhookId": "wh3"}), // wh3 is s2's
			rangeBody(map[string]any{"surveyId": "s1", "webhookId": "wh_nope"}),
		} {
			if code, out := b.replay(t, asStaff, body); code != http.StatusNotFound {
				t.Errorf("staff %v: %d %v", body, code, out)
			}
		}
		if code, out := b.replay(t, asStranger, rangeBody(map[string]any{"surveyId": "s1"})); code != http.StatusNotFound {
			t.Errorf("stranger: %d %v", code, out)
		}
		if code, _ := b.replay(t, asRespondent, rangeBody(map[string]any{"surveyId": "s1"})); code != http.StatusForbidden {
			t.Errorf("respondent: %d", code)
		}
		if n := count(t, db, "SELECT count(*) FROM replays"); n != 0 {
			t.Fatalf("refused requests wrote %d replays", n)
		}
	})
}

func TestRangeReplay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, 3) // several batches per replay
		rangeHistory(t, db)
		deliveries := count(t, db, "SELECT count(*) FROM deliveries")

		// Dry runs count (the disabled wh2 and the pending rows are not replayable) and write nothing.
		for _, c := range []struct {
			who  string
			body map[string]any
			want int
		}{
			{asAdmin, rangeBody(map[string]any{"dryRun": true}), 15},
			{asAdmin, rangeBody(map[string]any{"dryRun": true, "surveyId": "s2"}), 5},
			{asStaff, rangeBody(map[string]any{"dryRun": true, "surveyId": "s1"}), 10},
			{asStaff, rangeBody(map[string]any{"dryRun": true, "surveyId": "s1", "status": []string{"failed", "succeeded"}}), 13},
			{asStaff, rangeBody(map[string]any{"dryRun": true, "surveyId": "s1", "webhookId": "wh2"}), 0},
			{asAdmin, rangeBody(map[string]any{"dryRun": true, "type": "survey.session.started"}), 0},
			{asAdmin, rangeBody(map[string]any{"dryRun": true, "until": t0.Add(5 * time.Minute).Format(time.RFC3339)}), 10},
		} {
			code, out := b.replay(t, c.who, c.body)
			if code != http.StatusAccepted || out["matched"] != float64(c.want) || out["replayId"] != nil {
				t.Errorf("dry run %v: %d %v, want matched %d", c.body, code, out, c.want)
			}
		}
		if n := count(t, db, "SELECT count(*) FROM replays"); n != 0 {
			t.Fatalf("dry runs wrote %d replays", n)
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries"); n != deliveries {
			t.Fatalf("dry runs wrote deliveries")
		}

		code, out := b.replay(t, asStaff, rangeBody(map[string]any{"surveyId": "s1"}))
		if code != http.StatusAccepted || out["matched"] != float64(10) {
			t.Fatalf("replay: %d %v", code, out)
		}
		id := out["replayId"].(string)
		expectProgress(t, b.progress(t, asStaff, id), 10, 0, 0, "running")

		// The same filter again, however it is spelled, is refused while the first runs.
		for _, body := range []map[string]any{
			rangeBody(map[string]any{"surveyId": "s1"}),
			rangeBody(map[string]any{"surveyId": "s1", "status": []string{"failed", "failed"}}),
			rangeBody(map[string]any{"surveyId": "s1", "since": t0.In(time.FixedZone("x", -7200)).Format(time.RFC3339Nano)}),
		} {
			if code, out := b.replay(t, asAdmin, body); code != http.StatusConflict || out["code"] != "replay_running" {
				t.Fatalf("overlap %v: %d %v", body, code, out)
			}
		}
		// A dry run of it is still allowed.
		if code, out := b.replay(t, asAdmin, rangeBody(map[string]any{"surveyId": "s1", "dryRun": true})); code != http.StatusAccepted || out["matched"] != float64(10) {
			t.Fatalf("dry run while running: %d %v", code, out)
		}
		// An overlapping but different filter runs; it finds its deliveries replayed by the
		// first and enqueues nothing twice.
		code, out = b.replay(t, asAdmin, rangeBody(map[string]any{"surveyId": "s1", "status": []string{"failed", "succeeded"}}))
		if code != http.StatusAccepted || out["matched"] != float64(13) {
			t.Fatalf("second replay: %d %v", code, out)
		}
		second := out["replayId"].(string)

		if err := b.replayer.Process(ctx); err != nil {
			t.Fatal(err)
		}
		expectProgress(t, b.progress(t, asStaff, id), 10, 10, 0, "running")
		expectProgress(t, b.progress(t, asAdmin, second), 3, 3, 0, "running")
		// Enqueued, the first replay's range now matches nothing, yet it is still running:
		// the same filter is still refused.
		if code, out := b.replay(t, asAdmin, rangeBody(map[string]any{"surveyId": "s1"})); code != http.StatusConflict || out["code"] != "replay_running" {
			t.Fatalf("overlap after enqueueing: %d %v", code, out)
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries WHERE replay_id IS NOT NULL"); n != 13 {
			t.Fatalf("%d replay deliveries, want 13", n)
		}
		if n := count(t, db, `SELECT count(*) FROM deliveries r JOIN deliveries o ON o.id = r.replay_of
			WHERE r.replay_id = $1 AND r.status = 'pending' AND r.attempts = 0 AND r.next_attempt_at IS NOT NULL
			AND r.event_id = o.event_id AND r.webhook_id = o.webhook_id AND r.url = 'https://wh1.example/hook'
			AND o.status = 'failed' AND o.survey_id = 's1'`, id); n != 10 {
			t.Fatalf("%d well-formed replay deliveries, want 10", n)
		}

		// The engine finishes some, then all.
		if _, err := db.Exec(ctx, `UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL
			WHERE replay_id = $1 AND replay_of IN ('dlv_a_00000', 'dlv_a_00001', 'dlv_a_00002', 'dlv_a_00003')`, id); err != nil {
			t.Fatal(err)
		}
		expectProgress(t, b.progress(t, asStaff, id), 10, 10, 4, "running")
		if _, err := db.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL
			WHERE replay_id = $1 AND status = 'pending'`, id); err != nil {
			t.Fatal(err)
		}
		out = b.progress(t, asStaff, id)
		expectProgress(t, out, 10, 10, 10, "completed")
		if out["id"] != id || out["createdAt"] == nil {
			t.Fatalf("progress fields: %v", out)
		}
		// The Replayer notices completion on its own too.
		if _, err := db.Exec(ctx, "UPDATE deliveries SET status = 'succeeded' WHERE replay_id = $1", second); err != nil {
			t.Fatal(err)
		}
		if err := b.replayer.Process(ctx); err != nil {
			t.Fatal(err)
		}
		if rp, err := b.svc.Store().GetReplay(ctx, second); err != nil || rp.Status != delivery.ReplayCompleted || rp.Done != 3 {
			t.Fatalf("second replay after Process: %+v %v", rp, err)
		}

		// Once completed, the same filter may run again: the replayed originals are not
		// replayed twice, and the replays themselves fall outside the range.
		code, out = b.replay(t, asStaff, rangeBody(map[string]any{"surveyId": "s1"}))
		if code != http.StatusAccepted || out["matched"] != float64(0) {
			t.Fatalf("replay after completion: %d %v", code, out)
		}
		expectProgress(t, b.progress(t, asStaff, out["replayId"].(string)), 0, 0, 0, "completed")
		// A range that covers the replays replays the failed replays, once each.
		code, out = b.replay(t, asAdmin, map[string]any{"surveyId": "s1", "since": t0.Format(time.RFC3339),
			"until": time.Now().Add(time.Hour).Format(time.RFC3339), "dryRun": true})
		if code != http.StatusAccepted || out["matched"] != float64(6+2) { // 6 failed replays + the 2 later originals
			t.Fatalf("range over replays: %d %v", code, out)
		}

		// Reach: staff see their survey's replays only, never an admin's survey-wide one.
		code, out = b.replay(t, asAdmin, rangeBody(nil))
		if code != http.StatusAccepted {
			t.Fatalf("admin replay: %d %v", code, out)
		}
		wide := out["replayId"].(string)
		for _, c := range []struct {
			who, id string
			want    int
		}{{asAdmin, wide, 200}, {asStaff, wide, 404}, {asStaff, id, 200}, {asStranger, id, 404}, {asAdmin, "rpl_nope", 404}} {
			if code, _, raw := b.do(t, c.who, "GET", "/api/admin/replays/"+c.id, nil); code != c.want {
				t.Errorf("%s GET replay %s: %d %s", c.who, c.id, code, raw)
			}
		}
	})
}

func TestRangeReplayResumesInBatches(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n, batch = 1234, 100
		b := setup(t, db, batch)
		insert(t, db, failedRows("x", "wh1", "s1", n, t0.Add(-24*time.Hour)))

		code, out := b.replay(t, asAdmin, map[string]any{"since": t0.Add(-48 * time.Hour).Format(time.RFC3339), "until": t0.Format(time.RFC3339)})
		if code != http.StatusAccepted || out["matched"] != float64(n) {
			t.Fatalf("replay: %d %v", code, out)
		}
		id := out["replayId"].(string)

		// One batch, then the process "stops".
		res, err := b.svc.Store().EnqueueBatch(ctx, batch, time.Now())
		if err != nil || res.ReplayID != id || res.Enqueued != batch || res.Finished {
			t.Fatalf("first batch: %+v %v", res, err)
		}
		expectProgress(t, b.progress(t, asAdmin, id), n, batch, 0, "running")

		// Another process picks it up from the saved cursor.
		other, err := delivery.NewReplayer(delivery.ReplayerConfig{DB: db, BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Process(ctx); err != nil {
			t.Fatal(err)
		}
		expectProgress(t, b.progress(t, asAdmin, id), n, n, 0, "running")
		if got := count(t, db, "SELECT count(DISTINCT replay_of) FROM deliveries WHERE replay_id = $1", id); got != n {
			t.Fatalf("%d distinct replayed deliveries, want %d", got, n)
		}
		if got := count(t, db, "SELECT count(*) FROM deliveries WHERE replay_id = $1", id); got != n {
			t.Fatalf("%d replay deliveries, want %d", got, n)
		}
		if _, err := db.Exec(ctx, "UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL WHERE replay_id = $1", id); err != nil {
			t.Fatal(err)
		}
		if err := other.Process(ctx); err != nil {
			t.Fatal(err)
		}
		expectProgress(t, b.progress(t, asAdmin, id), n, n, n, "completed")
	})
}

func TestRangeReplayFailsOnBadFilter(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	ctx := context.Background()
	b := setup(t, db, 10)
	if _, err := db.Exec(ctx, `INSERT INTO replays (id, filter, filter_key, status, created_at, updated_at)
		VALUES ('rpl_bad', $1, 'k', 'running', 1, 1)`, []byte(`{"since": 7}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.replayer.Process(ctx); err == nil {
		t.Fatal("no error for an unreadable filter")
	}
	var status, reason string
	if err := db.QueryRow(ctx, "SELECT status, error FROM replays WHERE id = 'rpl_bad'").Scan(&status, &reason); err != nil || status != "failed" || reason == "" {
		t.Fatalf("bad replay: %s %q %v", status, reason, err)
	}
	// Nothing left to do afterwards.
	if err := b.replayer.Process(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReplayerRun(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	b := setup(t, db, 7)
	insert(t, db, failedRows("r", "wh1", "s1", 50, t0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.replayer.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	code, out := b.replay(t, asAdmin, rangeBody(nil))
	if code != http.StatusAccepted || out["matched"] != float64(50) {
		t.Fatalf("replay: %d %v", code, out)
	}
	id := out["replayId"].(string)
	// The request kicked the Replayer (its poll interval is an hour): wait for its batches.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := b.progress(t, asAdmin, id)
		if p["enqueued"] == float64(50) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not enqueued: %v", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
