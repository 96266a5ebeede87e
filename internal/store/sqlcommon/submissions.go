package sqlcommon

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Submissions is the submissions family on both databases: Read runs read-only queries, Write
// the statements that write. A driver embeds it and overrides Commit where it can pipeline.
type Submissions struct {
	Read, Write store.Querier
}

// SubmittersQuery reads submitters with their surveys' redirect settings and the webhooks
// version, one query for a whole batch; ScanSubmitters reads its rows.
func SubmittersQuery(keys []store.SubmitterKey) Statement {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k.UserID
	}
	return Statement{
		SQL: `SELECT r.survey_id, r.id, s.redirect_url, s.redirect_identifier, r.username, r.auth_token,
		r.custom_fields, r.disabled, (SELECT version FROM webhooks_version)
		FROM respondents r JOIN surveys s ON s.id = r.survey_id
		WHERE r.id IN (` + store.Placeholders(len(keys), 1, 1) + `)`,
		Args: args,
	}
}

// ScanSubmitters reads SubmittersQuery's rows and closes them.
func ScanSubmitters(rows store.Rows, n int) (map[store.SubmitterKey]*store.Submitter, error) {
	defer rows.Close()
	out := make(map[store.SubmitterKey]*store.Submitter, n)
	for rows.Next() {
		var (
			k store.SubmitterKey
			s store.Submitter
		)
		if err := rows.Scan(&k.SurveyID, &k.UserID, &s.RedirectURL, &s.RedirectIdentifier, &s.Username, &s.AuthToken,
			&s.CustomFields, &s.Disabled, &s.WebhooksVersion); err != nil {
			return nil, fmt.Errorf("reading respondents: %w", err)
		}
		out[k] = &s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading respondents: %w", err)
	}
	return out, nil
}

// Submitters implements store.Submissions.
func (s Submissions) Submitters(ctx context.Context, keys []store.SubmitterKey) (map[store.SubmitterKey]*store.Submitter, error) {
	return submittersIn(ctx, s.Read, keys)
}

func submittersIn(ctx context.Context, q store.Querier, keys []store.SubmitterKey) (map[store.SubmitterKey]*store.Submitter, error) {
	if len(keys) == 0 {
		return map[store.SubmitterKey]*store.Submitter{}, nil
	}
	st := SubmittersQuery(keys)
	rows, err := q.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return nil, fmt.Errorf("reading respondents: %w", err)
	}
	return ScanSubmitters(rows, len(keys))
}

