package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
)

// The engine's queries on deliveries, delivery_attempts, webhooks (failure counters and
// disabling) and events (reading payloads). Multi-row statements come in a few fixed sizes
// (chunkSizes), so PostgreSQL prepares each shape once per connection.

// chunkSizes are the row counts of multi-row statements: a batch of n rows takes at most one
// statement per bit of n.
var chunkSizes = [...]int{256, 128, 64, 32, 16, 8, 4, 2, 1}

const deliveryCols = 13

const upsertDeliveriesSQL = `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
	attempts, last_status_code, last_error, next_attempt_at, created_at, updated_at)
VALUES %s
ON CONFLICT (id) DO UPDATE SET url = excluded.url, status = excluded.status, attempts = excluded.attempts,
	last_status_code = excluded.last_status_code, last_error = excluded.last_error,
	next_attempt_at = excluded.next_attempt_at, lease_until = NULL, updated_at = excluded.updated_at
WHERE deliveries.status = 'pending' AND deliveries.attempts <= excluded.attempts`

const attemptCols = 7

const insertAttemptsSQL = `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code,
	error, response_body)
VALUES %s
ON CONFLICT (delivery_id, n) DO NOTHING`

// updateCountersSQL applies one batch's outcomes to endpoints' failure counters. Each VALUES
// row is (webhook id, 1 when the batch had a success, failures after the last success, time
// of the first of those failures).
const updateCountersSQL = `UPDATE webhooks SET
	consecutive_failures = CASE WHEN v.column2 = 1 THEN v.column3 ELSE webhooks.consecutive_failures + v.column3 END,
	first_failure_at = CASE WHEN v.column3 = 0 THEN NULL WHEN v.column2 = 1 THEN v.column4
		ELSE COALESCE(webhooks.first_failure_at, v.column4) END
FROM (VALUES %s) AS v
WHERE webhooks.id = v.column1`

const counterRow = "(CAST($%d AS TEXT), CAST($%d AS INTEGER), CAST($%d AS INTEGER), CAST($%d AS BIGINT))"

// disableGoneSQL disables an endpoint whose receiver answered 410 Gone.
const disableGoneSQL = `UPDATE webhooks SET disabled = TRUE, disabled_reason = $1, disabled_at = $2, updated_at = $2
WHERE id = $3 AND disabled = FALSE
RETURNING id, survey_id, disabled_reason`

// disableFailingSQL disables, among the listed endpoints, those past the failure threshold.
const disableFailingSQL = `UPDATE webhooks SET disabled = TRUE, disabled_reason = CAST($1 AS TEXT) || CAST(consecutive_failures AS TEXT) || ' consecutive failed attempts', disabled_at = $2, updated_at = $2
WHERE id IN (%s) AND disabled = FALSE AND consecutive_failures >= $3 AND first_failure_at <= $4
RETURNING id, survey_id, disabled_reason`

// deliveryArgs appends r's columns in upsertDeliveriesSQL order.
func deliveryArgs(dst []any, r *deliveryRow) []any {
	return append(dst, r.ID, r.EventID, r.WebhookID, r.SurveyID, r.Type, r.URL, r.Status,
		r.Attempts, nullInt(int64(r.LastStatusCode)), r.LastError, nullInt(r.NextAttemptAt), r.CreatedAt, r.UpdatedAt)
}

