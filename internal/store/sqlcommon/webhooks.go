package sqlcommon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Webhooks implements store.Webhooks with SQL both databases accept. Read runs the read-only
// statements and Write the others (the same Querier inside a transaction). The drivers embed
// it and override GetForUpdate.
type Webhooks struct {
	Read, Write store.Querier
	// EventSeqExpr is the SQL expression of the last events.seq taken (migration 140), that of
	// events not yet committed included: a FIFO lane's gap check starts after it.
	EventSeqExpr string
}

var _ store.Webhooks = Webhooks{}

// WebhookColumns are the columns ScanWebhook reads, in its order.
const WebhookColumns = `id, survey_id, url, description, events, signature_scheme, secret, previous_secret, previous_secret_until,
	disabled, disabled_reason, disabled_at, consecutive_failures, first_failure_at, created_at, updated_at, rate_limit, ordering`

// SelectWebhookSQL reads the webhook $1 of survey $2; a driver appends its row lock to it.
const SelectWebhookSQL = "SELECT " + WebhookColumns + " FROM webhooks WHERE id = $1 AND survey_id = $2"

// ScanWebhook reads a row of WebhookColumns.
func ScanWebhook(row store.Row) (*store.Webhook, error) {
	var (
		w                                   store.Webhook
		evs                                 string
		prevSecret                          *string
		prevUntil, disabledAt, firstFailure *int64
		createdAt, updatedAt                int64
		rateLimit                           *int64
	)
	err := row.Scan(&w.ID, &w.SurveyID, &w.URL, &w.Description, &evs, &w.SignatureScheme, &w.Secret, &prevSecret, &prevUntil,
		&w.Disabled, &w.DisabledReason, &disabledAt, &w.ConsecutiveFailures, &firstFailure, &createdAt, &updatedAt, &rateLimit, &w.Ordering)
	if err != nil {
		return nil, err
	}
	w.RateLimit = webhooksRateLimit(rateLimit)
	w.Events = splitWebhookEvents(evs)
	if prevSecret != nil {
		w.PreviousSecret = *prevSecret
	}
	w.PreviousSecretUntil = store.NullMicros(prevUntil)
	w.DisabledAt = store.NullMicros(disabledAt)
	w.FirstFailureAt = store.NullMicros(firstFailure)
	w.CreatedAt = store.FromMicros(createdAt)
	w.UpdatedAt = store.FromMicros(updatedAt)
	return &w, nil
}

// orderingOrDefault is o, OrderingNone when empty (a caller that predates the field).
func orderingOrDefault(o string) string {
	if o == "" {
		return store.OrderingNone
	}
	return o
}

// joinWebhookEvents and splitWebhookEvents convert the webhooks.events column: event types separated by
// commas.
func joinWebhookEvents(types []string) string { return strings.Join(types, ",") }

func splitWebhookEvents(s string) []string {
	out := []string{}
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// webhooksRateLimit converts the rate_limit column (NULL: no limit) to Webhook.RateLimit.
func webhooksRateLimit(v *int64) int {
	if v == nil {
		return 0
	}
	return int(*v)
}

// webhooksNullRateLimit converts Webhook.RateLimit to the rate_limit column.
func webhooksNullRateLimit(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}

func webhooksNullMicros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := store.Micros(t)
	return &us
}

