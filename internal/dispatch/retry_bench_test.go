package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// BenchmarkClaimDue measures one claim of the retry scheduler (limit 256, 32 per endpoint,
// the production defaults on 2 cores) against a backlog of due deliveries: 1k, 10k and 100k
// rows (1M with BENCH_CLAIM_1M=1, about a minute of setup per case on PostgreSQL), spread over
// 1, 10 and 100 endpoints, first with no statistics (a fresh table, never analyzed), then after
// ANALYZE, and with stale statistics (analyzed while it held 50 rows); on PostgreSQL and SQLite. Every claim leases until its own "now" and the next one
// claims a microsecond later, so the backlog stays the same size.
//
// BENCH_CLAIM_LEGACY=1 adds the claim as it was before migration 070 ("legacy", on a schema
// with the index it used), for comparison. A legacy case whose first claim takes over 3 s is
// not repeated: it is skipped with that one claim's time in the message.
//
//	go test ./internal/dispatch -run '^$' -bench ClaimDue -benchtime 20x
func BenchmarkClaimDue(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000}
	if os.Getenv("BENCH_CLAIM_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	claims := []string{"claim"}
	if os.Getenv("BENCH_CLAIM_LEGACY") != "" {
		claims = append(claims, "legacy")
	}
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			for _, n := range sizes {
				for _, endpoints := range []int{1, 10, 100} {
					for _, claim := range claims {
						b.Run(fmt.Sprintf("rows=%d/endpoints=%d/%s", n, endpoints, claim), func(b *testing.B) {
							db := claimBenchDB(b, dialect, n, endpoints, claim == "legacy", false)
							for _, stats := range []string{"none", "analyzed"} {
								b.Run("stats="+stats, func(b *testing.B) {
									if stats == "analyzed" {
										if _, err := db.Exec(context.Background(), "ANALYZE deliveries"); err != nil {
											b.Fatal(err)
										}
									}
									benchClaim(b, db, n, endpoints, claim == "legacy")
								})
							}
							b.Run("stats=stale", func(b *testing.B) {
								db := claimBenchDB(b, dialect, n, endpoints, claim == "legacy", true)
								benchClaim(b, db, n, endpoints, claim == "legacy")
							})
						})
					}
				}
			}
		})
	}
}

// claimBenchBase is the due time of the newest backlog row; the claims run after it.
var claimBenchBase = store.Micros(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))