// attemptArgs appends the attempt's columns in insertAttemptsSQL order.
func attemptArgs(dst []any, id string, a *attemptRow) []any {
	return append(dst, id, a.N, a.StartedAt, a.DurationMs, nullInt(int64(a.StatusCode)), a.Error, a.ResponseBody)
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// statementCache builds each multi-row statement shape once.
type statementCache struct {
	deliveries map[int]string
	attempts   map[int]string
}

func newStatementCache() *statementCache {
	c := &statementCache{deliveries: map[int]string{}, attempts: map[int]string{}}
	for _, n := range chunkSizes {
		c.deliveries[n] = fmt.Sprintf(upsertDeliveriesSQL, store.Placeholders(n, deliveryCols, 1))
		c.attempts[n] = fmt.Sprintf(insertAttemptsSQL, store.Placeholders(n, attemptCols, 1))
	}
	return c
}

// counterUpdate is one endpoint's failure counter change in a batch.
type counterUpdate struct {
	webhookID string
	reset     bool
	failures  int
	first     int64
}

// counterStatement builds updateCountersSQL for ups.
func counterStatement(ups []counterUpdate, args []any) (string, []any) {
	var b strings.Builder
	for i, u := range ups {
		if i > 0 {
			b.WriteByte(',')
		}
		n := 4*i + 1
		fmt.Fprintf(&b, counterRow, n, n+1, n+2, n+3)
		reset := 0
		if u.reset {
			reset = 1
		}
		args = append(args, u.webhookID, reset, u.failures, u.first)
	}
	return fmt.Sprintf(updateCountersSQL, b.String()), args
}

// disabledEndpoint is an endpoint the engine disabled.
type disabledEndpoint struct {
	id, surveyID, reason string
}

// goneReason is the disabled_reason of an endpoint whose receiver answered 410.
const goneReason = "the receiver answered 410 Gone"

// failingStatement builds disableFailingSQL for the listed endpoints.
func failingStatement(ids []string, threshold int, spanUntil, now int64) (string, []any) {
	args := []any{"disabled after ", now, threshold, spanUntil}
	ph := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		ph[i] = fmt.Sprintf("$%d", len(args))
	}
	return fmt.Sprintf(disableFailingSQL, strings.Join(ph, ",")), args
}

// recordedDeliveries returns the ids of the deliveries of an event.
func recordedDeliveries(ctx context.Context, db *store.DB, eventID string) (map[string]bool, error) {
	rows, err := db.Query(ctx, "SELECT id FROM deliveries WHERE event_id = $1", eventID)
	if err != nil {
		return nil, fmt.Errorf("reading deliveries of event %s: %w", eventID, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reading deliveries of event %s: %w", eventID, err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading deliveries of event %s: %w", eventID, err)
	}
	return out, nil
}

