package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dispatch24/dispatch24/internal/store"
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

// claimDueSQL leases due pending deliveries, oldest due first: per endpoint no more than the
// room this process has for it (the VALUES list %[1]s of (webhook id, free slots); $3 for
// endpoints not listed), $4 in all, and on PostgreSQL skipping rows another dispatcher is
// claiming at the same moment (%[2]s). The due conditions are repeated on the locking SELECT
// so that PostgreSQL re-checks them against a row another dispatcher has just claimed.
const claimDueSQL = `UPDATE deliveries SET lease_until = $1
WHERE id IN (
	SELECT id FROM deliveries
	WHERE id IN (
		SELECT due.id FROM (
			SELECT id, webhook_id, row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS rn
			FROM deliveries
			WHERE status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
		) due
		LEFT JOIN (VALUES %[1]s) AS room ON room.column1 = due.webhook_id
		WHERE due.rn <= COALESCE(room.column2, $3)
	)
	AND status = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
	ORDER BY next_attempt_at, id
	LIMIT $4%[2]s
)
RETURNING id, event_id, webhook_id, survey_id, type, url, attempts, last_status_code, last_error, created_at,
	next_attempt_at`

// noRoom stands in for an empty room list: VALUES needs a row, and no endpoint has this id.
const noRoom = "(CAST('' AS TEXT), CAST(0 AS INTEGER))"

func claimDue(ctx context.Context, db *store.DB, now, leaseUntil int64, perEndpoint, limit int, rooms []endpointRoom) ([]claimedDelivery, error) {
	args := []any{leaseUntil, now, perEndpoint, limit}
	values := noRoom
	if len(rooms) > 0 {
		var b strings.Builder
		for i, r := range rooms {
			if i > 0 {
				b.WriteByte(',')
			}
			args = append(args, r.id, r.free)
			fmt.Fprintf(&b, "(CAST($%d AS TEXT), CAST($%d AS INTEGER))", len(args)-1, len(args))
		}
		values = b.String()
	}
	rows, err := db.Write().Query(ctx, fmt.Sprintf(claimDueSQL, values, db.Dialect.SkipLocked()), args...)
	if err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", err)
	}
	defer rows.Close()
	var out []claimedDelivery
	for rows.Next() {
		var (
			c    claimedDelivery
			code *int64
		)
		if err := rows.Scan(&c.ID, &c.EventID, &c.WebhookID, &c.SurveyID, &c.Type, &c.URL, &c.Attempts, &code, &c.LastError,
			&c.CreatedAt, &c.due); err != nil {
			return nil, fmt.Errorf("claiming due deliveries: %w", err)
		}
		if code != nil {
			c.LastStatusCode = int(*code)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming due deliveries: %w", err)
	}
	// RETURNING follows no order: attempt the longest waiting first.
	slices.SortFunc(out, func(a, b claimedDelivery) int {
		return cmp.Or(cmp.Compare(a.due, b.due), strings.Compare(a.ID, b.ID))
	})
	return out, nil
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