// claimBenchDB returns a database holding n due pending deliveries spread evenly over the
// endpoints, oldest first in id order. legacy swaps migration 070's index for the one the
// legacy claim used. stale analyzes the table while it holds 50 rows of one endpoint, half
// of them finished, before the backlog arrives.
func claimBenchDB(b *testing.B, dialect string, n, endpoints int, legacy, stale bool) *store.DB {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	var db *store.DB
	var fill string
	if dialect == "postgres" {
		db = storetest.Postgres(b)
		fill = `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, last_error,
			next_attempt_at, created_at, updated_at)
		SELECT 'dlv_' || lpad(g::text, 8, '0'), 'evt_' || g, 'wh_' || (g % $2::int), 's', 'survey.session.submitted',
			'http://127.0.0.1/hook', 'pending', 1, 'connection_error', $3::bigint - $1::int + g, 1, 1
		FROM generate_series(1, $1::int) g`
	} else {
		db = storetest.SQLite(b)
		fill = `WITH RECURSIVE g (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $1)
		INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, last_error,
			next_attempt_at, created_at, updated_at)
		SELECT printf('dlv_%08d', i), 'evt_' || i, 'wh_' || (i % $2), 's', 'survey.session.submitted',
			'http://127.0.0.1/hook', 'pending', 1, 'connection_error', $3 - $1 + i, 1, 1
		FROM g`
	}
	if legacy {
		for _, stmt := range []string{
			"DROP INDEX deliveries_pending_idx",
			"CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending'",
		} {
			if _, err := db.Exec(ctx, stmt); err != nil {
				b.Fatal(err)
			}
		}
	}
	if stale {
		for i := range 50 {
			status, next := StatusPending, any(claimBenchBase+3600_000_000+int64(i)) // due in an hour
			if i%2 == 0 {
				status, next = StatusSucceeded, nil
			}
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
				next_attempt_at, created_at, updated_at) VALUES ($1, 'evt_young', 'wh_young', 's', 't', 'u', $2, 1, $3, 1, 1)`,
				fmt.Sprintf("young_%02d", i), status, next); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := db.Exec(ctx, "ANALYZE deliveries"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, fill, n, endpoints, claimBenchBase); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d due rows over %d endpoints stored in %v", dialect, n, endpoints, time.Since(start).Round(time.Millisecond))
	return db
}

// benchClaim times claims; each leases until its own now, so the next finds the same backlog.
func benchClaim(b *testing.B, db *store.DB, n, endpoints int, legacy bool) {
	ctx := context.Background()
	claim := claimDue
	if legacy {
		claim = legacyClaimDue
	}
	want := min(256, n, 32*endpoints)
	now := claimBenchBase + 1
	if legacy {
		// The legacy claim can take minutes per call: one probe decides whether to go on.
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, err := claim(pctx, db, now, now, 32, 256, nil)
		cancel()
		took := time.Since(start)
		now++
		switch {
		case errors.Is(pctx.Err(), context.DeadlineExceeded):
			b.Skipf("one legacy claim did not finish in 30 s")
		case err != nil:
			b.Fatal(err)
		case took > 3*time.Second:
			b.Skipf("one legacy claim took %v; not repeated", took.Round(time.Millisecond))
		}
	}
	claimed := 0
	b.ResetTimer()
	for b.Loop() {
		got, err := claim(ctx, db, now, now, 32, 256, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != want {
			b.Fatalf("claimed %d rows, want %d", len(got), want)
		}
		claimed += len(got)
		now++
	}
	b.ReportMetric(float64(claimed)/float64(b.N), "rows/op")
}

// legacyClaimSQL is the claim as it was before migration 070, kept to measure against: a
// window over every due row, ranked per endpoint.
const legacyClaimSQL = `UPDATE deliveries SET lease_until = $1
WHERE id IN (
	SELECT id FROM deliveries
	WHERE id IN (
		SELECT due.id FROM (
			SELECT id, webhook_id, row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS rn
			FROM deliveries
			WHERE status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
		) due
		LEFT JOIN (VALUES (CAST('' AS TEXT), CAST(0 AS INTEGER))) AS room ON room.column1 = due.webhook_id
		WHERE due.rn <= COALESCE(room.column2, $3)
	)
	AND status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
	ORDER BY next_attempt_at, id
	LIMIT $4%s
)
RETURNING ` + sqlcommon.ClaimedCols

// legacyClaimDue runs legacyClaimSQL as the scheduler did (no room list).
func legacyClaimDue(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, _ []store.EndpointRoom) ([]store.Delivery, error) {
	rows, err := db.Write().Query(ctx, fmt.Sprintf(legacyClaimSQL, db.Dialect.SkipLocked()), leaseUntil, now, perEndpoint, limit)
	if err != nil {
		return nil, err
	}
	return sqlcommon.ScanClaimed(rows, nil)
}

// claimDue claims through the engine's seam (the deliveries owner's ClaimDue), with times
// in stored microseconds.
func claimDue(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, rooms []store.EndpointRoom) ([]store.Delivery, error) {
	var claims claimStore = delivery.NewStore(db)
	return claims.ClaimDue(ctx, store.DeliveryClaim{Now: store.FromMicros(now), LeaseUntil: store.FromMicros(leaseUntil),
		PerEndpoint: perEndpoint, Limit: limit, Rooms: rooms})
}

// BenchmarkRetryBacklog measures the retry scheduler draining a backlog on PostgreSQL:
// 20,000 deliveries due at once (one attempt made, as after a receiver's outage) to 1 or 4
// endpoints of a receiver on 127.0.0.1 answering 204, with the production configuration for
// 2 cores (benchConfig); no events flow through JetStream meanwhile. It reports deliveries/s
// from the dispatcher's start to the last attempt recorded.
//
//	go test ./internal/dispatch -run '^$' -bench RetryBacklog -benchtime 1x
func BenchmarkRetryBacklog(b *testing.B) {
	for _, endpoints := range []int{1, 4} {
		b.Run(fmt.Sprintf("endpoints=%d", endpoints), func(b *testing.B) {
			var total time.Duration
			delivered := 0
			for range b.N {
				b.StopTimer()
				db := storetest.Postgres(b)
				h := newHarness(b, db)
				rc := newBenchReceiver(b, false)
				survey := h.addSurvey(jwtSecret)
				per := benchEvents20k / endpoints
				for range endpoints {
					ep := h.addEndpoint(survey, rc.srv.URL+"/hook")
					parkDeliveries(b, db, survey, ep.ID, ep.URL, per)
				}
				cfg := benchConfig(h, "0s,5s,5m")
				b.StartTimer()
				start := time.Now()
				stop := h.start(cfg)
				waitRecorded(b, db, per*endpoints)
				total += time.Since(start)
				b.StopTimer()
				stop()
				delivered += per * endpoints
				b.StartTimer()
			}
			b.ReportMetric(float64(delivered)/total.Seconds(), "deliveries/s")
		})
	}
}
