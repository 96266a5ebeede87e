package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// errRollback ends a test transaction without keeping its writes.
var errRollback = errors.New("rollback")

// TestClaimDueReadsBoundedRows runs the PostgreSQL claim under EXPLAIN ANALYZE over a backlog
// of 20,000 due rows on 20 endpoints (and as many finished deliveries), with no statistics, with statistics of a small table
// (stale), and with fresh statistics: every scan of deliveries must be an index scan on
// deliveries_pending_idx or the primary key, and the rows read must be bounded by the
// endpoints and the batch (not the backlog). The claim before migration 070 read every due
// row, and under stale statistics read them once per row.
func TestClaimDueReadsBoundedRows(t *testing.T) {
	for _, stats := range []string{"none", "stale", "fresh"} {
		t.Run(stats, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			ctx := context.Background()
			now := store.Micros(time.Now())
			if stats == "stale" {
				// Statistics of a young table: one endpoint, half its deliveries finished.
				if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
					attempts, next_attempt_at, created_at, updated_at)
					SELECT 'old' || g, 'e', 'wh_old', 's', 't', 'u', CASE WHEN g % 2 = 0 THEN 'succeeded' ELSE 'pending' END,
						1, CASE WHEN g % 2 = 0 THEN NULL ELSE $1::bigint + g END, 1, 1
					FROM generate_series(1, 50) g`, now+3600_000_000); err != nil {
					t.Fatal(err)
				}
				analyze(t, db, "deliveries")
			}
			const endpoints, perEndpoint, limit, leased = 20, 8, 100, 5
			// 20,000 due rows; each endpoint's 5 oldest are leased by another dispatcher.
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, next_attempt_at, lease_until, created_at, updated_at)
				SELECT 'd' || g, 'e' || g, 'wh_' || (g % $3::int), 's', 't', 'u', 'pending', 1, $1::bigint - 20000 + g / $3::int,
					CASE WHEN g / $3::int < $4::int THEN $2::bigint END, 1, 1
				FROM generate_series(0, 19999) g`, now, now+60_000_000, endpoints, leased); err != nil {
				t.Fatal(err)
			}
			// And the history: 20,000 finished deliveries.
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, created_at, updated_at)
				SELECT 'h' || g, 'e' || g, 'wh_' || (g % $1::int), 's', 't', 'u', 'succeeded', 1, 1, 1
				FROM generate_series(0, 19999) g`, endpoints); err != nil {
				t.Fatal(err)
			}
			if stats == "fresh" {
				analyze(t, db, "deliveries")
			}
			args := postgres.ClaimArgs(store.DeliveryClaim{Now: store.FromMicros(now), LeaseUntil: store.FromMicros(now + 30_000_000),
				PerEndpoint: perEndpoint, Limit: limit})
			roots, plans := explain(t, db, []string{postgres.ClaimSettingsSQL}, sqlcommon.Statement{SQL: postgres.ClaimDueSQL, Args: args})
			root, plan := roots[0], plans[0]
			read := 0.0
			root.walk(func(n *planNode) {
				if n.Relation != "deliveries" || n.NodeType == "ModifyTable" {
					return
				}
				if (n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan") ||
					(n.Index != "deliveries_pending_idx" && n.Index != "deliveries_pkey") {
					t.Errorf("%s on deliveries (index %q): the claim must read deliveries through deliveries_pending_idx or its key",
						n.NodeType, n.Index)
				}
				read += (n.ActualRows + n.RemovedByFilter) * n.ActualLoops
			})
			if got := root.ActualRows; got != limit {
				t.Errorf("claimed %v rows, want %d", got, limit)
			}
			// Per endpoint: a probe for the next endpoint, up to perEndpoint rows read twice
			// (the oldest, then locked) past its leased ones; then the limit by key.
			bound := float64(endpoints*(2+2*(perEndpoint+leased)) + limit + 10)
			if read > bound {
				t.Errorf("the claim read %.0f rows of deliveries, more than %.0f: its cost follows the backlog\n%s", read, bound, plan)
			}
			t.Logf("%s statistics: read %.0f rows (bound %.0f)", stats, read, bound)
		})
	}
}

// analyze takes fresh planner statistics of tables (autovacuum is off on the test machine).
func analyze(t *testing.T, db *store.DB, tables ...string) {
	t.Helper()
	for _, table := range tables {
		if _, err := db.Exec(context.Background(), "ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
}

// fillWithStats calls fill(0, n) under the planner statistics stats names: "none"; "stale",
// taken of deliveries and events after fill(1_000_000, 50), rows unlike the test's; or
// "fresh", taken after the fill.
func fillWithStats(t *testing.T, db *store.DB, stats string, n int, fill func(from, n int)) {
	t.Helper()
	if stats == "stale" {
		fill(1_000_000, 50)
		analyze(t, db, "deliveries", "events")
	}
	fill(0, n)
	if stats == "fresh" {
		analyze(t, db, "deliveries", "events")
	}
}

// explain runs the setup statements, then each of stmts under EXPLAIN (ANALYZE, FORMAT JSON), in
// one transaction that it rolls back (a later statement sees an earlier one's writes). It
// returns each statement's root plan node and its plan as JSON.
func explain(t *testing.T, db *store.DB, setup []string, stmts ...sqlcommon.Statement) ([]planNode, [][]byte) {
	t.Helper()
	ctx := context.Background()
	var plans [][]byte
	err := db.InTx(ctx, func(tx store.Querier) error {
		for _, q := range setup {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		for _, st := range stmts {
			var plan []byte
			if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+st.SQL, st.Args...).Scan(&plan); err != nil {
				return err
			}
			plans = append(plans, plan)
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	roots := make([]planNode, len(plans))
	for i, plan := range plans {
		var top []struct {
			Plan planNode `json:"Plan"`
		}
		if err := json.Unmarshal(plan, &top); err != nil {
			t.Fatal(err)
		}
		roots[i] = top[0].Plan
	}
	return roots, plans
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType        string     `json:"Node Type"`
	Relation        string     `json:"Relation Name"`
	Index           string     `json:"Index Name"`
	ActualRows      float64    `json:"Actual Rows"`
	ActualLoops     float64    `json:"Actual Loops"`
	RemovedByFilter float64    `json:"Rows Removed by Filter"`
	Plans           []planNode `json:"Plans"`
}

func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

// TestResultWritesReadBoundedRows runs a batch of results (256 first attempts, half of them
// lane deliveries, and their attempt log) under EXPLAIN ANALYZE beside 20,000 stored
// deliveries and events, with no statistics, with statistics of a small table (stale), and
// with fresh ones. Every read of deliveries and events must go through their key: a batch's
// cost must not follow the tables' size. The attempt log's check that its delivery is stored
// was once planned, under stale statistics, as a hash join over a sequential scan of every
// delivery (50 µs per attempt row at 80,000 deliveries, and growing).
func TestResultWritesReadBoundedRows(t *testing.T) {
	for _, stats := range []string{"none", "stale", "fresh"} {
		t.Run(stats, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			ctx := context.Background()
			fill := func(from, n int) {
				t.Helper()
				if _, err := db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at)
					SELECT 'e' || g, 't', 's', 'x', '{}', '{}', 1 FROM generate_series($1::int, $2::int) g`, from, from+n-1); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
					attempts, created_at, updated_at)
					SELECT 'h' || g, 'e' || g, 'wh_' || (g % 20), 's', 't', 'u', 'succeeded', 1, 1, 1
					FROM generate_series($1::int, $2::int) g`, from, from+n-1); err != nil {
					t.Fatal(err)
				}
			}
			fillWithStats(t, db, stats, 20_000, fill)
			const batch = 256
			now := time.Now().UTC()
			r := &store.DeliveryResults{Now: now}
			for i := range batch {
				id := fmt.Sprintf("new%d", i)
				r.Deliveries = append(r.Deliveries, store.Delivery{ID: id, EventID: fmt.Sprintf("e%d", i), WebhookID: "wh_1",
					SurveyID: "s", Type: "t", URL: "u", Status: store.DeliverySucceeded, Attempts: 1, LastStatusCode: 204,
					Lane: i%2 == 0, CreatedAt: now, UpdatedAt: now})
				r.Attempts = append(r.Attempts, store.Attempt{DeliveryID: id, N: 1, StartedAt: now, StatusCode: 204})
			}
			p := sqlcommon.PlanResults(r)
			defer p.Release()
			roots, plans := explain(t, db, nil, p.Statements...)
			if len(plans) != 2 {
				t.Fatalf("%d statements, want the deliveries' and the attempts'", len(plans))
			}
			for i, plan := range plans {
				read := 0.0
				roots[i].walk(func(n *planNode) {
					if (n.Relation != "deliveries" && n.Relation != "events") || n.NodeType == "ModifyTable" {
						return
					}
					if (n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan") || n.Index != n.Relation+"_pkey" {
						t.Errorf("statement %d: %s on %s (index %q): a result write must read %s through its key",
							i, n.NodeType, n.Relation, n.Index, n.Relation)
					}
					read += (n.ActualRows + n.RemovedByFilter) * n.ActualLoops
				})
				if bound := float64(batch); read > bound {
					t.Errorf("statement %d read %.0f rows of deliveries and events, more than %.0f: its cost follows the tables\n%s",
						i, read, bound, plan)
				}
				t.Logf("%s statistics, statement %d: read %.0f rows", stats, i, read)
			}
		})
	}
}

// TestPurgeEventsReadsBoundedRows runs the retention purge's delete of a chunk of expired
// events under EXPLAIN ANALYZE beside 20,000 deliveries (half of the chunk's events still
// referred to), with no, stale and fresh statistics: deliveries must be read through
// deliveries_event_idx, a few rows per event, never scanned whole.
func TestPurgeEventsReadsBoundedRows(t *testing.T) {
	for _, stats := range []string{"none", "stale", "fresh"} {
		t.Run(stats, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			ctx := context.Background()
			fill := func(from, n int) {
				t.Helper()
				if _, err := db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at)
					SELECT 'e' || g, 't', 's', 'x', '{}', '{}', 1, 1 FROM generate_series($1::int, $2::int) g`, from, from+n-1); err != nil {
					t.Fatal(err)
				}
				// Every other event keeps one delivery.
				if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
					attempts, created_at, updated_at)
					SELECT 'h' || g, 'e' || g, 'wh_' || (g % 20), 's', 't', 'u', 'succeeded', 1, 1, 1
					FROM generate_series($1::int, $2::int) g WHERE g % 2 = 0`, from, from+n-1); err != nil {
					t.Fatal(err)
				}
			}
			fillWithStats(t, db, stats, 40_000, fill)
			ids := make([]any, sqlcommon.EventsChunk)
			for i := range ids {
				ids[i] = fmt.Sprintf("e%d", i)
			}
			roots, plans := explain(t, db, nil, sqlcommon.PurgeEventsStatement(time.Now(), ids))
			root, plan := roots[0], plans[0]
			read := 0.0
			root.walk(func(n *planNode) {
				if n.Relation != "deliveries" {
					return
				}
				if n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan" {
					t.Errorf("%s on deliveries (index %q): the purge must probe deliveries by event", n.NodeType, n.Index)
				}
				read += (n.ActualRows + n.RemovedByFilter) * n.ActualLoops
			})
			if bound := float64(len(ids)); read > bound {
				t.Errorf("the purge read %.0f rows of deliveries for %d events: its cost follows the table\n%s", read, len(ids), plan)
			}
			t.Logf("%s statistics: read %.0f rows of deliveries", stats, read)
		})
	}
}

// TestClaimLaneReadsBoundedRows runs the FIFO lane claim under EXPLAIN ANALYZE over a lane with
// 20,000 delivered events, whose head waits on a gap of 99 events (each delivered to another
// endpoint only), with no, stale and fresh statistics: the claim must read events and
// deliveries through their indexes (the gap check stops at the gap's first event), never scan
// either table, and must not claim the head, whose gap is open.
func TestClaimLaneReadsBoundedRows(t *testing.T) {
	for _, stats := range []string{"none", "stale", "fresh"} {
		t.Run(stats, func(t *testing.T) {
			t.Parallel()
			db := storetest.Postgres(t)
			ctx := context.Background()
			now := time.Now()
			if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 's', 1, 1)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, ordering, created_at, updated_at)
				VALUES ('wh_lane', 's', 'u', 't', 'whsec_x', 'fifo', 1, 1), ('wh_other', 's', 'u', 't', 'whsec_x', 'none', 1, 1)`); err != nil {
				t.Fatal(err)
			}
			// events seq from..to; the lane's deliveries of those in laneTo's range, and the other
			// endpoint's of the rest.
			fill := func(from, to, laneTo int) {
				t.Helper()
				if _, err := db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at, seq)
					SELECT 'e' || g, 't', 's', 'x', '{}', '{}', 1, 1, g FROM generate_series($1::int, $2::int) g`, from, to); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
					attempts, created_at, updated_at, lane_seq)
					SELECT 'd' || g, 'e' || g, CASE WHEN g <= $3::int THEN 'wh_lane' ELSE 'wh_other' END, 's', 't', 'u', 'succeeded', 1, 1, 1,
						CASE WHEN g <= $3::int THEN g END
					FROM generate_series($1::int, $2::int) g`, from, to, laneTo); err != nil {
					t.Fatal(err)
				}
			}
			if stats == "stale" {
				fill(1, 50, 50)
				analyze(t, db, "deliveries", "events")
				fill(51, 19_999, 19_900)
			} else {
				fill(1, 19_999, 19_900)
			}
			// The head: seq 20,000, stored just now (after LaneGapUntil), due.
			if _, err := db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at, seq)
				VALUES ('e20000', 't', 's', 'x', '{}', '{}', 1, 1, 20000)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
				attempts, next_attempt_at, created_at, updated_at, lane_seq)
				VALUES ('head', 'e20000', 'wh_lane', 's', 't', 'u', 'pending', 0, $1::bigint, $1::bigint, $1::bigint, 20000)`,
				store.Micros(now)); err != nil {
				t.Fatal(err)
			}
			if stats == "fresh" {
				analyze(t, db, "deliveries", "events")
			}
			args := postgres.ClaimLaneArgs(store.DeliveryClaim{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute),
				LaneGapUntil: now.Add(-time.Minute), Limit: 100})
			roots, plans := explain(t, db, nil, sqlcommon.Statement{SQL: postgres.ClaimLaneSQL, Args: args})
			root, plan := roots[0], plans[0]
			read := map[string]float64{}
			root.walk(func(n *planNode) {
				if (n.Relation != "deliveries" && n.Relation != "events") || n.NodeType == "ModifyTable" {
					return
				}
				if n.NodeType == "Seq Scan" {
					t.Errorf("Seq Scan on %s: the lane claim must read %s through an index", n.Relation, n.Relation)
				}
				read[n.Relation] += (n.ActualRows + n.RemovedByFilter) * n.ActualLoops
			})
			if got := root.ActualRows; got != 0 {
				t.Errorf("claimed %v rows; the head's gap is open, want none", got)
			}
			for rel, rows := range read {
				if rows > 1000 {
					t.Errorf("the lane claim read %.0f rows of %s for a gap of 99 events\n%s", rows, rel, plan)
				}
			}
			t.Logf("%s statistics: read %v", stats, read)
		})
	}
}
