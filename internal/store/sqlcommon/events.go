package sqlcommon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// EventsChunk bounds the rows of one statement on the events table, keeping under both
// databases' parameter limits.
const EventsChunk = 500

// Events is the events family on both databases: Read runs read-only queries, Write the
// statements that write. A driver embeds it and adds MarkPublished.
type Events struct {
	Read, Write store.Querier
	// LockClause ends the claim's inner SELECT (" FOR UPDATE SKIP LOCKED" on PostgreSQL).
	LockClause string
}

const eventColumns = 11

// InsertEvents builds the INSERTs of events (one per EventsChunk rows).
func InsertEvents(claimedUntil time.Time, events []store.Event) ([]Statement, error) {
	var claim *int64
	if !claimedUntil.IsZero() {
		us := store.Micros(claimedUntil)
		claim = &us
	}
	stmts := make([]Statement, 0, (len(events)+EventsChunk-1)/EventsChunk)
	for len(events) > 0 {
		n := min(len(events), EventsChunk)
		args := make([]any, 0, n*eventColumns)
		for i := range events[:n] {
			e := &events[i]
			headers, err := encodeTrace(e.Trace)
			if err != nil {
				return nil, err
			}
			args = append(args, e.ID, e.Type, e.SurveyID, e.Subject, e.Payload, headers, store.Micros(e.CreatedAt), claim,
				nullVersion(e.WebhooksVersion), nullString(e.UserID), nullString(e.DataSubmissionID))
		}
		stmts = append(stmts, Statement{
			SQL: `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, claimed_until,
			webhooks_version, user_id, data_submission_id) VALUES ` + store.Placeholders(n, eventColumns, 1),
			Args: args,
		})
		events = events[n:]
	}
	return stmts, nil
}

// Insert implements store.Events.
func (e Events) Insert(ctx context.Context, claimedUntil time.Time, events []store.Event) error {
	stmts, err := InsertEvents(claimedUntil, events)
	if err != nil {
		return err
	}
	if err := Run(ctx, e.Write, stmts); err != nil {
		return fmt.Errorf("storing %d events: %w", len(events), err)
	}
	return nil
}