// claimedDelivery is a stored delivery the retry scheduler leased.
type claimedDelivery struct {
	ID, EventID, WebhookID, SurveyID, Type, URL string
	Attempts                                    int
	LastStatusCode                              int
	LastError                                   string
	CreatedAt                                   int64
	due                                         int64
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
// plan (deliveries_due_idx) is gone. On PostgreSQL the statement also runs with planner
// settings that take the remaining fallbacks off the table (claimSettingsSQL); on SQLite
// every scan names its index (INDEXED BY), so no other plan is possible.

// claimSettingsSQL sets, for the claim's implicit transaction only: custom plans (the LIMITs
// are then constants, and a generic plan's guess of a tenth of the backlog per endpoint never
// decides anything), no JIT (a big table's cost estimates can exceed jit_above_cost: 0.1–0.8 s
// of compilation per call was measured), sequential and bitmap scans priced out, so that no
// statistics, however stale, make a plan that reads an endpoint's whole backlog look cheaper
// than the index scans; and no wait for the WAL flush: a lease lost in a database crash only
// lets another dispatcher attempt the delivery once more (delivery is at least once), and the
// flush was most of a small claim's time (12 ms of 13 on the shared test machine).
const claimSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('synchronous_commit', 'off', true)`

// claimDuePostgresSQL is the claim on PostgreSQL: $1 lease until, $2 now, $3 per-endpoint
// room for endpoints not listed, $4 the limit, $5 and $6 the listed endpoints and their room.
// Every ORDER BY is deliveries_pending_idx's order, which no other index yields: with stale
// statistics the planner otherwise walked deliveries_webhook_idx for the next endpoint,
// through every finished delivery of the endpoints on the way.
const claimDuePostgresSQL = `WITH RECURSIVE endpoint (webhook_id) AS (
	(SELECT webhook_id FROM deliveries WHERE status = 'pending' ORDER BY webhook_id, next_attempt_at, id LIMIT 1)
	UNION ALL
	SELECT (SELECT d.webhook_id FROM deliveries d WHERE d.status = 'pending' AND d.webhook_id > endpoint.webhook_id
		ORDER BY d.webhook_id, d.next_attempt_at, d.id LIMIT 1)
	FROM endpoint WHERE endpoint.webhook_id IS NOT NULL
),
oldest AS MATERIALIZED (
	SELECT endpoint.webhook_id, due.next_attempt_at, due.id FROM endpoint
	LEFT JOIN unnest($5::text[], $6::int[]) AS room (webhook_id, free) ON room.webhook_id = endpoint.webhook_id
	CROSS JOIN LATERAL (
		SELECT * FROM (
			SELECT d.next_attempt_at, d.id FROM deliveries d
			WHERE d.webhook_id = endpoint.webhook_id AND d.status = 'pending' AND d.next_attempt_at <= $2::bigint
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
			WHERE d.webhook_id = share.webhook_id AND d.status = 'pending' AND d.next_attempt_at <= $2::bigint
				AND (d.lease_until IS NULL OR d.lease_until < $2::bigint)
			ORDER BY d.next_attempt_at, d.id
			LIMIT least($3::int, $4::int)
			FOR UPDATE SKIP LOCKED
		) capped
		LIMIT share.n
	) locked
))
RETURNING ` + claimedCols

// claimedCols are the columns of a claimed delivery, in claimedDelivery's scan order.
const claimedCols = `id, event_id, webhook_id, survey_id, type, url, attempts, last_status_code, last_error, created_at,
	next_attempt_at`

// On SQLite the claim is the same walk in a write transaction, a statement per step: the one
// writer serialises claims, so nothing needs locking, and statements cost microseconds.
const (
	// claimEndpointsSQLiteSQL lists the endpoints with pending deliveries (step 1).
	claimEndpointsSQLiteSQL = `WITH RECURSIVE endpoint (webhook_id) AS (
	SELECT (SELECT webhook_id FROM deliveries INDEXED BY deliveries_pending_idx WHERE status = 'pending'
		ORDER BY webhook_id LIMIT 1)
	UNION ALL
	SELECT (SELECT d.webhook_id FROM deliveries AS d INDEXED BY deliveries_pending_idx
		WHERE d.status = 'pending' AND d.webhook_id > endpoint.webhook_id ORDER BY d.webhook_id LIMIT 1)
	FROM endpoint WHERE endpoint.webhook_id IS NOT NULL
)
SELECT webhook_id FROM endpoint WHERE webhook_id IS NOT NULL`

	// claimOldestSQLiteSQL reads an endpoint's oldest due rows that are not leased (step 2).
	claimOldestSQLiteSQL = `SELECT next_attempt_at, id FROM deliveries INDEXED BY deliveries_pending_idx
WHERE webhook_id = $1 AND status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
ORDER BY next_attempt_at, id
LIMIT $3`

	// claimLeaseSQLiteSQL leases the rows of the cut (step 4); %s lists their ids. The index
	// is the primary key's (SQLite names it after the table): with statistics of a small
	// table SQLite otherwise scanned the whole table for the list.
	claimLeaseSQLiteSQL = `UPDATE deliveries INDEXED BY sqlite_autoindex_deliveries_1 SET lease_until = $1 WHERE id IN (%s)