func (q Webhooks) Create(ctx context.Context, w *store.Webhook) error {
	_, err := q.Write.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, description, events, secret,
		disabled, disabled_reason, consecutive_failures, created_at, updated_at, signature_scheme, rate_limit, ordering, lane_from_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, `+q.EventSeqExpr+`)`,
		w.ID, w.SurveyID, w.URL, w.Description, joinWebhookEvents(w.Events), w.Secret,
		w.Disabled, w.DisabledReason, w.ConsecutiveFailures, store.Micros(w.CreatedAt), store.Micros(w.UpdatedAt),
		w.SignatureScheme, webhooksNullRateLimit(w.RateLimit), orderingOrDefault(w.Ordering))
	if err != nil {
		return fmt.Errorf("inserting webhook: %w", err)
	}
	return nil
}

func (q Webhooks) Get(ctx context.Context, surveyID, id string) (*store.Webhook, error) {
	w, err := ScanWebhook(q.Read.QueryRow(ctx, SelectWebhookSQL, id, surveyID))
	if err != nil {
		return nil, fmt.Errorf("getting webhook: %w", err)
	}
	return w, nil
}

// GetForUpdate needs no lock here: SQLite's writer transactions are exclusive.
func (q Webhooks) GetForUpdate(ctx context.Context, surveyID, id string) (*store.Webhook, error) {
	return q.Get(ctx, surveyID, id)
}

func (q Webhooks) List(ctx context.Context, surveyID string) ([]*store.Webhook, error) {
	rows, err := q.Read.Query(ctx,
		"SELECT "+WebhookColumns+" FROM webhooks WHERE survey_id = $1 ORDER BY created_at, id", surveyID)
	if err != nil {
		return nil, fmt.Errorf("listing webhooks: %w", err)
	}
	defer rows.Close()
	out := []*store.Webhook{}
	for rows.Next() {
		w, err := ScanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("listing webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing webhooks: %w", err)
	}
	return out, nil
}

func (q Webhooks) Update(ctx context.Context, w *store.Webhook) error {
	// lane_from_seq is set before ordering and events in the SET list, but SQL reads the old
	// row on the right of every assignment anyway.
	n, err := q.Write.Exec(ctx, `UPDATE webhooks SET
		lane_from_seq = CASE WHEN events <> $4 OR ordering <> $12 THEN `+q.EventSeqExpr+` ELSE lane_from_seq END,
		url = $3, events = $4, description = $5, disabled = $6,
		disabled_reason = $7, disabled_at = $8, consecutive_failures = $9, first_failure_at = $10, updated_at = $11,
		ordering = $12, rate_limit = $13
		WHERE id = $1 AND survey_id = $2`,
		w.ID, w.SurveyID, w.URL, joinWebhookEvents(w.Events), w.Description, w.Disabled, w.DisabledReason,
		webhooksNullMicros(w.DisabledAt), w.ConsecutiveFailures, webhooksNullMicros(w.FirstFailureAt), store.Micros(w.UpdatedAt),
		orderingOrDefault(w.Ordering), webhooksNullRateLimit(w.RateLimit))
	if err != nil {
		return fmt.Errorf("updating webhook: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("updating webhook: %w", store.ErrNotFound)
	}
	return nil
}

func (q Webhooks) Delete(ctx context.Context, surveyID, id string) error {
	n, err := q.Write.Exec(ctx, "DELETE FROM webhooks WHERE id = $1 AND survey_id = $2", id, surveyID)
	if err != nil {
		return fmt.Errorf("deleting webhook: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("deleting webhook: %w", store.ErrNotFound)
	}
	return nil
}

func (q Webhooks) RotateSecret(ctx context.Context, surveyID, id, scheme, secret string, until, now time.Time) (*store.Webhook, error) {
	w, err := ScanWebhook(q.Write.QueryRow(ctx, `UPDATE webhooks SET previous_secret = secret, previous_secret_until = $3,
		secret = $4, signature_scheme = $6, updated_at = $5 WHERE id = $1 AND survey_id = $2
		RETURNING `+WebhookColumns,
		id, surveyID, store.Micros(until), secret, store.Micros(now), scheme))
	if err != nil {
		return nil, fmt.Errorf("rotating webhook secret: %w", err)
	}
	return w, nil
}

// webhooksLoadSurveySQL reads the webhooks version and a survey's webhooks in one statement, so in one
// snapshot: one row of NULL survey columns when the survey does not exist, one row of NULL
// webhook columns when it has no webhooks.
const webhooksLoadSurveySQL = `SELECT v.version, s.id, s.jwt_secret, w.id, w.url, w.description, w.events, w.signature_scheme, w.secret,
	w.previous_secret, w.previous_secret_until, w.disabled, w.disabled_reason, w.disabled_at,
	w.consecutive_failures, w.first_failure_at, w.created_at, w.updated_at, w.rate_limit, w.ordering
