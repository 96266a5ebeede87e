package sqlcommon

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// replayFrom is what a range replay reads: deliveries d with their webhooks w.
const replayFrom = " FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"

// replayWhere adds m's matching rules over deliveries d joined with their webhooks w.
func replayWhere(w *where, m store.ReplayMatch) {
	w.and("NOT w.disabled")
	w.and("d.status IN " + w.in(m.Status))
	if m.After != nil {
		// The cursor is at or past since. Leaving since out keeps the keyset as the only lower
		// bound, which a planner without statistics (SQLite's) then uses for the index range.
		w.and("(d.created_at, d.id) > (" + w.arg(micros(m.After.CreatedAt)) + ", " + w.arg(m.After.ID) + ")")
	} else {
		w.and("d.created_at >= " + w.arg(micros(m.Since)))
	}
	w.and("d.created_at < " + w.arg(micros(m.Until)))
	if m.SurveyID != "" {
		w.and("d.survey_id = " + w.arg(m.SurveyID))
	}
	if m.WebhookID != "" {
		w.and("d.webhook_id = " + w.arg(m.WebhookID))
	}
	if m.Type != "" {
		w.and("d.type = " + w.arg(m.Type))
	}
	w.and("NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.replay_of = d.id)")
	if m.Exclude != "" {
		w.and("(d.replay_id IS NULL OR d.replay_id <> " + w.arg(m.Exclude) + ")")
	}
	if m.Through != nil {
		w.and("(d.created_at, d.id) <= (" + w.arg(micros(m.Through.CreatedAt)) + ", " + w.arg(m.Through.ID) + ")")
	}
}

// CountReplay counts the deliveries m matches.
func (q Deliveries) CountReplay(ctx context.Context, m store.ReplayMatch) (int64, error) {
	var w where
	replayWhere(&w, m)
	var n int64
	if err := q.Read.QueryRow(ctx, "SELECT count(*)"+replayFrom+w.String(), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting deliveries to replay: %w", err)
	}
	return n, nil
}

// ReplayBatchEnd returns the n-th delivery m matches.
func (q Deliveries) ReplayBatchEnd(ctx context.Context, m store.ReplayMatch, n int) (store.DeliveryCursor, error) {
	var w where
	replayWhere(&w, m)
	var (
		at int64
		c  store.DeliveryCursor
	)
	err := q.Write.QueryRow(ctx, "SELECT d.created_at, d.id"+replayFrom+w.String()+
		" ORDER BY d.created_at, d.id LIMIT 1 OFFSET "+strconv.Itoa(max(n-1, 0)), w.args...).Scan(&at, &c.ID)
	if err != nil {
		return store.DeliveryCursor{}, fmt.Errorf("finding the batch: %w", err)
	}
	c.CreatedAt = fromMicros(at)
	return c, nil
}

