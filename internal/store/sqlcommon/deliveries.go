package sqlcommon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Deliveries is the part of store.Deliveries both databases run alike. The drivers embed it
// and add ClaimDue and RecordResults (a pgx batch on PostgreSQL, a write transaction on
// SQLite), and set what differs in the fields.
type Deliveries struct {
	// Read runs read-only statements, Write the others.
	Read, Write store.Querier
	// NewIDExpr is the SQL expression of a new replay delivery's id: "dlv_" and 32 random hex
	// digits, so that a replay batch is one INSERT … SELECT that moves no rows through the
	// process.
	NewIDExpr string
	// SkipLocked follows NextReplay's SELECT: on PostgreSQL " FOR UPDATE SKIP LOCKED", so that
	// two processes never work on the same replay at once.
	SkipLocked string
	// ForShare follows Hold's SELECT: on PostgreSQL " FOR SHARE"; SQLite's write transaction
	// already excludes every other writer.
	ForShare string
	// ReplaySurveyExpr is the SQL expression of a replays row's filter's surveyId.
	ReplaySurveyExpr string
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullTime is t in micros, NULL when zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// nullInt is v, NULL when zero.
func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return int64(v)
}

// nullText is s, NULL when empty.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ---- the engine's writes ----

// chunkSizes are the row counts of multi-row statements: a batch of n rows takes at most one
// statement per bit of n, so PostgreSQL prepares each shape once per connection.
var chunkSizes = [...]int{256, 128, 64, 32, 16, 8, 4, 2, 1}

const deliveryCols = 14

// upsertDeliveriesSQL leaves out the deliveries of a survey deleted after they were created
// (a tombstone of DeleteSurvey covers them): an attempt in flight while its survey was deleted
// must not bring the delivery back. The tombstones are a few rows; the check is one index probe.
// The VALUES are cast, since INSERT … SELECT does not give them the columns' types. A lane
// delivery (column14 = 1) takes its lane position from its event's seq, once: an update never
// moves it.
const upsertDeliveriesSQL = `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
	attempts, last_status_code, last_error, next_attempt_at, created_at, updated_at, lane_seq)
SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10,
	v.column11, v.column12, v.column13, CASE WHEN v.column14 = 1 THEN (SELECT e.seq FROM events e WHERE e.id = v.column2) END
FROM (VALUES %s) AS v
WHERE NOT EXISTS (SELECT 1 FROM delivery_tombstones t WHERE t.survey_id = v.column4 AND t.deleted_at >= v.column12)
ON CONFLICT (id) DO UPDATE SET url = excluded.url, status = excluded.status, attempts = excluded.attempts,
	last_status_code = excluded.last_status_code, last_error = excluded.last_error,
	next_attempt_at = excluded.next_attempt_at, lease_until = NULL, updated_at = excluded.updated_at
WHERE deliveries.status = 'pending' AND deliveries.attempts <= excluded.attempts`

const attemptCols = 7

