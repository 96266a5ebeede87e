package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Entry is one event to store in the outbox.
type Entry struct {
	// SurveyID is the event's survey, for the archive's survey index.
	SurveyID string
	// CreatedAt is when the event happened (stored as the row's created_at).
	CreatedAt time.Time
	// Message is the event as it will be published: id, type, subject, the exact envelope
	// bytes (events.Event.Marshal) and the trace context of the request that created it.
	Message events.Message
}

// insertChunk bounds the rows of one INSERT, keeping under both databases' parameter limits.
const insertChunk = 500

const insertColumns = 9

// Insert stores entries in the events table through q, normally the caller's transaction, so
// an event exists exactly when the change it reports does. Rows get claimed_until =
// claimedUntil (the zero time: NULL, free for any relay's sweep at once).
func Insert(ctx context.Context, q store.Querier, claimedUntil time.Time, entries []Entry) error {
	var claim *int64
	if !claimedUntil.IsZero() {
		us := store.Micros(claimedUntil)
		claim = &us
	}
	for len(entries) > 0 {
		n := min(len(entries), insertChunk)
		chunk := entries[:n]
		entries = entries[n:]
		args := make([]any, 0, n*insertColumns)
		for _, e := range chunk {
			headers, err := encodeHeaders(e.Message.Trace)
			if err != nil {
				return err
			}
			args = append(args, e.Message.ID, e.Message.Type, e.SurveyID, e.Message.Subject, e.Message.Payload,
				headers, store.Micros(e.CreatedAt), claim, nullVersion(e.Message.WebhooksVersion))
		}
		_, err := q.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, claimed_until,
			webhooks_version) VALUES `+store.Placeholders(n, insertColumns, 1), args...)
		if err != nil {
			return fmt.Errorf("storing %d events: %w", n, err)
		}
	}
	return nil
}

// nullVersion stores an unknown webhooks version (0) as NULL.
func nullVersion(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func encodeHeaders(h map[string]string) ([]byte, error) {
	if len(h) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding trace headers: %w", err)
	}
	return b, nil
}

// claim leases up to limit unpublished events that no relay holds (never claimed, released,
// or with an expired lease) until `until`, oldest first. On PostgreSQL, SKIP LOCKED lets
// replicas claim disjoint rows concurrently; SQLite's single writer serialises claims.
func claim(ctx context.Context, db *store.DB, now, until time.Time, limit int) ([]Entry, error) {
	rows, err := db.Write().Query(ctx, `UPDATE events SET claimed_until = $1
		WHERE id IN (SELECT id FROM events
			WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2)
			ORDER BY created_at LIMIT $3`+db.Dialect.SkipLocked()+`)
		RETURNING id, type, survey_id, subject, payload, headers, created_at, webhooks_version`,
		store.Micros(until), store.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var (
			e       Entry
			headers []byte
			created int64
			version *int64
		)
		if err := rows.Scan(&e.Message.ID, &e.Message.Type, &e.SurveyID, &e.Message.Subject, &e.Message.Payload,
			&headers, &created, &version); err != nil {
			return nil, fmt.Errorf("claiming events: %w", err)
		}
		if len(headers) > 2 {
			if err := json.Unmarshal(headers, &e.Message.Trace); err != nil {
				// Trace context is an aid, never a reason to hold an event back.
				e.Message.Trace = nil
			}
		}
		e.CreatedAt = store.FromMicros(created)
		if version != nil {
			e.Message.WebhooksVersion = *version
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	return out, nil
}

// markPublished records that JetStream acknowledged the events. On PostgreSQL the commit does
// not wait for its WAL flush: a mark lost in a database crash only means the event is
// published again, and JetStream's duplicate window absorbs it — not worth an fsync that
// submissions wait behind. The transaction's statements go in one round trip there.
func markPublished(ctx context.Context, db *store.DB, now time.Time, ids []string) error {
	if db.Dialect == store.Postgres {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit = off")
		if err := markPublishedIn(ctx, postgres.BatchQueue{Batch: b}, now, ids); err != nil {
			return err
		}
		b.Queue("COMMIT")
		// A statement that fails leaves the transaction open; the pool closes a connection
		// released that way rather than reuse it.
		br := postgres.Pool(db).SendBatch(ctx, b)
		var err error
		for i := 0; err == nil && i < b.Len(); i++ {
			_, err = br.Exec()
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("marking events published: %w", err)
		}
		return nil
	}
	return db.InTx(ctx, func(tx store.Querier) error {
		return markPublishedIn(ctx, tx, now, ids)
	})
}

func markPublishedIn(ctx context.Context, q store.Querier, now time.Time, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), insertChunk)
		args := make([]any, 0, n+1)
		args = append(args, store.Micros(now))
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		_, err := q.Exec(ctx, `UPDATE events SET published_at = $1, claimed_until = NULL,
			publish_attempts = publish_attempts + 1, last_error = NULL
			WHERE id IN (`+store.Placeholders(n, 1, 2)+`)`, args...)
		if err != nil {
			return fmt.Errorf("marking %d events published: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}

// release gives events back after a failed publish, so the next sweep (of any relay) takes
// them; the attempt and its error are recorded.
func release(ctx context.Context, q store.Querier, ids []string, reason string) error {
	for len(ids) > 0 {
		n := min(len(ids), insertChunk)
		args := make([]any, 0, n+1)
		args = append(args, reason)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		_, err := q.Exec(ctx, `UPDATE events SET claimed_until = NULL,
			publish_attempts = publish_attempts + 1, last_error = $1
			WHERE published_at IS NULL AND id IN (`+store.Placeholders(n, 1, 2)+`)`, args...)
		if err != nil {
			return fmt.Errorf("releasing %d events: %w", n, err)
		}
		ids = ids[n:]
	}
	return nil
}