RETURNING ` + claimedCols
)

// claimDue leases due pending deliveries, oldest due first: per endpoint no more than its
// room (rooms lists endpoints' free slots; perEndpoint for endpoints not listed), limit in
// all. The result is in due order.
func claimDue(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, rooms []endpointRoom) ([]claimedDelivery, error) {
	var (
		out []claimedDelivery
		err error
	)
	if pool := postgres.Pool(db); pool != nil {
		out, err = claimDuePostgres(ctx, pool, now, leaseUntil, perEndpoint, limit, rooms)
	} else {
		out, err = claimDueSQLite(ctx, db, now, leaseUntil, perEndpoint, limit, rooms)
	}
	if err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", err)
	}
	// RETURNING follows no order: attempt the longest waiting first.
	slices.SortFunc(out, func(a, b claimedDelivery) int {
		return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// claimArgs are claimDuePostgresSQL's arguments.
func claimArgs(now, leaseUntil int64, perEndpoint, limit int, rooms []endpointRoom) []any {
	ids := make([]string, len(rooms))
	free := make([]int32, len(rooms))
	for i, r := range rooms {
		ids[i], free[i] = r.id, int32(r.free)
	}
	return []any{leaseUntil, now, perEndpoint, limit, ids, free}
}

// claimDuePostgres runs the settings and the claim in one round trip; a pgx batch is one
// implicit transaction, which the settings last for.
func claimDuePostgres(ctx context.Context, pool *pgxpool.Pool, now, leaseUntil int64, perEndpoint, limit int, rooms []endpointRoom) ([]claimedDelivery, error) {
	b := &pgx.Batch{}
	b.Queue(claimSettingsSQL)
	b.Queue(claimDuePostgresSQL, claimArgs(now, leaseUntil, perEndpoint, limit, rooms)...)
	br := pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	out, err := scanClaimed(rows, nil)
	if err != nil {
		return nil, err
	}
	return out, br.Close()
}

// claimCandidate is a due row of step 2 on SQLite.
type claimCandidate struct {
	due int64
	id  string
}

func claimDueSQLite(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, rooms []endpointRoom) ([]claimedDelivery, error) {
	room := make(map[string]int, len(rooms))
	for _, r := range rooms {
		room[r.id] = r.free
	}
	var out []claimedDelivery
	err := db.InTx(ctx, func(tx store.Querier) error {
		out = out[:0]
		rows, err := tx.Query(ctx, claimEndpointsSQLiteSQL)
		if err != nil {
			return err
		}
		var endpoints []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			endpoints = append(endpoints, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var cands []claimCandidate
		for _, ep := range endpoints {
			n := perEndpoint
			if free, ok := room[ep]; ok {
				n = free
			}
			if n = min(n, limit); n <= 0 {
				continue
			}
			rows, err := tx.Query(ctx, claimOldestSQLiteSQL, ep, now, n)
			if err != nil {
				return err
			}
			for rows.Next() {
				var c claimCandidate
				if err := rows.Scan(&c.due, &c.id); err != nil {
					rows.Close()
					return err
				}
				cands = append(cands, c)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(cands) == 0 {
			return nil
		}
		slices.SortFunc(cands, func(a, b claimCandidate) int {
			return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.id, b.id))
		})
		cands = cands[:min(len(cands), limit)]
		args := make([]any, 0, len(cands)+1)
		args = append(args, leaseUntil)
		ph := make([]string, len(cands))
		for i, c := range cands {
			args = append(args, c.id)
			ph[i] = fmt.Sprintf("$%d", i+2)
		}
		rows, err = tx.Query(ctx, fmt.Sprintf(claimLeaseSQLiteSQL, strings.Join(ph, ",")), args...)
		if err != nil {
			return err
		}
		out, err = scanClaimed(rows, out)
		return err
	})
	return out, err
}

// scanClaimed reads claimed deliveries (claimedCols) and closes rows.
func scanClaimed(rows store.Rows, out []claimedDelivery) ([]claimedDelivery, error) {
	defer rows.Close()
	for rows.Next() {
		var (
			c    claimedDelivery
			code *int64
		)
		if err := rows.Scan(&c.ID, &c.EventID, &c.WebhookID, &c.SurveyID, &c.Type, &c.URL, &c.Attempts, &code, &c.LastError,
			&c.CreatedAt, &c.due); err != nil {
			return out, err
		}
		if code != nil {
			c.LastStatusCode = int(*code)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// storedEvent is an event read back from the archive.
type storedEvent struct {
	payload []byte
	trace   map[string]string
}

// loadEvents reads the payloads and trace headers of events.
func loadEvents(ctx context.Context, db *store.DB, ids []string) (map[string]storedEvent, error) {
	out := make(map[string]storedEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	ph := make([]string, len(ids))
	for i, id := range ids {
		args[i] = id
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := db.Query(ctx, "SELECT id, payload, headers FROM events WHERE id IN ("+strings.Join(ph, ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id               string
			payload, headers []byte
		)
		if err := rows.Scan(&id, &payload, &headers); err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		ev := storedEvent{payload: payload}
		if len(headers) > 0 {
			_ = json.Unmarshal(headers, &ev.trace) // trace context is best effort
		}
		out[id] = ev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return out, nil
}