FROM webhooks_version v
LEFT JOIN surveys s ON s.id = $1
LEFT JOIN webhooks w ON w.survey_id = s.id
WHERE v.id = 1
ORDER BY w.created_at, w.id`

func (q Webhooks) LoadSurvey(ctx context.Context, surveyID string) (*store.SurveyWebhooks, error) {
	rows, err := q.Read.Query(ctx, webhooksLoadSurveySQL, surveyID)
	if err != nil {
		return nil, fmt.Errorf("loading webhooks of survey %s: %w", surveyID, err)
	}
	defer rows.Close()
	out := &store.SurveyWebhooks{}
	for rows.Next() {
		var (
			survey, jwtSecret, id, url, description, types, scheme, secret, prev, reason, ordering *string
			prevUntil, disabledAt, firstFailure, createdAt, updatedAt                              *int64
			disabled                                                                               *bool
			failures, rateLimit                                                                    *int64
		)
		if err := rows.Scan(&out.Version, &survey, &jwtSecret, &id, &url, &description, &types, &scheme, &secret, &prev,
			&prevUntil, &disabled, &reason, &disabledAt, &failures, &firstFailure, &createdAt, &updatedAt, &rateLimit, &ordering); err != nil {
			return nil, fmt.Errorf("loading webhooks of survey %s: %w", surveyID, err)
		}
		if survey == nil {
			continue // the survey does not exist
		}
		out.Found = true
		out.JWTSecret = webhooksDeref(jwtSecret)
		if id == nil {
			continue // the survey has no webhooks: one row of NULLs
		}
		w := &store.Webhook{
			ID:                  *id,
			SurveyID:            surveyID,
			URL:                 webhooksDeref(url),
			Description:         webhooksDeref(description),
			Events:              splitWebhookEvents(webhooksDeref(types)),
			SignatureScheme:     webhooksDeref(scheme),
			Secret:              webhooksDeref(secret),
			PreviousSecret:      webhooksDeref(prev),
			PreviousSecretUntil: store.NullMicros(prevUntil),
			Disabled:            disabled != nil && *disabled,
			DisabledReason:      webhooksDeref(reason),
			DisabledAt:          store.NullMicros(disabledAt),
			FirstFailureAt:      store.NullMicros(firstFailure),
			CreatedAt:           store.NullMicros(createdAt),
			UpdatedAt:           store.NullMicros(updatedAt),
			RateLimit:           webhooksRateLimit(rateLimit),
			Ordering:            webhooksDeref(ordering),
		}
		if failures != nil {
			w.ConsecutiveFailures = int(*failures)
		}
		out.Webhooks = append(out.Webhooks, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading webhooks of survey %s: %w", surveyID, err)
	}
	return out, nil
}

func webhooksDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (q Webhooks) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := q.Read.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the webhooks version: %w", err)
	}
	return v, nil
}

func (q Webhooks) StaleSecrets(ctx context.Context, sealedPrefix string) ([]store.WebhookSecrets, error) {
	rows, err := q.Read.Query(ctx, `SELECT id, secret, previous_secret FROM webhooks
		WHERE substr(secret, 1, $2) <> $1 OR substr(previous_secret, 1, $2) <> $1`, sealedPrefix, len(sealedPrefix))
	if err != nil {
		return nil, fmt.Errorf("reading webhook secrets: %w", err)
	}
	defer rows.Close()
	var out []store.WebhookSecrets
	for rows.Next() {
		var r store.WebhookSecrets
		if err := rows.Scan(&r.ID, &r.Secret, &r.PreviousSecret); err != nil {
			return nil, fmt.Errorf("reading webhook secrets: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading webhook secrets: %w", err)
	}
	return out, nil
}

func (q Webhooks) ReplaceSecret(ctx context.Context, id string, previous bool, old, value string) (bool, error) {
	query := "UPDATE webhooks SET secret = $3 WHERE id = $1 AND secret = $2"
	if previous {
		query = "UPDATE webhooks SET previous_secret = $3 WHERE id = $1 AND previous_secret = $2"
	}
	n, err := q.Write.Exec(ctx, query, id, old, value)
	if err != nil {
		return false, fmt.Errorf("replacing webhook secret: %w", err)
	}
	return n > 0, nil
}

// DisableWebhookSQL disables the webhook $3 with reason $1 at $2, returning it (ScanDisabledWebhooks)
// unless it was disabled already; exported for a driver that queues it in a batch of its own.
const DisableWebhookSQL = `UPDATE webhooks SET disabled = TRUE, disabled_reason = $1, disabled_at = $2, updated_at = $2
WHERE id = $3 AND disabled = FALSE
RETURNING id, survey_id, disabled_reason`

func (q Webhooks) Disable(ctx context.Context, id, reason string, now time.Time) (*store.DisabledWebhook, error) {
	var d store.DisabledWebhook
	err := q.Write.QueryRow(ctx, DisableWebhookSQL, reason, store.Micros(now), id).Scan(&d.ID, &d.SurveyID, &d.Reason)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("disabling webhook: %w", err)
	}
	return &d, nil
}

// webhookFailuresSQL applies failure counts. Each VALUES row is (webhook id, 1 when the batch had
// a success, failures after the last success, time of the first of those failures).
const webhookFailuresSQL = `UPDATE webhooks SET
	consecutive_failures = CASE WHEN v.column2 = 1 THEN v.column3 ELSE webhooks.consecutive_failures + v.column3 END,
	first_failure_at = CASE WHEN v.column3 = 0 THEN NULL WHEN v.column2 = 1 THEN v.column4
		ELSE COALESCE(webhooks.first_failure_at, v.column4) END