// insertAttemptsSQL records attempts of stored deliveries only (see upsertDeliveriesSQL).
// The check is a scalar subquery, one probe of the key per row, not EXISTS: PostgreSQL turns
// an EXISTS into a join, and planned it as a hash join over every stored delivery, whatever
// the statistics (TestResultWritesReadBoundedRows): a cost that grew with the table, 50 µs
// per attempt at 80,000 deliveries.
const insertAttemptsSQL = `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code,
	error, response_body)
SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7
FROM (VALUES %s) AS v
WHERE (SELECT d.id FROM deliveries d WHERE d.id = v.column1) IS NOT NULL
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

// The multi-row statements, built once per shape.
var upsertDeliveries, insertAttempts = func() (map[int]string, map[int]string) {
	d, a := map[int]string{}, map[int]string{}
	for _, n := range chunkSizes {
		d[n] = fmt.Sprintf(upsertDeliveriesSQL, castRows(n, deliveryTypes))
		a[n] = fmt.Sprintf(insertAttemptsSQL, castRows(n, attemptTypes))
	}
	return d, a
}()

// The column types of the upserted deliveries and attempts, in VALUES order.
var (
	deliveryTypes = []string{"TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "INTEGER", "INTEGER", "TEXT",
		"BIGINT", "BIGINT", "BIGINT", "INTEGER"}
	attemptTypes = []string{"TEXT", "INTEGER", "BIGINT", "INTEGER", "INTEGER", "TEXT", "TEXT"}
)

// castRows is n VALUES rows of placeholders numbered from 1, each cast to its column's type.
func castRows(n int, types []string) string {
	var b strings.Builder
	for r := range n {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c, typ := range types {
			if c > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "CAST($%d AS %s)", r*len(types)+c+1, typ)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// chunkFor is the largest statement size that fits n rows.
func chunkFor(n int) int {
	for _, size := range chunkSizes {
		if size <= n {
			return size
		}
	}
	return 1
}

// ResultPlan is the statements that record a batch of results. Release it after use: its
// buffers are reused by the next batch.
type ResultPlan struct {
	Statements []Statement
	args       []any
}

var planPool = sync.Pool{New: func() any { return new(ResultPlan) }}

// Release hands the plan's buffers back.
func (p *ResultPlan) Release() {
	clear(p.args)
	clear(p.Statements)
	p.args, p.Statements = p.args[:0], p.Statements[:0]
	planPool.Put(p)
}

// PlanResults lists the statements that record r, in this order: the deliveries (upserted,
// in chunks), the attempt log (in chunks), the endpoints' failure counters, the disabling of
// endpoints that answered 410, and of those past the failure threshold.
func PlanResults(r *store.DeliveryResults) *ResultPlan {
	p := planPool.Get().(*ResultPlan)
	args, stmts := p.args[:0], p.Statements[:0]
	for i := 0; i < len(r.Deliveries); {
		size := chunkFor(len(r.Deliveries) - i)
		start := len(args)
		for k := range r.Deliveries[i : i+size] {
			d := &r.Deliveries[i+k]
			args = append(args, d.ID, d.EventID, d.WebhookID, d.SurveyID, d.Type, d.URL, d.Status, d.Attempts,
				nullInt(d.LastStatusCode), d.LastError, nullTime(d.NextAttemptAt), micros(d.CreatedAt), micros(d.UpdatedAt),
				laneFlag(d.Lane))
		}
		stmts = append(stmts, Statement{SQL: upsertDeliveries[size], Args: args[start:len(args):len(args)]})
		i += size
	}
	for i := 0; i < len(r.Attempts); {
		size := chunkFor(len(r.Attempts) - i)
		start := len(args)
		for k := range r.Attempts[i : i+size] {
			a := &r.Attempts[i+k]
			args = append(args, a.DeliveryID, a.N, micros(a.StartedAt), a.Duration.Milliseconds(), nullInt(a.StatusCode),
				a.Error, a.ResponseBody)
		}
		stmts = append(stmts, Statement{SQL: insertAttempts[size], Args: args[start:len(args):len(args)]})
		i += size
	}
	if len(r.Counters) > 0 {
		var b strings.Builder
		start := len(args)
		for i, u := range r.Counters {
			if i > 0 {
				b.WriteByte(',')
			}
			n := 4*i + 1
			fmt.Fprintf(&b, counterRow, n, n+1, n+2, n+3)
			reset := 0
			if u.Reset {
				reset = 1
			}
			first := int64(0)
			if !u.FirstFailureAt.IsZero() {
				first = micros(u.FirstFailureAt)
			}
			args = append(args, u.WebhookID, reset, u.Failures, first)
		}
		stmts = append(stmts, Statement{SQL: fmt.Sprintf(updateCountersSQL, b.String()), Args: args[start:len(args):len(args)]})
	}
	now := micros(r.Now)
	for _, id := range r.Gone {
		start := len(args)
		args = append(args, store.GoneReason, now, id)
		stmts = append(stmts, Statement{SQL: disableGoneSQL, Args: args[start:len(args):len(args)], Disables: true})
	}
	if f := r.Failing; f != nil && len(f.WebhookIDs) > 0 {
		start := len(args)
		args = append(args, "disabled after ", now, f.Threshold, micros(f.SpanUntil))
		ph := make([]string, len(f.WebhookIDs))
		for i, id := range f.WebhookIDs {
			args = append(args, id)
			ph[i] = "$" + strconv.Itoa(i+5)
		}
		stmts = append(stmts, Statement{SQL: fmt.Sprintf(disableFailingSQL, strings.Join(ph, ",")),
			Args: args[start:len(args):len(args)], Disables: true})
	}
	p.args, p.Statements = args, stmts
	return p
}

// ScanDisabled appends the endpoints a disabling statement returned, and closes rows.
func ScanDisabled(rows store.Rows, out []store.DisabledEndpoint) ([]store.DisabledEndpoint, error) {
	defer rows.Close()
	for rows.Next() {
		var d store.DisabledEndpoint
		if err := rows.Scan(&d.ID, &d.SurveyID, &d.Reason); err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ExecResults runs a plan's statements one by one on q (SQLite's write transaction).
func ExecResults(ctx context.Context, q store.Querier, p *ResultPlan, disabled []store.DisabledEndpoint) ([]store.DisabledEndpoint, error) {
	for _, s := range p.Statements {
		if !s.Disables {
			if _, err := q.Exec(ctx, s.SQL, s.Args...); err != nil {
				return disabled, err
			}
			continue
		}
		rows, err := q.Query(ctx, s.SQL, s.Args...)
		if err != nil {
			return disabled, err
		}
		if disabled, err = ScanDisabled(rows, disabled); err != nil {
			return disabled, err
		}
	}
	return disabled, nil
}

// laneFlag is the upsert's lane column: 1 for a lane delivery.
func laneFlag(lane bool) int {
	if lane {
		return 1
	}
	return 0
}

// ---- the claim ----

// ClaimedCols are the columns of a claimed delivery, in ScanClaimed's order.
const ClaimedCols = `id, event_id, webhook_id, survey_id, type, url, attempts, last_status_code, last_error, created_at,
	next_attempt_at, lane_seq IS NOT NULL`

// ScanClaimed appends claimed deliveries (ClaimedCols) and closes rows.
func ScanClaimed(rows store.Rows, out []store.Delivery) ([]store.Delivery, error) {
	defer rows.Close()
	for rows.Next() {
		var (
			d            store.Delivery
			code         *int64
			created, due int64
		)
		if err := rows.Scan(&d.ID, &d.EventID, &d.WebhookID, &d.SurveyID, &d.Type, &d.URL, &d.Attempts, &code, &d.LastError,
			&created, &due, &d.Lane); err != nil {
			return out, err
		}
		if code != nil {
			d.LastStatusCode = int(*code)
		}
		d.Status = store.DeliveryPending
		d.CreatedAt, d.NextAttemptAt = fromMicros(created), fromMicros(due)
		out = append(out, d)
	}
	return out, rows.Err()
}

// LaneGapSQL is the condition under which a lane's head (the lane delivery aliased head, of
// the endpoint w, LEFT JOINed) may be sent, with $2 now and $3 the claim's LaneGapUntil; %s is
// the dialect's two-argument maximum (GREATEST, MAX). The head is due and not leased (a lease
// is the one attempt in flight), and either its endpoint is gone (the head is ended by the
// engine), or it was stored before LaneGapUntil, or no event of the survey between the
// lane's last position below the head (or the endpoint's lane_from_seq, if later) and the head
// lacks its delivery to the endpoint, counting only events of subscribed types that are not
// erased: those are the events the engine will record a delivery of (pending, or skipped).
// The scan reads events_survey_seq_idx between two lane positions, and a probe of
// deliveries_event_idx per event found (a scalar subquery rather than NOT EXISTS, which
// PostgreSQL may plan as a hash anti-join over every delivery; see PurgeEventsStatement).
const LaneGapSQL = `head.next_attempt_at <= $2 AND (head.lease_until IS NULL OR head.lease_until < $2)
	AND (w.id IS NULL OR head.created_at < $3 OR NOT EXISTS (
		SELECT 1 FROM events e
		WHERE e.survey_id = w.survey_id AND e.seq < head.lane_seq
			AND e.seq > %s(w.lane_from_seq, COALESCE((SELECT p.lane_seq FROM deliveries p
				WHERE p.webhook_id = head.webhook_id AND p.lane_seq IS NOT NULL AND p.lane_seq < head.lane_seq
				ORDER BY p.lane_seq DESC LIMIT 1), 0))
			AND e.erased_at IS NULL
			AND (',' || w.events || ',') LIKE ('%%,' || e.type || ',%%')
			AND (SELECT 1 FROM deliveries x WHERE x.event_id = e.id AND x.webhook_id = w.id LIMIT 1) IS NULL))`

// ---- reads and single writes ----

// Insert adds d and its attempts.
func (q Deliveries) Insert(ctx context.Context, d *store.Delivery, attempts []store.Attempt) error {
	_, err := q.Write.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
		last_status_code, last_error, next_attempt_at, replay_of, replay_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		d.ID, d.EventID, d.WebhookID, d.SurveyID, d.Type, d.URL, d.Status, d.Attempts, nullInt(d.LastStatusCode), d.LastError,
		nullTime(d.NextAttemptAt), nullText(d.ReplayOf), nullText(d.ReplayID), micros(d.CreatedAt), micros(d.UpdatedAt))
	if err != nil {
		return fmt.Errorf("inserting delivery: %w", err)
	}
	for i := range attempts {
		a := &attempts[i]
		_, err := q.Write.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, error,
			response_body) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			d.ID, a.N, micros(a.StartedAt), a.Duration.Milliseconds(), nullInt(a.StatusCode), a.Error, a.ResponseBody)
		if err != nil {
			return fmt.Errorf("inserting attempt: %w", err)
		}
	}
	return nil
}

// EventDeliveries returns the ids of the deliveries of an event.
func (q Deliveries) EventDeliveries(ctx context.Context, eventID string) ([]string, error) {
	rows, err := q.Read.Query(ctx, "SELECT id FROM deliveries WHERE event_id = $1", eventID)
	if err != nil {
		return nil, fmt.Errorf("reading deliveries of event %s: %w", eventID, err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("reading deliveries of event %s: %w", eventID, err)
	}
	return ids, nil
}

// PendingRetries counts the pending deliveries with a next attempt.
func (q Deliveries) PendingRetries(ctx context.Context) (int64, error) {
	var n int64
	if err := q.Read.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at IS NOT NULL").
		Scan(&n); err != nil {
		return 0, fmt.Errorf("counting pending retries: %w", err)
	}
	return n, nil
}

func scanStrings(rows store.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

const deliveryColumns = `d.id, d.event_id, d.type, d.survey_id, d.webhook_id, d.url, d.status, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.replay_of, d.replay_id, d.created_at, d.updated_at`

func scanDelivery(row store.Row) (store.Delivery, error) {
	var (
		d                    store.Delivery
		code, next           *int64
		replayOf, replayID   *string
		createdAt, updatedAt int64
	)
	err := row.Scan(&d.ID, &d.EventID, &d.Type, &d.SurveyID, &d.WebhookID, &d.URL, &d.Status, &d.Attempts,
		&code, &d.LastError, &next, &replayOf, &replayID, &createdAt, &updatedAt)
	if err != nil {
		return store.Delivery{}, err
	}
	if code != nil {
		d.LastStatusCode = int(*code)
	}
	if next != nil {
		d.NextAttemptAt = fromMicros(*next)
	}
	if replayOf != nil {
		d.ReplayOf = *replayOf
	}
	if replayID != nil {
		d.ReplayID = *replayID
	}
	d.CreatedAt, d.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return d, nil
}

// where builds a WHERE clause with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

// arg adds a value and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// in returns "(…)" with a placeholder for each value.
func (w *where) in(vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = w.arg(v)
	}
	return "(" + strings.Join(ph, ", ") + ")"
}

func (w *where) and(cond string) { w.conds = append(w.conds, cond) }

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// List returns up to f.Limit deliveries matching f, newest first.
func (q Deliveries) List(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	if f.Surveys != nil && len(f.Surveys) == 0 {
		return []store.Delivery{}, nil
	}
	var w where
	if f.SurveyID != "" {
		w.and("d.survey_id = " + w.arg(f.SurveyID))
	} else if f.Surveys != nil {
		w.and("d.survey_id IN " + w.in(f.Surveys))
	}
	if f.WebhookID != "" {
		w.and("d.webhook_id = " + w.arg(f.WebhookID))
	}
	if len(f.Status) > 0 {
		w.and("d.status IN " + w.in(f.Status))
	}
	if f.Type != "" {
		w.and("d.type = " + w.arg(f.Type))
	}
	if !f.Since.IsZero() {
		w.and("d.created_at >= " + w.arg(micros(f.Since)))
	}
	// Only the tighter of until and the cursor bounds the scan from above, so that a planner
	// without statistics (SQLite's) takes the keyset for the index range.
	keyset := f.Before != nil
	if !f.Until.IsZero() {
		until := micros(f.Until)
		if keyset && micros(f.Before.CreatedAt) >= until {
			keyset = false // every delivery before until comes before the cursor
		}
		if !keyset {
			w.and("d.created_at < " + w.arg(until))
		}
	}
	if keyset {
		w.and("(d.created_at, d.id) < (" + w.arg(micros(f.Before.CreatedAt)) + ", " + w.arg(f.Before.ID) + ")")
	}
	query := "SELECT " + deliveryColumns + " FROM deliveries d" + w.String() +
		" ORDER BY d.created_at DESC, d.id DESC LIMIT " + strconv.Itoa(max(f.Limit, 0))
	rows, err := q.Read.Query(ctx, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	defer rows.Close()
	out := make([]store.Delivery, 0, min(f.Limit, 64))
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("listing deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return out, nil
}

// Get returns a delivery; store.ErrNotFound when there is none.
func (q Deliveries) Get(ctx context.Context, id string) (store.Delivery, error) {
	d, err := scanDelivery(q.Read.QueryRow(ctx, "SELECT "+deliveryColumns+" FROM deliveries d WHERE d.id = $1", id))
	if err != nil {
		return store.Delivery{}, fmt.Errorf("getting delivery: %w", err)
	}
	return d, nil
}

// Hold implements store.Deliveries.
func (q Deliveries) Hold(ctx context.Context, id string) error {
	var one int
	if err := q.Write.QueryRow(ctx, "SELECT 1 FROM deliveries WHERE id = $1"+q.ForShare, id).Scan(&one); err != nil {
		return fmt.Errorf("holding delivery %s: %w", id, err)
	}
	return nil
}

// Attempts returns a delivery's attempt log in order.
func (q Deliveries) Attempts(ctx context.Context, deliveryID string) ([]store.Attempt, error) {
	rows, err := q.Read.Query(ctx, `SELECT n, started_at, duration_ms, status_code, error, response_body
		FROM delivery_attempts WHERE delivery_id = $1 ORDER BY n`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("reading attempts: %w", err)
	}
	defer rows.Close()
	out := []store.Attempt{}
	for rows.Next() {
		var (
			a           store.Attempt
			started, ms int64
			code        *int64
		)
		if err := rows.Scan(&a.N, &started, &ms, &code, &a.Error, &a.ResponseBody); err != nil {
			return nil, fmt.Errorf("reading attempts: %w", err)
		}
		a.DeliveryID = deliveryID
		a.StartedAt = fromMicros(started)
		a.Duration = time.Duration(ms) * time.Millisecond
		if code != nil {
			a.StatusCode = int(*code)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading attempts: %w", err)
	}
	return out, nil
}

// Target returns an endpoint's URL, survey and whether it is disabled.
func (q Deliveries) Target(ctx context.Context, webhookID string) (url, surveyID string, disabled bool, err error) {
	err = q.Read.QueryRow(ctx, "SELECT url, survey_id, disabled FROM webhooks WHERE id = $1", webhookID).
		Scan(&url, &surveyID, &disabled)
	if err != nil {
		return "", "", false, fmt.Errorf("looking up webhook: %w", err)
	}
	return url, surveyID, disabled, nil
}

// ---- erasure ----

// DeleteSurvey deletes a survey's deliveries, attempts and replays, after its tombstone.
func (q Deliveries) DeleteSurvey(ctx context.Context, surveyID string, since, now time.Time) (int64, error) {
	if _, err := q.Write.Exec(ctx, `INSERT INTO delivery_tombstones (survey_id, since, deleted_at) VALUES ($1, $2, $3)`,
		surveyID, micros(since), micros(now)); err != nil {
		return 0, fmt.Errorf("recording the tombstone of survey %s: %w", surveyID, err)
	}
	if _, err := q.Write.Exec(ctx, `DELETE FROM delivery_attempts
		WHERE delivery_id IN (SELECT id FROM deliveries WHERE survey_id = $1)`, surveyID); err != nil {
		return 0, fmt.Errorf("deleting the attempts of survey %s: %w", surveyID, err)
	}
	n, err := q.Write.Exec(ctx, `DELETE FROM deliveries WHERE survey_id = $1`, surveyID)
	if err != nil {
		return 0, fmt.Errorf("deleting the deliveries of survey %s: %w", surveyID, err)
	}
	if _, err := q.Write.Exec(ctx, `DELETE FROM replays WHERE `+q.ReplaySurveyExpr+` = $1`, surveyID); err != nil {
		return 0, fmt.Errorf("deleting the replays of survey %s: %w", surveyID, err)
	}
	return n, nil
}

// Purged reports whether a tombstone covers createdAt.
func (q Deliveries) Purged(ctx context.Context, createdAt time.Time) (bool, error) {
	var n int
	us := micros(createdAt)
	if err := q.Read.QueryRow(ctx, `SELECT count(*) FROM delivery_tombstones WHERE since <= $1 AND deleted_at >= $1`,
		us).Scan(&n); err != nil {
		return false, fmt.Errorf("reading delivery tombstones: %w", err)
	}
	return n > 0, nil
}

// OldestFinishedDelivery implements store.Deliveries, from the first entry of
// deliveries_expiry_idx.
func (q Deliveries) OldestFinishedDelivery(ctx context.Context) (time.Time, error) {
	t, err := oldest(ctx, q.Read, "SELECT updated_at FROM deliveries WHERE status <> 'pending' ORDER BY updated_at LIMIT 1")
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the oldest finished delivery: %w", err)
	}
	return t, nil
}

// PruneTombstones implements store.Deliveries. The table holds a row per deleted survey: the
// delete reads it whole, once per purge.
func (q Deliveries) PruneTombstones(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := q.Write.Exec(ctx, `DELETE FROM delivery_tombstones WHERE deleted_at < $1`, store.Micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("pruning delivery tombstones: %w", err)
	}
	return n, nil
}
