package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Deliveries returns the executor's queries of the deliveries, delivery_attempts and replays
// tables.
func (e executor) Deliveries() store.Deliveries {
	return deliveries{
		Deliveries: sqlcommon.Deliveries{Read: e.read(), Write: e.write(),
			NewIDExpr:        "'dlv_' || replace(gen_random_uuid()::text, '-', '')", // PostgreSQL 13+
			SkipLocked:       " FOR UPDATE SKIP LOCKED",
			ForShare:         " FOR SHARE",
			ReplaySurveyExpr: "filter->>'surveyId'"},
		e: e,
	}
}

type deliveries struct {
	sqlcommon.Deliveries
	e executor
}

var _ store.Deliveries = deliveries{}

// sendBatch sends b on the transaction, or on the pool outside one.
func (e executor) sendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if e.tx != nil {
		return e.tx.SendBatch(ctx, b)
	}
	return e.pool.SendBatch(ctx, b)
}

// RecordResults sends the batch's statements in one pipelined round trip: a pgx batch runs
// as an implicit transaction (inside InTx, as part of that transaction).
func (d deliveries) RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint) ([]store.DisabledEndpoint, error) {
	p := sqlcommon.PlanResults(r)
	defer p.Release()
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(p.Statements))}
	for _, s := range p.Statements {
		b.Queue(s.SQL, s.Args...)
	}
	br := d.e.sendBatch(ctx, b)
	for _, s := range p.Statements {
		if !s.Disables {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return disabled, fmt.Errorf("recording %d delivery results: %w", len(r.Deliveries), mapErr(err))
			}
			continue
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return disabled, fmt.Errorf("recording %d delivery results: %w", len(r.Deliveries), mapErr(err))
		}
		if disabled, err = sqlcommon.ScanDisabled(pgRows{rows}, disabled); err != nil {
			br.Close()
			return disabled, fmt.Errorf("recording %d delivery results: %w", len(r.Deliveries), err)
		}
	}
	if err := br.Close(); err != nil {
		return disabled, fmt.Errorf("recording %d delivery results: %w", len(r.Deliveries), mapErr(err))
	}
	return disabled, nil
}

// The claim of due deliveries: the retry scheduler's one query that runs against the whole
// backlog. It costs, whatever the backlog and whatever the planner's statistics say, one index
// probe per endpoint with pending deliveries plus at most min(room, limit) index entries per
// endpoint, and it locks and updates at most limit rows:
//
//  1. the endpoints with pending deliveries, by a loose scan of deliveries_pending_idx
//     (webhook_id, next_attempt_at, id) WHERE status = 'pending' (migration 070): one probe
//     for the next webhook id after the last;
//  2. for each endpoint, its oldest due rows that are not leased, at most its room (the free
//     slots this process has for it; perEndpoint for endpoints not listed), read in index
//     order; of all those, the oldest limit;
//  3. for each endpoint in that cut, as many rows again, this time locked FOR UPDATE SKIP
//     LOCKED: without contention the same rows, and past any that another dispatcher is
//     claiming at this moment;
//  4. those rows get the lease.
//
// The quadratic claim of issue 10 came from a window over every due row, planned on stale
// statistics into a nested loop that re-sorted it per row. Here every scan of deliveries has
// a LIMIT and an index that yields its order, and the index that invited a bad per-endpoint
// plan (deliveries_due_idx) is gone. The statement also runs with planner settings that take
// the remaining fallbacks off the table (ClaimSettingsSQL).