// InsertPublished implements store.Events.
func (e Events) InsertPublished(ctx context.Context, ev store.Event) error {
	headers, err := encodeTrace(ev.Trace)
	if err != nil {
		return err
	}
	_, err = e.Write.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at,
		webhooks_version, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)`,
		ev.ID, ev.Type, ev.SurveyID, ev.Subject, ev.Payload, headers, store.Micros(ev.CreatedAt), nullVersion(ev.WebhooksVersion),
		nullString(ev.UserID))
	if err != nil {
		return fmt.Errorf("storing a published event: %w", err)
	}
	return nil
}

// Claim implements store.Events.
func (e Events) Claim(ctx context.Context, now, until time.Time, limit int) ([]store.Event, error) {
	rows, err := e.Write.Query(ctx, `UPDATE events SET claimed_until = $1
		WHERE id IN (SELECT id FROM events
			WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2)
			ORDER BY created_at LIMIT $3`+e.LockClause+`)
		RETURNING `+eventFields,
		store.Micros(until), store.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	return out, nil
}

// ByID implements store.Events.
func (e Events) ByID(ctx context.Context, ids []string) ([]store.Event, error) {
	var out []store.Event
	for len(ids) > 0 {
		n := min(len(ids), EventsChunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := e.Read.Query(ctx, `SELECT `+eventFields+` FROM events WHERE id IN (`+store.Placeholders(n, 1, 1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		chunk, err := scanEvents(rows)
		if err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		out = append(out, chunk...)
		ids = ids[n:]
	}
	return out, nil
}

// CountUnpublished implements store.Events.
func (e Events) CountUnpublished(ctx context.Context) (int, error) {
	var n int
	if err := e.Read.QueryRow(ctx, "SELECT count(*) FROM events WHERE published_at IS NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting unpublished events: %w", err)
	}
	return n, nil
}

// eventFields are the columns scanEvents reads: an event whose data is a submission's body
// (data_submission_id) reads that body with it, one key probe per row.
const eventFields = `id, type, survey_id, subject, payload, headers, created_at, webhooks_version, user_id, erased_at,
	data_submission_id, (SELECT body FROM submissions WHERE submissions.id = events.data_submission_id)`

// scanEvents reads rows of eventFields and closes them.
func scanEvents(rows store.Rows) ([]store.Event, error) {
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			ev      store.Event
			headers []byte
			created int64
			version *int64
			userID  *string
			erased  *int64
			dataOf  *string
			data    []byte
		)
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.SurveyID, &ev.Subject, &ev.Payload, &headers, &created, &version,
			&userID, &erased, &dataOf, &data); err != nil {
			return nil, err
		}
		if len(headers) > 2 {
			if err := json.Unmarshal(headers, &ev.Trace); err != nil {
				// Trace context is an aid, never a reason to hold an event back.
				ev.Trace = nil
			}
		}
		ev.CreatedAt = store.FromMicros(created)
		if version != nil {
			ev.WebhooksVersion = *version
		}
		if userID != nil {
			ev.UserID = *userID
		}
		if erased != nil {
			ev.ErasedAt = store.FromMicros(*erased)
		}
		if dataOf != nil {
			ev.DataSubmissionID = *dataOf
			joinData(&ev, data)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// joinData gives ev, whose payload was stored without its data, the whole envelope: its
// head joined with data, the body of the submission ev.DataSubmissionID. Without the body
// (the submission is gone; erasing a respondent clears data_submission_id in the same
// transaction that deletes the submissions, so only a change outside the service leaves
// this) the event reads as erased: its data no longer exists, and an envelope without it must
// not be delivered as if whole.
func joinData(ev *store.Event, data []byte) {
	if data == nil {
		ev.Payload = []byte(store.ErasedPayload)
		if ev.ErasedAt.IsZero() {
			ev.ErasedAt = ev.CreatedAt
		}
		return
	}
	ev.Payload = store.JoinEnvelope(ev.Payload, data)
}

// MarkPublishedStatements builds the UPDATEs of MarkPublished (one per EventsChunk ids).
func MarkPublishedStatements(now time.Time, ids []string) []Statement {
	stmts := make([]Statement, 0, (len(ids)+EventsChunk-1)/EventsChunk)
	for len(ids) > 0 {
		n := min(len(ids), EventsChunk)
		args := make([]any, 0, n+1)
		args = append(args, store.Micros(now))
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		stmts = append(stmts, Statement{
			SQL: `UPDATE events SET published_at = $1, claimed_until = NULL,
			publish_attempts = publish_attempts + 1, last_error = NULL
			WHERE id IN (` + store.Placeholders(n, 1, 2) + `)`,
			Args: args,
		})
		ids = ids[n:]
	}
	return stmts
}

// MarkPublishedIn runs MarkPublished's statements through q, which must be a transaction (or
// the caller's): several chunks commit together.
func (e Events) MarkPublishedIn(ctx context.Context, q store.Querier, now time.Time, ids []string) error {
	if err := Run(ctx, q, MarkPublishedStatements(now, ids)); err != nil {
		return fmt.Errorf("marking %d events published: %w", len(ids), err)
	}
	return nil
}

// Release implements store.Events.
func (e Events) Release(ctx context.Context, ids []string, reason string) error {
	for len(ids) > 0 {
		n := min(len(ids), EventsChunk)
		args := make([]any, 0, n+1)
		args = append(args, reason)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		_, err := e.Write.Exec(ctx, `UPDATE events SET claimed_until = NULL,
			publish_attempts = publish_attempts + 1, last_error = $1
			WHERE published_at IS NULL AND id IN (`+store.Placeholders(n, 1, 2)+`)`, args...)
		if err != nil {
			return fmt.Errorf("releasing %d events: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

// DeleteSurvey implements store.Events.
func (e Events) DeleteSurvey(ctx context.Context, surveyID string) (int64, error) {
	n, err := e.Write.Exec(ctx, "DELETE FROM events WHERE survey_id = $1", surveyID)
	if err != nil {
		return 0, fmt.Errorf("deleting the events of survey %s: %w", surveyID, err)
	}
	return n, nil
}

// EraseUser implements store.Events.
func (e Events) EraseUser(ctx context.Context, userID string, now time.Time) (int64, error) {
	n, err := e.Write.Exec(ctx, `UPDATE events SET payload = '`+store.ErasedPayload+`', headers = '{}', erased_at = $2, user_id = NULL,
		data_submission_id = NULL, published_at = COALESCE(published_at, $2), claimed_until = NULL
		WHERE user_id = $1 AND erased_at IS NULL`, userID, store.Micros(now))
	if err != nil {
		return 0, fmt.Errorf("erasing the events of respondent %s: %w", userID, err)
	}
	return n, nil
}

// nullVersion stores an unknown webhooks version (0) as NULL.
func nullVersion(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// encodeTrace is the stored form of trace headers: a JSON object, "{}" for none.
func encodeTrace(h map[string]string) ([]byte, error) {
	if len(h) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding trace headers: %w", err)
	}
	return b, nil
}
