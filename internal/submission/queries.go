package submission

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// Session statuses (survey_sessions.status).
const (
	sessionOpen      = "open"
	sessionCancelled = "cancelled"
	sessionSubmitted = "submitted"
)

// respondentInfo is what a submission needs to know about its respondent: the survey's
// redirect settings and the values a redirect URL can be filled from.
type respondentInfo struct {
	redirectURL        string
	redirectIdentifier string
	username           string
	authToken          string
	customFields       []byte
	disabled           bool
	// webhooksVersion is the store's webhooks version when the respondent was read, in the
	// submitting request: its events carry it (events.Message.WebhooksVersion), so that every
	// webhook change that answered before the request began applies to them.
	webhooksVersion int64
}

// respondentKey names a respondent of a survey.
type respondentKey struct{ surveyID, userID string }

// respondentKeys lists the distinct respondents of items.
func respondentKeys(items []*pending) []respondentKey {
	keys := make([]respondentKey, 0, len(items))
	seen := make(map[respondentKey]bool, len(items))
	for _, it := range items {
		k := it.respondentKey()
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// respondentsQuery reads respondents with their surveys' redirect settings and the webhooks
// version, one query for a whole batch; scanRespondents reads its rows.
func respondentsQuery(keys []respondentKey) (string, []any) {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k.userID
	}
	return `SELECT r.survey_id, r.id, s.redirect_url, s.redirect_identifier, r.username, r.auth_token,
		r.custom_fields, r.disabled, (SELECT version FROM webhooks_version)
		FROM respondents r JOIN surveys s ON s.id = r.survey_id
		WHERE r.id IN (` + store.Placeholders(len(keys), 1, 1) + `)`, args
}

// scanRespondents reads respondentsQuery's rows. Respondents (or surveys) that are gone are
// missing from the map.
func scanRespondents(rows store.Rows, n int) (map[respondentKey]*respondentInfo, error) {
	defer rows.Close()
	out := make(map[respondentKey]*respondentInfo, n)
	for rows.Next() {
		var (
			k  respondentKey
			ri respondentInfo
		)
		if err := rows.Scan(&k.surveyID, &k.userID, &ri.redirectURL, &ri.redirectIdentifier, &ri.username, &ri.authToken,
			&ri.customFields, &ri.disabled, &ri.webhooksVersion); err != nil {
			return nil, fmt.Errorf("reading respondents: %w", err)
		}
		out[k] = &ri
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading respondents: %w", err)
	}
	return out, nil
}

// lookupRespondents runs respondentsQuery on the read pool.
func lookupRespondents(ctx context.Context, db *store.DB, keys []respondentKey) (map[respondentKey]*respondentInfo, error) {
	query, args := respondentsQuery(keys)
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading respondents: %w", err)
	}
	return scanRespondents(rows, len(keys))
}

// followUpURL is the survey's redirect URL filled for this respondent ("" when the survey
// has none).
func (ri *respondentInfo) followUpURL(userID string) string {
	if ri.redirectURL == "" {
		return ""
	}
	t := survey.RedirectTarget{UserID: userID, Username: ri.username, AuthToken: ri.authToken}
	switch ri.redirectIdentifier {
	case survey.IdentifierUserID, survey.IdentifierUsername, survey.IdentifierURLAuthToken, "":
	default:
		// A custom field: decoded only when the redirect needs one. A damaged document
		// fills in as empty, like a missing field.
		_ = json.Unmarshal(ri.customFields, &t.CustomFields)
	}
	return survey.RedirectURL(ri.redirectURL, ri.redirectIdentifier, t)
}

// cancelOpenSessions cancels the respondent's open sessions and returns their ids.
func cancelOpenSessions(ctx context.Context, q store.Querier, surveyID, userID string, now time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `UPDATE survey_sessions SET status = $1, updated_at = $2
		WHERE survey_id = $3 AND user_id = $4 AND status = $5 RETURNING id`,
		sessionCancelled, store.Micros(now), surveyID, userID, sessionOpen)
	if err != nil {
		return nil, fmt.Errorf("cancelling sessions: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("cancelling sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancelling sessions: %w", err)
	}
	return ids, nil
}