// ClaimSettingsSQL sets, for the claim's implicit transaction only: custom plans (the LIMITs
// are then constants, and a generic plan's guess of a tenth of the backlog per endpoint never
// decides anything), no JIT (a big table's cost estimates can exceed jit_above_cost: 0.1–0.8 s
// of compilation per call was measured), sequential and bitmap scans priced out, so that no
// statistics, however stale, make a plan that reads an endpoint's whole backlog look cheaper
// than the index scans; and no wait for the WAL flush: a lease lost in a database crash only
// lets another dispatcher attempt the delivery once more (delivery is at least once), and the
// flush was most of a small claim's time (12 ms of 13 on the shared test machine).
const ClaimSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('synchronous_commit', 'off', true)`

// ClaimDueSQL is the claim: $1 lease until, $2 now, $3 per-endpoint room for endpoints not
// listed, $4 the limit, $5 and $6 the listed endpoints and their room. Every ORDER BY is
// deliveries_pending_idx's order, which no other index yields: with stale statistics the
// planner otherwise walked deliveries_webhook_idx for the next endpoint, through every
// finished delivery of the endpoints on the way.
const ClaimDueSQL = `WITH RECURSIVE endpoint (webhook_id) AS (
	(SELECT webhook_id FROM deliveries WHERE status = 'pending' AND lane_seq IS NULL ORDER BY webhook_id, next_attempt_at, id LIMIT 1)
	UNION ALL
	SELECT (SELECT d.webhook_id FROM deliveries d WHERE d.status = 'pending' AND d.lane_seq IS NULL AND d.webhook_id > endpoint.webhook_id
		ORDER BY d.webhook_id, d.next_attempt_at, d.id LIMIT 1)
	FROM endpoint WHERE endpoint.webhook_id IS NOT NULL
),
oldest AS MATERIALIZED (
	SELECT endpoint.webhook_id, due.next_attempt_at, due.id FROM endpoint
	LEFT JOIN unnest($5::text[], $6::int[]) AS room (webhook_id, free) ON room.webhook_id = endpoint.webhook_id
	CROSS JOIN LATERAL (
		SELECT * FROM (
			SELECT d.next_attempt_at, d.id FROM deliveries d
			WHERE d.webhook_id = endpoint.webhook_id AND d.status = 'pending' AND d.lane_seq IS NULL AND d.next_attempt_at <= $2::bigint
				AND (d.lease_until IS NULL OR d.lease_until < $2::bigint)
			ORDER BY d.next_attempt_at, d.id
			LIMIT least($3::int, $4::int)
		) capped
		LIMIT coalesce(room.free, $3::int)
	) due
	WHERE endpoint.webhook_id IS NOT NULL
	ORDER BY due.next_attempt_at, due.id
	LIMIT $4::int
),
share AS (SELECT webhook_id, count(*) AS n FROM oldest GROUP BY webhook_id)
UPDATE deliveries SET lease_until = $1::bigint
WHERE id = ANY (ARRAY(
	SELECT locked.id FROM share
	CROSS JOIN LATERAL (
		SELECT * FROM (
			SELECT d.id FROM deliveries d
			WHERE d.webhook_id = share.webhook_id AND d.status = 'pending' AND d.lane_seq IS NULL AND d.next_attempt_at <= $2::bigint
				AND (d.lease_until IS NULL OR d.lease_until < $2::bigint)
			ORDER BY d.next_attempt_at, d.id
			LIMIT least($3::int, $4::int)
			FOR UPDATE SKIP LOCKED
		) capped
		LIMIT share.n
	) locked
))
RETURNING ` + sqlcommon.ClaimedCols

// ClaimLaneSQL claims the heads of FIFO lanes (see internal/dispatch, "FIFO endpoints"): $1
// lease until, $2 now, $3 LaneGapUntil, $4 the limit. Like ClaimDueSQL it walks the endpoints
// with a loose scan, of deliveries_lane_pending_idx, and takes each one's head (its lowest
// pending lane_seq) by one index probe; a head that may go (sqlcommon.LaneGapSQL) is leased
// unless another claim leased it meanwhile: the UPDATE's recheck of the lease under READ
// COMMITTED lets one claim win. The heads are looked up by id from an ARRAY: an IN (…) let
// the planner, with sequential scans priced out, walk a whole index of deliveries (13 ms a
// claim instead of 3 in BenchmarkFIFO).
var ClaimLaneSQL = `WITH RECURSIVE lane (webhook_id) AS (
	(SELECT webhook_id FROM deliveries WHERE status = 'pending' AND lane_seq IS NOT NULL ORDER BY webhook_id, lane_seq LIMIT 1)
	UNION ALL
	SELECT (SELECT d.webhook_id FROM deliveries d WHERE d.status = 'pending' AND d.lane_seq IS NOT NULL
		AND d.webhook_id > lane.webhook_id ORDER BY d.webhook_id, d.lane_seq LIMIT 1)
	FROM lane WHERE lane.webhook_id IS NOT NULL
),
head AS MATERIALIZED (
	SELECT h.* FROM lane CROSS JOIN LATERAL (
		SELECT d.id, d.webhook_id, d.lane_seq, d.next_attempt_at, d.lease_until, d.created_at FROM deliveries d
		WHERE d.webhook_id = lane.webhook_id AND d.status = 'pending' AND d.lane_seq IS NOT NULL
		ORDER BY d.lane_seq LIMIT 1
	) h
	WHERE lane.webhook_id IS NOT NULL
)
UPDATE deliveries SET lease_until = $1::bigint
WHERE id = ANY (ARRAY(
	SELECT head.id FROM head LEFT JOIN webhooks w ON w.id = head.webhook_id
	WHERE ` + fmt.Sprintf(sqlcommon.LaneGapSQL, "GREATEST") + `
	ORDER BY head.next_attempt_at, head.id
	LIMIT $4::int
)) AND status = 'pending' AND (lease_until IS NULL OR lease_until < $2::bigint)
RETURNING ` + sqlcommon.ClaimedCols

// ClaimLaneArgs are ClaimLaneSQL's arguments for c.
func ClaimLaneArgs(c store.DeliveryClaim) []any {
	return []any{c.LeaseUntil.UnixMicro(), c.Now.UnixMicro(), laneGapUntil(c), c.Limit}
}

// laneGapUntil is c.LaneGapUntil in micros; zero (wait for ever) is the lowest time.
func laneGapUntil(c store.DeliveryClaim) int64 {
	if c.LaneGapUntil.IsZero() {
		return math.MinInt64
	}
	return c.LaneGapUntil.UnixMicro()
}

// ClaimArgs are ClaimDueSQL's arguments for c.
func ClaimArgs(c store.DeliveryClaim) []any {
	ids := make([]string, len(c.Rooms))
	free := make([]int32, len(c.Rooms))
	for i, r := range c.Rooms {
		ids[i], free[i] = r.WebhookID, int32(r.Free)
	}
	return []any{c.LeaseUntil.UnixMicro(), c.Now.UnixMicro(), c.PerEndpoint, c.Limit, ids, free}
}

// ClaimDue runs the settings and the claim in one round trip; a pgx batch is one implicit
// transaction, which the settings last for.
func (d deliveries) ClaimDue(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error) {
	b := &pgx.Batch{}
	b.Queue(ClaimSettingsSQL)
	b.Queue(ClaimDueSQL, ClaimArgs(c)...)
	b.Queue(ClaimLaneSQL, ClaimLaneArgs(c)...)
	br := d.e.sendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", mapErr(err))
	}
	var out []store.Delivery
	for range 2 {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("claiming due deliveries: %w", mapErr(err))
		}
		if out, err = sqlcommon.ScanClaimed(pgRows{rows}, out); err != nil {
			return nil, fmt.Errorf("claiming due deliveries: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", mapErr(err))
	}
	// RETURNING follows no order: attempt the longest waiting first.
	slices.SortFunc(out, func(a, b store.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}