// EnqueueReplay inserts the replay deliveries of m for replay replayID.
func (q Deliveries) EnqueueReplay(ctx context.Context, m store.ReplayMatch, replayID string, now time.Time) (int64, error) {
	var w where
	nowPH, idPH := w.arg(micros(now)), w.arg(replayID)
	replayWhere(&w, m)
	n, err := q.Write.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
		attempts, last_error, next_attempt_at, replay_of, replay_id, created_at, updated_at)
		SELECT `+q.NewIDExpr+`, d.event_id, d.webhook_id, d.survey_id, d.type, w.url, 'pending',
		0, '', CAST(`+nowPH+` AS BIGINT), d.id, CAST(`+idPH+` AS TEXT), CAST(`+nowPH+` AS BIGINT), CAST(`+nowPH+` AS BIGINT)`+
		replayFrom+w.String(), w.args...)
	if err != nil {
		return 0, fmt.Errorf("enqueuing a batch: %w", err)
	}
	return n, nil
}

// InsertReplay records a replay.
func (q Deliveries) InsertReplay(ctx context.Context, r *store.ReplayRecord) error {
	_, err := q.Write.Exec(ctx, `INSERT INTO replays (id, filter, filter_key, matched, enqueued, done, status, created_by,
		created_at, updated_at, enqueued_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $6, $7, $7, $8)`,
		r.ID, r.Filter, r.FilterKey, r.Matched, r.Status, r.CreatedBy, micros(r.CreatedAt), nullTime(r.EnqueuedAt))
	if err != nil {
		return fmt.Errorf("recording replay: %w", err)
	}
	return nil
}

// ReplayRunning reports whether a replay of filterKey is running.
func (q Deliveries) ReplayRunning(ctx context.Context, filterKey string) (bool, error) {
	var running bool
	if err := q.Read.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM replays WHERE filter_key = $1 AND status = $2)",
		filterKey, store.ReplayRunning).Scan(&running); err != nil {
		return false, fmt.Errorf("checking running replays: %w", err)
	}
	return running, nil
}

const replayColumns = `id, filter, filter_key, matched, enqueued, done, status, created_by, created_at, updated_at,
	enqueued_at, error, cursor_created_at, cursor_id`

func scanReplay(row store.Row) (store.ReplayRecord, error) {
	var (
		r                    store.ReplayRecord
		createdAt, updatedAt int64
		enqueuedAt, cursorAt *int64
		cursorID             string
	)
	if err := row.Scan(&r.ID, &r.Filter, &r.FilterKey, &r.Matched, &r.Enqueued, &r.Done, &r.Status, &r.CreatedBy,
		&createdAt, &updatedAt, &enqueuedAt, &r.Error, &cursorAt, &cursorID); err != nil {
		return store.ReplayRecord{}, err
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	if enqueuedAt != nil {
		r.EnqueuedAt = fromMicros(*enqueuedAt)
	}
	if cursorAt != nil {
		r.Cursor = &store.DeliveryCursor{CreatedAt: fromMicros(*cursorAt), ID: cursorID}
	}
	return r, nil
}

// GetReplay returns a replay.
func (q Deliveries) GetReplay(ctx context.Context, id string) (store.ReplayRecord, error) {
	r, err := scanReplay(q.Read.QueryRow(ctx, "SELECT "+replayColumns+" FROM replays WHERE id = $1", id))
	if err != nil {
		return store.ReplayRecord{}, fmt.Errorf("getting replay: %w", err)
	}
	return r, nil
}

// NextReplay returns the oldest running replay with batches left.
func (q Deliveries) NextReplay(ctx context.Context) (store.ReplayRecord, error) {
	r, err := scanReplay(q.Write.QueryRow(ctx, "SELECT "+replayColumns+
		" FROM replays WHERE status = 'running' AND enqueued_at IS NULL ORDER BY created_at, id LIMIT 1"+q.SkipLocked))
	if err != nil {
		return store.ReplayRecord{}, fmt.Errorf("picking a replay: %w", err)
	}
	return r, nil
}

// ReplayProgress saves a batch's progress.
func (q Deliveries) ReplayProgress(ctx context.Context, id string, enqueued int64, cursor store.DeliveryCursor, now time.Time) error {
	_, err := q.Write.Exec(ctx, `UPDATE replays SET enqueued = $2, cursor_created_at = $3, cursor_id = $4,
		updated_at = $5 WHERE id = $1`, id, enqueued, micros(cursor.CreatedAt), cursor.ID, micros(now))
	if err != nil {
		return fmt.Errorf("saving replay progress: %w", err)
	}
	return nil
}

// ReplayEnqueued records a replay's last batch.
func (q Deliveries) ReplayEnqueued(ctx context.Context, id string, enqueued int64, status string, now time.Time) error {
	_, err := q.Write.Exec(ctx, `UPDATE replays SET enqueued = $2, matched = $2, enqueued_at = $3, status = $4,
		updated_at = $3 WHERE id = $1`, id, enqueued, micros(now), status)
	if err != nil {
		return fmt.Errorf("saving replay progress: %w", err)
	}
	return nil
}

// ReplayOutcomesSQL reads one range of the partial index deliveries_replay_idx (replay_id):
// its cost follows the replay's size, not the table's.
const ReplayOutcomesSQL = "SELECT status, count(*) FROM deliveries WHERE replay_id = $1 GROUP BY status"

// ReplayOutcomes counts a replay's deliveries by status.
func (q Deliveries) ReplayOutcomes(ctx context.Context, replayID string) (map[string]int64, error) {
	rows, err := q.Read.Query(ctx, ReplayOutcomesSQL, replayID)
	if err != nil {
		return nil, fmt.Errorf("counting replay %s outcomes: %w", replayID, err)
	}
	defer rows.Close()
	out := make(map[string]int64, 4)
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("counting replay %s outcomes: %w", replayID, err)
		}
		out[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting replay %s outcomes: %w", replayID, err)
	}
	return out, nil
}

// RefreshReplay saves done and completes the replay when it is.
func (q Deliveries) RefreshReplay(ctx context.Context, id string, done int64, now time.Time) error {
	_, err := q.Write.Exec(ctx, `UPDATE replays SET done = $3, updated_at = $2
		WHERE id = $1 AND status = 'running'`, id, micros(now), done)
	if err != nil {
		return fmt.Errorf("refreshing replay: %w", err)
	}
	_, err = q.Write.Exec(ctx, `UPDATE replays SET status = 'completed'
		WHERE id = $1 AND status = 'running' AND enqueued_at IS NOT NULL AND enqueued = matched AND done = enqueued`, id)
	if err != nil {
		return fmt.Errorf("refreshing replay: %w", err)
	}
	return nil
}

// EnqueuingReplays returns the running replays whose batches are all in.
func (q Deliveries) EnqueuingReplays(ctx context.Context) ([]string, error) {
	rows, err := q.Read.Query(ctx,
		"SELECT id FROM replays WHERE status = 'running' AND enqueued_at IS NOT NULL ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("listing running replays: %w", err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("listing running replays: %w", err)
	}
	return ids, nil
}

// FailReplay marks a running replay failed.
func (q Deliveries) FailReplay(ctx context.Context, id, reason string, now time.Time) error {
	_, err := q.Write.Exec(ctx, `UPDATE replays SET status = 'failed', error = $2, updated_at = $3
		WHERE id = $1 AND status = 'running'`, id, reason, micros(now))
	if err != nil {
		return fmt.Errorf("marking replay %s failed: %w", id, err)
	}
	return nil
}