// webhooksVersion reads the store's webhooks version, for events whose transaction reads no
// respondent (see respondentInfo.webhooksVersion).
func webhooksVersion(ctx context.Context, q store.Querier) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the webhooks version: %w", err)
	}
	return v, nil
}

func insertSession(ctx context.Context, q store.Querier, id, surveyID, userID string, now time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, id, surveyID, userID, sessionOpen, store.Micros(now))
	if err != nil {
		return fmt.Errorf("starting session: %w", err)
	}
	return nil
}

const submissionColumns = 7

// insertSubmissionsQuery inserts a batch's submissions, skipping any that an earlier one (same
// idempotency key or session of the same respondent) already took, returning the ids it
// inserted.
func insertSubmissionsQuery(items []*pending) (string, []any) {
	args := make([]any, 0, len(items)*submissionColumns)
	for _, it := range items {
		args = append(args, it.id, it.surveyID, it.userID, nullString(it.sessionID), nullString(it.idemKey),
			it.body, store.Micros(it.submittedAt))
	}
	return `INSERT INTO submissions (id, survey_id, user_id, session_id, idempotency_key, body, submitted_at)
		VALUES ` + store.Placeholders(len(items), submissionColumns, 1) + `
		ON CONFLICT DO NOTHING RETURNING id`, args
}

// scanInserted reads the ids insertSubmissionsQuery returns.
func scanInserted(rows store.Rows, n int) (map[string]bool, error) {
	defer rows.Close()
	inserted := make(map[string]bool, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("storing submissions: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storing submissions: %w", err)
	}
	return inserted, nil
}

// insertSubmissions runs insertSubmissionsQuery.
func insertSubmissions(ctx context.Context, q store.Querier, items []*pending) (map[string]bool, error) {
	query, args := insertSubmissionsQuery(items)
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storing submissions: %w", err)
	}
	return scanInserted(rows, len(items))
}

// findSubmissionQuery finds the id of the respondent's earlier submission with the same
// idempotency key or, failing that, the same session (arguments: findSubmissionArgs).
const findSubmissionQuery = `SELECT id FROM submissions
	WHERE survey_id = $1 AND user_id = $2 AND (idempotency_key = $3 OR session_id = $4)
	ORDER BY CASE WHEN idempotency_key = $3 THEN 0 ELSE 1 END LIMIT 1`

func findSubmissionArgs(it *pending) []any {
	return []any{it.surveyID, it.userID, it.idemKey, it.sessionID}
}

// findSubmission runs findSubmissionQuery.
func findSubmission(ctx context.Context, q store.Querier, it *pending) (string, error) {
	var id string
	if err := q.QueryRow(ctx, findSubmissionQuery, findSubmissionArgs(it)...).Scan(&id); err != nil {
		return "", fmt.Errorf("finding the earlier submission: %w", err)
	}
	return id, nil
}

// closeSessions marks the submitted sessions of the batch in one UPDATE (a session closes only
// when it belongs to the submitting respondent and is open).
func closeSessions(ctx context.Context, q store.Querier, now time.Time, items []*pending) error {
	query, args := closeSessionsQuery(now, items)
	if query == "" {
		return nil
	}
	if _, err := q.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("closing sessions: %w", err)
	}
	return nil
}

// closeSessionsQuery is closeSessions' statement ("" when no item names a session): one per
// batch rather than one per submission, since each statement costs the server far more than
// a row does.
func closeSessionsQuery(now time.Time, items []*pending) (string, []any) {
	const fixed = 3
	args := []any{sessionSubmitted, store.Micros(now), sessionOpen}
	for _, it := range items {
		if it.sessionID != "" {
			args = append(args, it.sessionID, it.surveyID, it.userID)
		}
	}
	n := (len(args) - fixed) / 3
	if n == 0 {
		return "", nil
	}
	return `UPDATE survey_sessions SET status = $1, updated_at = $2
		WHERE status = $3 AND (id, survey_id, user_id) IN (VALUES ` + store.Placeholders(n, 3, fixed+1) + `)`, args
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
