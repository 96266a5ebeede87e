package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestRangeReplayCountsOutcomes: a replay whose deliveries all fail again is completed with
// failed = done, not a success; a mixed one counts each outcome (skipped ones are done but
// neither).
func TestRangeReplayCountsOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, 2)
		rangeHistory(t, db)

		code, out := b.replay(t, asAdmin, rangeBody(map[string]any{"surveyId": "s2"}))
		if code != 202 {
			t.Fatalf("replay s2: %d %v", code, out)
		}
		allFailed := out["replayId"].(string)
		code, out = b.replay(t, asStaff, rangeBody(map[string]any{"surveyId": "s1"}))
		if code != 202 {
			t.Fatalf("replay s1: %d %v", code, out)
		}
		mixed := out["replayId"].(string)
		if err := b.replayer.Process(ctx); err != nil {
			t.Fatal(err)
		}
		expectOutcomes(t, b.progress(t, asAdmin, allFailed), 0, 0, 0, "running")

		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		exec("UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE replay_id = $1", allFailed)
		expectOutcomes(t, b.progress(t, asAdmin, allFailed), 5, 0, 5, "completed")
		// Completed replays are read without refreshing; the counts still come with them.
		expectOutcomes(t, b.progress(t, asAdmin, allFailed), 5, 0, 5, "completed")

		exec(`UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL
			WHERE replay_id = $1 AND replay_of IN ('dlv_a_00000', 'dlv_a_00001', 'dlv_a_00002', 'dlv_a_00003')`, mixed)
		exec(`UPDATE deliveries SET status = 'skipped', next_attempt_at = NULL WHERE replay_id = $1 AND replay_of = 'dlv_a_00004'`, mixed)
		expectOutcomes(t, b.progress(t, asStaff, mixed), 5, 4, 0, "running")
		exec("UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE replay_id = $1 AND status = 'pending'", mixed)
		expectOutcomes(t, b.progress(t, asStaff, mixed), 10, 4, 5, "completed")

		rp, err := b.svc.Store().GetReplay(ctx, mixed)
		if err != nil || rp.Done != 10 || rp.Succeeded != 4 || rp.Failed != 5 {
			t.Fatalf("GetReplay: %+v %v", rp, err)
		}
	})
}

func expectOutcomes(t *testing.T, out map[string]any, done, succeeded, failed int, status string) {
	t.Helper()
	if out["done"] != float64(done) || out["succeeded"] != float64(succeeded) || out["failed"] != float64(failed) || out["status"] != status {
		t.Fatalf("progress %v, want done %d succeeded %d failed %d %s", out, done, succeeded, failed, status)
	}
}

// TestReplayOutcomesUseTheIndex: the outcome counts can be answered from the replay_id index
// on both databases (the planners need no statistics to see it: SQLite's picks it; PostgreSQL's
// is asked to avoid a sequential scan and must still find a plan through the partial index).
func TestReplayOutcomesUseTheIndex(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var plan []string
		err := db.InTx(ctx, func(tx store.Querier) error {
			explain := "EXPLAIN QUERY PLAN "
			if db.Dialect == store.Postgres {
				if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
					return err
				}
				explain = "EXPLAIN "
			}
			rows, err := tx.Query(ctx, explain+delivery.ReplayOutcomesSQL, "rpl_x")
			if err != nil {
				return err
			}
			defer rows.Close()
			cols := 1
			if db.Dialect != store.Postgres {
				cols = 4 // id, parent, notused, detail
			}
			for rows.Next() {
				vals := make([]any, cols)
				ptrs := make([]any, cols)
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				plan = append(plan, fmt.Sprint(vals...))
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "deliveries_replay_idx") {
			t.Fatalf("the outcome count does not use deliveries_replay_idx:\n%s", text)
		}
	})
}

// TestReplayOfPendingSaysWhy: a range replay of pending deliveries is refused naming the
// field and the reason, in words rather than a Go slice.
func TestReplayOfPendingSaysWhy(t *testing.T) {
	t.Parallel()
	b := setup(t, storetest.SQLite(t), 10)
	for status, want := range map[string]string{
		"pending": "pending deliveries are still being attempted and cannot be replayed; use failed, skipped or succeeded",
		"bogus":   "each status must be failed, skipped or succeeded",
	} {
		code, out := b.replay(t, asAdmin, rangeBody(map[string]any{"status": []string{status}}))
		expectValidation(t, code, out, "status")
		errs, _ := out["errors"].([]any)
		if m, _ := errs[0].(map[string]any); m["message"] != want {
			t.Errorf("status %s: message %v, want %q", status, m["message"], want)
		}
	}
}
