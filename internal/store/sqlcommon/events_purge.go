package sqlcommon

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// PurgePublished implements store.Events. It reads a window of the expired events from
// events_expiry_idx, then deletes those of the window that no delivery refers to: two
// statements, no transaction, since the delete checks again everything it depends on. The
// window moves on whether or not its events went, so events kept by their deliveries are read
// once per purge, not once per batch.
func (e Events) PurgePublished(ctx context.Context, cutoff time.Time, after store.EventCursor, limit int) (store.PurgedEvents, error) {
	var out store.PurgedEvents
	rows, err := e.Write.Query(ctx, `SELECT id, published_at FROM events
		WHERE published_at IS NOT NULL AND published_at < $1 AND (published_at, id) > ($2, $3)
		ORDER BY published_at, id LIMIT $4`,
		store.Micros(cutoff), store.Micros(after.PublishedAt), after.ID, limit)
	if err != nil {
		return out, fmt.Errorf("reading expired events: %w", err)
	}
	var ids []any
	var last int64
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &last); err != nil {
			rows.Close()
			return out, fmt.Errorf("reading expired events: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("reading expired events: %w", err)
	}
	out.Scanned = len(ids)
	if len(ids) == 0 {
		out.Next = after
		return out, nil
	}
	out.Next = store.EventCursor{PublishedAt: store.FromMicros(last), ID: ids[len(ids)-1].(string)}
	for len(ids) > 0 {
		n := min(len(ids), EventsChunk)
		st := PurgeEventsStatement(cutoff, ids[:n])
		deleted, err := e.Write.Exec(ctx, st.SQL, st.Args...)
		if err != nil {
			return out, fmt.Errorf("deleting expired events: %w", err)
		}
		out.Deleted += int(deleted)
		ids = ids[n:]
	}
	return out, nil
}

// OldestPublished implements store.Events.
func (e Events) OldestPublished(ctx context.Context) (time.Time, error) {
	return oldest(ctx, e.Read, "SELECT published_at FROM events WHERE published_at IS NOT NULL ORDER BY published_at LIMIT 1")
}

// oldest runs a query of one time column and one row at most; the zero time for no row.
func oldest(ctx context.Context, q store.Querier, query string) (time.Time, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return time.Time{}, err
	}
	defer rows.Close()
	var us int64
	if !rows.Next() {
		return time.Time{}, rows.Err()
	}
	if err := rows.Scan(&us); err != nil {
		return time.Time{}, err
	}
	return store.FromMicros(us), rows.Err()
}

// PurgeEventsStatement deletes, among ids, the events published before cutoff that no delivery
// refers to. The check is a scalar subquery, one probe of deliveries_event_idx per event, not
// NOT EXISTS: PostgreSQL may turn an anti-join over every stored delivery into a hash join,
// a cost that follows the deliveries table rather than the batch
// (TestPurgeEventsReadsBoundedRows).
func PurgeEventsStatement(cutoff time.Time, ids []any) Statement {
	return Statement{
		SQL: `DELETE FROM events WHERE id IN (` + store.Placeholders(len(ids), 1, 2) + `)
			AND published_at IS NOT NULL AND published_at < $1
			AND (SELECT 1 FROM deliveries WHERE deliveries.event_id = events.id LIMIT 1) IS NULL`,
		Args: append([]any{store.Micros(cutoff)}, ids...),
	}
}
