package delivery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// BenchmarkRangeReplay100k measures a range replay of 100,000 failed deliveries: the request
// (count and record) and the Replayer's batches, each batch its own transaction.
func BenchmarkRangeReplay100k(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(d.name, func(b *testing.B) {
			const n = 100_000
			ctx := context.Background()
			db := d.open(b)
			bd := setup(b, db, 500)
			insert(b, db, failedRows("bench", "wh1", "s1", n, t0.Add(-100*24*time.Hour)))
			analyze(b, db)
			body := map[string]any{"since": t0.Add(-200 * 24 * time.Hour).Format(time.RFC3339), "until": t0.Format(time.RFC3339)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// Forget the previous iteration's replay, so the originals match again.
				if _, err := db.Exec(ctx, "DELETE FROM deliveries WHERE replay_id IS NOT NULL"); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Exec(ctx, "DELETE FROM replays"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				code, out, raw := bd.do(b, asAdmin, "POST", "/api/admin/deliveries/replay", body)
				if code != http.StatusAccepted || out["matched"] != float64(n) {
					b.Fatalf("replay: %d %s", code, raw)
				}
				if err := bd.replayer.Process(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := count(b, db, "SELECT count(*) FROM deliveries WHERE replay_id IS NOT NULL"); got != n {
				b.Fatalf("%d enqueued", got)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkListPage measures one page of the deliveries list over 100,000 deliveries, filtered
// by survey and status, continuing from a cursor deep in the history.
func BenchmarkListPage(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(d.name, func(b *testing.B) {
			const n = 100_000
			db := d.open(b)
			bd := setup(b, db, 500)
			rows := failedRows("list", "wh1", "s1", n, t0.Add(-100*24*time.Hour))
			for i := range rows {
				if i%2 == 0 {
					rows[i].status = "succeeded"
				}
			}
			insert(b, db, rows)
			analyze(b, db)
			_, out, _ := bd.do(b, asStaff, "GET", "/api/admin/deliveries?surveyId=s1&status=failed&limit=500", nil)
			for i := 0; i < 50; i++ { // 25,000 rows in
				_, out, _ = bd.do(b, asStaff, "GET", "/api/admin/deliveries?surveyId=s1&status=failed&limit=500&cursor="+out["nextCursor"].(string), nil)
			}
			path := "/api/admin/deliveries?surveyId=s1&status=failed&limit=50&cursor=" + out["nextCursor"].(string)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if code, _, raw := bd.do(b, asStaff, "GET", path, nil); code != http.StatusOK {
					b.Fatalf("%d %s", code, raw)
				}
			}
		})
	}
}

// analyze gives PostgreSQL the statistics autovacuum would have gathered by now on a table
// that grew gradually; a bulk-loaded, never-analyzed table makes it estimate a handful of rows
// and sort instead of walking the index. SQLite is left without statistics, as it runs in the
// embedded mode.
func analyze(b *testing.B, db *store.DB) {
	b.Helper()
	if db.Dialect != store.Postgres {
		return
	}
	if _, err := db.Exec(context.Background(), "ANALYZE deliveries"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReplayProgress measures GET /api/admin/replays/{id} of a replay of 500 deliveries
// in a table of 100,500: its succeeded and failed counts are read from the replay's own index
// range, so the cost follows the replay, not the table.
func BenchmarkReplayProgress(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(d.name, func(b *testing.B) {
			const n, replayed = 100_000, 500
			ctx := context.Background()
			db := d.open(b)
			bd := setup(b, db, 500)
			start := t0.Add(-100 * 24 * time.Hour)
			insert(b, db, failedRows("bench", "wh1", "s1", n, start))
			analyze(b, db)
			body := map[string]any{"since": start.Format(time.RFC3339), "until": start.Add(replayed * time.Minute).Format(time.RFC3339)}
			code, out, raw := bd.do(b, asAdmin, "POST", "/api/admin/deliveries/replay", body)
			if code != http.StatusAccepted || out["matched"] != float64(replayed) {
				b.Fatalf("replay: %d %s", code, raw)
			}
			id := out["replayId"].(string)
			if err := bd.replayer.Process(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(ctx, "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL WHERE replay_id = $1", id); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				code, out, raw := bd.do(b, asAdmin, "GET", "/api/admin/replays/"+id, nil)
				if code != http.StatusOK || out["failed"] != float64(replayed) || out["status"] != "completed" {
					b.Fatalf("progress: %d %s", code, raw)
				}
			}
		})
	}
}
