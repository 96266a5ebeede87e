package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// benchRows is the number of expired deliveries (each with one attempt) a purge benchmark
// seeds: BENCH_ROWS, default 100000.
func benchRows(b *testing.B) int {
	if v := os.Getenv("BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_ROWS=%q: want a positive number", v)
		}
		return n
	}
	return 100000
}

// benchDuration reads a duration from the environment variable name (0 when unset: the
// purger's default).
func benchDuration(b *testing.B, name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("%s=%q: want a duration", name, v)
	}
	return d
}

// benchStores are the stores a benchmark runs on: BENCH_STORE (postgres or sqlite), default
// both.
func benchStores(b *testing.B, fn func(b *testing.B, open func(b *testing.B) *store.DB)) {
	for name, open := range map[string]func(b *testing.B) *store.DB{
		"postgres": func(b *testing.B) *store.DB { return storetest.Postgres(b) },
		"sqlite":   func(b *testing.B) *store.DB { return storetest.SQLite(b) },
	} {
		if s := os.Getenv("BENCH_STORE"); s != "" && s != name {
			continue
		}
		b.Run(name, func(b *testing.B) { fn(b, open) })
	}
}

// seedExpired stores n finished deliveries last active 100 days ago, each with one attempt
// of a ~300-byte response body, and as many live ones (pending or recent) beside them, in one
// statement per table and chunk.
func seedExpired(b *testing.B, db *store.DB, n int) {
	b.Helper()
	ctx := context.Background()
	old := store.Micros(time.Now().Add(-100 * 24 * time.Hour))
	now := store.Micros(time.Now())
	const chunk = 50000
	for lo := 0; lo < 2*n; lo += chunk {
		hi := min(lo+chunk, 2*n)
		if _, err := db.Exec(ctx, `WITH RECURSIVE seq(i) AS (SELECT CAST($1 AS BIGINT) UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < CAST($2 AS BIGINT))
			INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, created_at, updated_at)
			SELECT 'dlv_' || i, 'evt_' || i, 'wh_' || (i % 20), 'demo-survey', 'survey.session.submitted',
				'https://receiver.example/hook', CASE WHEN i >= CAST($3 AS BIGINT) AND i % 2 = 0 THEN 'pending' ELSE 'succeeded' END, 1,
				CASE WHEN i < CAST($3 AS BIGINT) THEN CAST($4 AS BIGINT) ELSE CAST($5 AS BIGINT) END, CASE WHEN i < CAST($3 AS BIGINT) THEN CAST($4 AS BIGINT) + i ELSE CAST($5 AS BIGINT) END
			FROM seq`, lo, hi, n, old, now); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(ctx, `WITH RECURSIVE seq(i) AS (SELECT CAST($1 AS BIGINT) UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < CAST($2 AS BIGINT))
			INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, response_body)
			SELECT 'dlv_' || i, 1, CASE WHEN i < CAST($3 AS BIGINT) THEN CAST($4 AS BIGINT) + i ELSE CAST($5 AS BIGINT) END, 42, 200,
				'{"ok":true,"received":"' || i || '","note":"a receiver''s typical short answer, about three hundred bytes with this padding: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris"}'
			FROM seq`, lo, hi, n, old, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPurge purges BENCH_ROWS expired deliveries with their attempts, beside as many live
// ones, in the purger's batches (no pauses), and reports rows/s (deliveries + attempts) and
// the batches' p50 and max. Run it with -benchtime=1x:
//
//	go test -run '^$' -bench Purge -benchtime=1x ./internal/retention/
//	BENCH_STORE=postgres BENCH_ROWS=1000000 go test -run '^$' -bench 'Purge$' -benchtime=1x ./internal/retention/
func BenchmarkPurge(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(b *testing.B) *store.DB) {
		n := benchRows(b)
		for _, batch := range []int{1000, 5000} {
			b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
				var rows int
				var took time.Duration
				var batches []time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					db := open(b)
					seedExpired(b, db, n)
					purge := purgeOf(b, db)
					ctx := context.Background()
					cutoff := time.Now().Add(-90 * 24 * time.Hour)
					b.StartTimer()
					start := time.Now()
					var from time.Time
					for {
						t := time.Now()
						got, err := purge.PurgeDeliveries(ctx, from, cutoff, batch)
						if err != nil {
							b.Fatal(err)
						}
						batches = append(batches, time.Since(t))
						from = got.Last
						rows += got.Deliveries + got.Attempts
						if got.Deliveries < batch {
							break
						}
					}
					took += time.Since(start)
				}
				if rows != 2*n*b.N {
					b.Fatalf("purged %d rows, want %d", rows, 2*n*b.N)
				}
				slices.Sort(batches)
				b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
				b.ReportMetric(float64(batches[len(batches)/2].Microseconds())/1000, "p50-batch-ms")
				b.ReportMetric(float64(batches[len(batches)-1].Microseconds())/1000, "max-batch-ms")
			})
		}
	})
}

func purgeOf(b *testing.B, db *store.DB) store.Deliveries {
	b.Helper()
	return db.Driver.Deliveries()
}