FROM (VALUES %s) AS v
WHERE webhooks.id = v.column1`

const webhookFailuresRow = "(CAST($%d AS TEXT), CAST($%d AS INTEGER), CAST($%d AS INTEGER), CAST($%d AS BIGINT))"

// WebhookFailuresStatement returns the statement that applies counts (not empty), its arguments
// appended to args, for a driver that queues it in a batch of its own.
func WebhookFailuresStatement(counts []store.FailureCount, args []any) (string, []any) {
	var b strings.Builder
	for i, c := range counts {
		if i > 0 {
			b.WriteByte(',')
		}
		n := len(args) + 1
		fmt.Fprintf(&b, webhookFailuresRow, n, n+1, n+2, n+3)
		reset := 0
		if c.Reset {
			reset = 1
		}
		var first int64
		if !c.FirstFailureAt.IsZero() {
			first = store.Micros(c.FirstFailureAt)
		}
		args = append(args, c.WebhookID, reset, c.Failures, first)
	}
	return fmt.Sprintf(webhookFailuresSQL, b.String()), args
}

func (q Webhooks) CountFailures(ctx context.Context, counts []store.FailureCount) error {
	if len(counts) == 0 {
		return nil
	}
	query, args := WebhookFailuresStatement(counts, nil)
	if _, err := q.Write.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("counting webhook failures: %w", err)
	}
	return nil
}

// webhooksDisableFailingSQL disables, among the listed webhooks, those past the failure threshold.
const webhooksDisableFailingSQL = `UPDATE webhooks SET disabled = TRUE, disabled_reason = CAST($1 AS TEXT) || CAST(consecutive_failures AS TEXT) || ' consecutive failed attempts', disabled_at = $2, updated_at = $2
WHERE id IN (%s) AND disabled = FALSE AND consecutive_failures >= $3 AND first_failure_at <= $4
RETURNING id, survey_id, disabled_reason`

// DisableFailingWebhooksStatement returns the statement of DisableFailing (ids not empty), for a
// driver that queues it in a batch of its own; it returns the rows ScanDisabledWebhooks reads.
func DisableFailingWebhooksStatement(ids []string, threshold int, since, now time.Time) (string, []any) {
	args := []any{"disabled after ", store.Micros(now), threshold, store.Micros(since)}
	ph := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		ph[i] = fmt.Sprintf("$%d", len(args))
	}
	return fmt.Sprintf(webhooksDisableFailingSQL, strings.Join(ph, ",")), args
}

// ScanDisabledWebhooks reads the rows of DisableWebhookSQL and DisableFailingWebhooksStatement, appending them
// to out, and closes rows.
func ScanDisabledWebhooks(rows store.Rows, out []store.DisabledWebhook) ([]store.DisabledWebhook, error) {
	defer rows.Close()
	for rows.Next() {
		var d store.DisabledWebhook
		if err := rows.Scan(&d.ID, &d.SurveyID, &d.Reason); err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (q Webhooks) DisableFailing(ctx context.Context, ids []string, threshold int, since, now time.Time) ([]store.DisabledWebhook, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	query, args := DisableFailingWebhooksStatement(ids, threshold, since, now)
	rows, err := q.Write.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("disabling failing webhooks: %w", err)
	}
	out, err := ScanDisabledWebhooks(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("disabling failing webhooks: %w", err)
	}
	return out, nil
}

// webhookTakeTokensSQL takes tokens of a GCRA bucket in one statement: $1 the webhook, $2 now,
// $3 the tokens wanted (at most the burst), $4 the interval between tokens, $5 the burst, all
// times in microseconds. A new bucket starts full and grants $3. An existing one starts from
// base = max(tat, now), has room for (now + burst·interval − base) / interval tokens (whole
// ones: the division truncates in both databases; a negative room, from a taker whose clock is
// behind, grants none), grants min(room, $3), and moves tat by what it granted. Every SET
// expression reads the row as it was, in both databases, so granted and tat agree.
const webhookTakeTokensSQL = `INSERT INTO webhook_rate_tokens (webhook_id, tat, granted)
VALUES ($1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT) * CAST($4 AS BIGINT), CAST($3 AS BIGINT))
ON CONFLICT (webhook_id) DO UPDATE SET
	granted = ` + webhookGrantSQL + `,
	tat = (CASE WHEN webhook_rate_tokens.tat > CAST($2 AS BIGINT) THEN webhook_rate_tokens.tat ELSE CAST($2 AS BIGINT) END)
		+ ` + webhookGrantSQL + ` * CAST($4 AS BIGINT)