// SubmitterKeys lists the distinct submitters of items.
func SubmitterKeys(items []*store.SubmissionItem) []store.SubmitterKey {
	keys := make([]store.SubmitterKey, 0, len(items))
	seen := make(map[store.SubmitterKey]bool, len(items))
	for _, it := range items {
		k := store.SubmitterKey{SurveyID: it.Submission.SurveyID, UserID: it.Submission.UserID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// Admit gives every item its submitter from found and returns those b.Admit lets through,
// setting the others' Err.
func Admit(b *store.SubmissionBatch, items []*store.SubmissionItem, found map[store.SubmitterKey]*store.Submitter) []*store.SubmissionItem {
	ok := items[:0:0]
	for _, it := range items {
		s := found[store.SubmitterKey{SurveyID: it.Submission.SurveyID, UserID: it.Submission.UserID}]
		it.Submitter, it.Err = s, nil
		switch {
		case b.Admit != nil:
			it.Err = b.Admit(s)
		case s == nil:
			it.Err = fmt.Errorf("respondent %s of survey %s: %w", it.Submission.UserID, it.Submission.SurveyID, store.ErrNotFound)
		}
		if it.Err == nil {
			ok = append(ok, it)
		} else {
			it.Submitter = nil
		}
	}
	return ok
}

const submissionColumns = 7

// InsertSubmissions inserts a batch's submissions, skipping any that an earlier one (same
// idempotency key or session of the same respondent) already took, returning the ids it
// inserted (ScanInserted reads them).
func InsertSubmissions(items []*store.SubmissionItem) Statement {
	args := make([]any, 0, len(items)*submissionColumns)
	for _, it := range items {
		s := &it.Submission
		args = append(args, s.ID, s.SurveyID, s.UserID, nullString(s.SessionID), nullString(s.IdempotencyKey),
			s.Body, store.Micros(s.SubmittedAt))
	}
	return Statement{
		SQL: `INSERT INTO submissions (id, survey_id, user_id, session_id, idempotency_key, body, submitted_at)
		VALUES ` + store.Placeholders(len(items), submissionColumns, 1) + `
		ON CONFLICT DO NOTHING RETURNING id`,
		Args: args,
	}
}

// ScanInserted reads the ids InsertSubmissions returns and closes the rows.
func ScanInserted(rows store.Rows, n int) (map[string]bool, error) {
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

// FindSubmission finds the id of the respondent's earlier submission that it repeats: the one
// with the same idempotency key or, failing that, the same session.
func FindSubmission(it *store.SubmissionItem) Statement {
	s := &it.Submission
	return Statement{
		SQL: `SELECT id FROM submissions
	WHERE survey_id = $1 AND user_id = $2 AND (idempotency_key = $3 OR session_id = $4)
	ORDER BY CASE WHEN idempotency_key = $3 THEN 0 ELSE 1 END LIMIT 1`,
		Args: []any{s.SurveyID, s.UserID, s.IdempotencyKey, s.SessionID},
	}
}

// SortOut records which items the insert created; the others repeat an earlier submission
// (committed, or just committed by a concurrent transaction the insert waited for), whose id
// they answer with. It returns the created items' events, with their submitters' webhooks
// version, and the repeats.
func SortOut(items []*store.SubmissionItem, inserted map[string]bool) (created []*store.SubmissionItem, evs []store.Event, repeats []*store.SubmissionItem) {
	for _, it := range items {
		it.Created = inserted[it.Submission.ID]
		if !it.Created {
			repeats = append(repeats, it)
			continue
		}
		it.ResultID = it.Submission.ID
		if it.Submitter != nil {
			it.Event.WebhooksVersion = it.Submitter.WebhooksVersion
		}
		created = append(created, it)
		evs = append(evs, it.Event)
	}
	return created, evs, repeats
}

// Stage builds the statements that follow the insert: the created submissions' events, and
// one UPDATE closing the sessions they name (a session closes only when it belongs to the
// submitting respondent and is open). Nothing when nothing was created.
func Stage(b *store.SubmissionBatch, created []*store.SubmissionItem, evs []store.Event) ([]Statement, error) {
	if len(created) == 0 {
		return nil, nil
	}
	stmts, err := InsertEvents(b.EventsClaimedUntil, evs)
	if err != nil {
		return nil, err
	}
	if st, ok := CloseSessions(created[0].Submission.SubmittedAt, created); ok {
		stmts = append(stmts, st)
	}
	return stmts, nil
}

// CloseSessions is the one UPDATE that marks the sessions items name submitted (false when no
// item names a session): one per batch rather than one per submission, since each statement
// costs the server far more than a row does.
func CloseSessions(now time.Time, items []*store.SubmissionItem) (Statement, bool) {
	const fixed = 3
	args := []any{store.SessionSubmitted, store.Micros(now), store.SessionOpen}
	for _, it := range items {
		if s := &it.Submission; s.SessionID != "" {
			args = append(args, s.SessionID, s.SurveyID, s.UserID)
		}
	}
	n := (len(args) - fixed) / 3
	if n == 0 {
		return Statement{}, false
	}
	return Statement{
		SQL: `UPDATE survey_sessions SET status = $1, updated_at = $2
		WHERE status = $3 AND (id, survey_id, user_id) IN (VALUES ` + store.Placeholders(n, 3, fixed+1) + `)`,
		Args: args,
	}, true
}

// Pending returns pointers to b's items, the working list of a commit.
func Pending(b *store.SubmissionBatch) []*store.SubmissionItem {
	items := make([]*store.SubmissionItem, len(b.Items))
	for i := range b.Items {
		items[i] = &b.Items[i]
	}
	return items
}

// CommitIn runs b's statements one by one through tx, a transaction the driver opened (or
// the caller's); the transaction's owner commits it.
func CommitIn(ctx context.Context, tx store.Querier, b *store.SubmissionBatch) error {
	items := Pending(b)
	var unread []*store.SubmissionItem
	for _, it := range items {
		if it.Submitter == nil {
			unread = append(unread, it)
		}
	}
	if len(unread) > 0 {
		found, err := submittersIn(ctx, tx, SubmitterKeys(unread))
		if err != nil {
			return err
		}
		if live := Admit(b, unread, found); len(live) < len(unread) {
			items = items[:0]
			for i := range b.Items {
				if it := &b.Items[i]; it.Err == nil {
					items = append(items, it)
				}
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	st := InsertSubmissions(items)
	rows, err := tx.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return fmt.Errorf("storing submissions: %w", err)
	}
	inserted, err := ScanInserted(rows, len(items))
	if err != nil {
		return err
	}
	created, evs, repeats := SortOut(items, inserted)
	for _, it := range repeats {
		st := FindSubmission(it)
		if err := tx.QueryRow(ctx, st.SQL, st.Args...).Scan(&it.ResultID); err != nil {
			return fmt.Errorf("finding the earlier submission: %w", err)
		}
	}
	stmts, err := Stage(b, created, evs)
	if err != nil {
		return err
	}
	if err := Run(ctx, tx, stmts); err != nil {
		return fmt.Errorf("storing submissions: %w", err)
	}
	return nil
}

// OpenSession implements store.Submissions.
func (s Submissions) OpenSession(ctx context.Context, id, surveyID, userID string, now time.Time) error {
	_, err := s.Write.Exec(ctx, `INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, id, surveyID, userID, store.SessionOpen, store.Micros(now))
	if err != nil {
		return fmt.Errorf("starting session: %w", err)
	}
	return nil
}

// CancelOpenSessions implements store.Submissions.
func (s Submissions) CancelOpenSessions(ctx context.Context, surveyID, userID string, now time.Time) ([]string, error) {
	rows, err := s.Write.Query(ctx, `UPDATE survey_sessions SET status = $1, updated_at = $2
		WHERE survey_id = $3 AND user_id = $4 AND status = $5 RETURNING id`,
		store.SessionCancelled, store.Micros(now), surveyID, userID, store.SessionOpen)
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

// DeleteSurvey implements store.Submissions.
func (s Submissions) DeleteSurvey(ctx context.Context, surveyID string) (int64, error) {
	n, err := s.Write.Exec(ctx, "DELETE FROM submissions WHERE survey_id = $1", surveyID)
	if err != nil {
		return 0, fmt.Errorf("deleting the submissions of survey %s: %w", surveyID, err)
	}
	if _, err := s.Write.Exec(ctx, "DELETE FROM survey_sessions WHERE survey_id = $1", surveyID); err != nil {
		return 0, fmt.Errorf("deleting the sessions of survey %s: %w", surveyID, err)
	}
	return n, nil
}

// DeleteRespondent implements store.Submissions.
func (s Submissions) DeleteRespondent(ctx context.Context, surveyID, userID string) (int64, error) {
	n, err := s.Write.Exec(ctx, "DELETE FROM submissions WHERE survey_id = $1 AND user_id = $2", surveyID, userID)
	if err != nil {
		return 0, fmt.Errorf("deleting the submissions of respondent %s: %w", userID, err)
	}
	if _, err := s.Write.Exec(ctx, "DELETE FROM survey_sessions WHERE survey_id = $1 AND user_id = $2", surveyID, userID); err != nil {
		return 0, fmt.Errorf("deleting the sessions of respondent %s: %w", userID, err)
	}
	return n, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