// BenchmarkPurgeUnderWrites runs the purger (its default pacing, batches of 1000) over
// BENCH_ROWS expired deliveries while writers commit delivery results as the dispatcher does
// (insert a delivery and its attempt, one transaction each, 8 writers), and reports the
// writes' p99 with and without the purge, and the purge's rows/s.
//
//	go test -run '^$' -bench PurgeUnderWrites -benchtime=1x ./internal/retention/
func BenchmarkPurgeUnderWrites(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(b *testing.B) *store.DB) {
		n := benchRows(b)
		for i := 0; i < b.N; i++ {
			db := open(b)
			seedExpired(b, db, n)
			ctx := context.Background()
			// BENCH_BATCH_TARGET and BENCH_PAUSE try other settings than the defaults.
			p, err := retention.New(retention.Config{DB: db, Retention: 90 * 24 * time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				BatchTarget: benchDuration(b, "BENCH_BATCH_TARGET"), Pause: benchDuration(b, "BENCH_PAUSE")})
			if err != nil {
				b.Fatal(err)
			}
			base := writeLatencies(b, db, "base", 3*time.Second, nil)
			var res retention.Result
			during := writeLatencies(b, db, "during", 0, func() {
				var err error
				if res, err = p.PurgeOnce(ctx); err != nil {
					b.Error(err)
				}
			})
			if res.Deliveries != n {
				b.Fatalf("purged %+v, want %d deliveries", res, n)
			}
			b.ReportMetric(float64(res.Deliveries+res.Attempts)/res.Took.Seconds(), "purge-rows/s")
			b.ReportMetric(res.Took.Seconds(), "purge-s")
			b.ReportMetric(p99(base), "write-p99-ms-without")
			b.ReportMetric(p99(during), "write-p99-ms-during")
		}
	})
}

// writeLatencies runs 8 writers committing one delivery with its attempt per transaction, for
// d, or while work runs; it returns the commits' latencies.
func writeLatencies(b *testing.B, db *store.DB, prefix string, d time.Duration, work func()) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%s_%d_%d", prefix, w, i)
				now := store.Micros(time.Now())
				t := time.Now()
				err := db.InTx(ctx, func(tx store.Querier) error {
					if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
						created_at, updated_at) VALUES ($1, $1, 'wh_1', 's', 't', 'u', 'succeeded', 1, $2, $2)`, id, now); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code)
						VALUES ($1, 1, $2, 10, 200)`, id, now)
					return err
				})
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // a steady load, not a saturating one
			}
		}(w)
	}
	if work != nil {
		work()
	} else {
		time.Sleep(d)
	}
	cancel()
	wg.Wait()
	return lat
}

func p99(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return float64(lat[len(lat)*99/100].Microseconds()) / 1000
}

// BenchmarkPartitionDrop measures the alternative the purge does not use on PostgreSQL: the
// same rows in tables partitioned by last activity (deliveries by updated_at, attempts by
// started_at), the expired half in partitions of their own, dropped whole. It reports the
// drop's rows/s (deliveries + attempts) and duration.
//
//	BENCH_STORE=postgres go test -run '^$' -bench PartitionDrop -benchtime=1x ./internal/retention/
func BenchmarkPartitionDrop(b *testing.B) {
	if s := os.Getenv("BENCH_STORE"); s != "" && s != "postgres" {
		b.Skip("partitions are PostgreSQL's")
	}
	n := benchRows(b)
	ctx := context.Background()
	var took time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := storetest.Postgres(b)
		seedExpired(b, db, n)
		split := store.Micros(time.Now().Add(-90 * 24 * time.Hour))
		for _, st := range []string{
			"CREATE TABLE deliveries_part (LIKE deliveries) PARTITION BY RANGE (updated_at)",
			fmt.Sprintf("CREATE TABLE deliveries_part_old PARTITION OF deliveries_part FOR VALUES FROM (MINVALUE) TO (%d)", split),
			fmt.Sprintf("CREATE TABLE deliveries_part_new PARTITION OF deliveries_part FOR VALUES FROM (%d) TO (MAXVALUE)", split),
			// The primary key must hold the partition key: (id) alone cannot be unique.
			"ALTER TABLE deliveries_part ADD PRIMARY KEY (id, updated_at)",
			"CREATE TABLE attempts_part (LIKE delivery_attempts) PARTITION BY RANGE (started_at)",
			fmt.Sprintf("CREATE TABLE attempts_part_old PARTITION OF attempts_part FOR VALUES FROM (MINVALUE) TO (%d)", split),
			fmt.Sprintf("CREATE TABLE attempts_part_new PARTITION OF attempts_part FOR VALUES FROM (%d) TO (MAXVALUE)", split),
			"ALTER TABLE attempts_part ADD PRIMARY KEY (delivery_id, n, started_at)",
			"INSERT INTO deliveries_part SELECT * FROM deliveries",
			"INSERT INTO attempts_part SELECT * FROM delivery_attempts",
		} {
			if _, err := db.Exec(ctx, st); err != nil {
				b.Fatalf("%s: %v", st, err)
			}
		}
		var old int
		if err := db.QueryRow(ctx, "SELECT (SELECT count(*) FROM deliveries_part_old) + (SELECT count(*) FROM attempts_part_old)").Scan(&old); err != nil {
			b.Fatal(err)
		}
		if old != 2*n {
			b.Fatalf("%d rows in the old partitions, want %d", old, 2*n)
		}
		b.StartTimer()
		t := time.Now()
		for _, st := range []string{"ALTER TABLE deliveries_part DETACH PARTITION deliveries_part_old", "DROP TABLE deliveries_part_old",
			"ALTER TABLE attempts_part DETACH PARTITION attempts_part_old", "DROP TABLE attempts_part_old"} {
			if _, err := db.Exec(ctx, st); err != nil {
				b.Fatalf("%s: %v", st, err)
			}
		}
		took += time.Since(t)
	}
	b.ReportMetric(float64(2*n*b.N)/took.Seconds(), "rows/s")
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "drop-ms")
}