RETURNING tat, granted`

// webhookGrantSQL is the grant of webhookTakeTokensSQL's update: its room, clamped to [0, $3].
const webhookGrantSQL = `(CASE
		WHEN ` + webhookRoomSQL + ` < 0 THEN 0
		WHEN ` + webhookRoomSQL + ` > CAST($3 AS BIGINT) THEN CAST($3 AS BIGINT)
		ELSE ` + webhookRoomSQL + ` END)`

const webhookRoomSQL = `((CAST($2 AS BIGINT) + CAST($5 AS BIGINT) * CAST($4 AS BIGINT)
		- (CASE WHEN webhook_rate_tokens.tat > CAST($2 AS BIGINT) THEN webhook_rate_tokens.tat ELSE CAST($2 AS BIGINT) END))
		/ CAST($4 AS BIGINT))`

func (q Webhooks) TakeTokens(ctx context.Context, t store.TokenTake) (store.TokenGrant, error) {
	interval := t.Interval.Microseconds()
	if t.Want < 1 || t.Burst < 1 || interval < 1 {
		return store.TokenGrant{}, fmt.Errorf("taking rate tokens: want %d, burst %d and interval %s must be positive",
			t.Want, t.Burst, t.Interval)
	}
	want := min(t.Want, t.Burst)
	var tat int64
	var granted int
	err := q.Write.QueryRow(ctx, webhookTakeTokensSQL, t.WebhookID, store.Micros(t.Now), want, interval, t.Burst).
		Scan(&tat, &granted)
	if err != nil {
		return store.TokenGrant{}, fmt.Errorf("taking rate tokens of webhook %s: %w", t.WebhookID, err)
	}
	// The next token is there once the bucket has room for one more: at tat − (burst−1)·interval.
	return store.TokenGrant{Granted: granted, NextAt: store.FromMicros(tat - int64(t.Burst-1)*interval)}, nil
}
