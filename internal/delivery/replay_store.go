package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// The statuses of a range replay.
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
	ReplayFailed    = "failed"
)

// Replay is a range replay and its progress.
type Replay struct {
	ID     string
	Filter ReplayFilter
	// Matched is how many deliveries the filter selected (corrected to Enqueued once every
	// batch is in, should the matching rows have changed meanwhile).
	Matched int64
	// Enqueued is how many replay deliveries have been inserted so far.
	Enqueued int64
	// Done is how many of those are no longer pending.
	Done int64
	// Succeeded and Failed are how many of the done ones ended succeeded or failed (the rest
	// of Done were skipped). They are counted from the replay's deliveries when the replay is
	// read, not stored.
	Succeeded int64
	Failed    int64
	Status    string
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// EnqueuedAt is when the last batch went in; zero while batches remain.
	EnqueuedAt time.Time
	// Error says why a failed replay failed.
	Error string
}

// errBadFilter marks a replay whose stored filter cannot be read: retrying cannot help.
var errBadFilter = errors.New("unreadable replay filter")

// replayWhere adds the matching rules of a range replay over deliveries d joined with their
// webhooks w (see the package documentation). bound caps createdAt at the replay's creation,
// so the deliveries a replay inserts are never matched again by itself. after, when set,
// continues after an earlier batch's last delivery.
func replayWhere(w *sqlWhere, f ReplayFilter, bound time.Time, after *Cursor) {
	w.and("NOT w.disabled")
	w.and("d.status IN " + w.in(f.Status))
	if after != nil {
		// The cursor is at or past since. Leaving since out keeps the keyset as the only lower
		// bound, which a planner without statistics (SQLite's) then uses for the index range.
		w.and("(d.created_at, d.id) > (" + w.arg(after.CreatedAt) + ", " + w.arg(after.ID) + ")")
	} else {
		w.and("d.created_at >= " + w.arg(store.Micros(f.Since)))
	}
	until := f.Until
	if bound.Before(until) {
		until = bound
	}
	w.and("d.created_at < " + w.arg(store.Micros(until)))
	if f.SurveyID != "" {
		w.and("d.survey_id = " + w.arg(f.SurveyID))
	}
	if f.WebhookID != "" {
		w.and("d.webhook_id = " + w.arg(f.WebhookID))
	}
	if f.Type != "" {
		w.and("d.type = " + w.arg(f.Type))
	}
	w.and("NOT EXISTS (SELECT 1 FROM deliveries r WHERE r.replay_of = d.id)")
}

// CountReplay counts the deliveries a range replay of f created at now would enqueue.
func (s *Store) CountReplay(ctx context.Context, f ReplayFilter, now time.Time) (int64, error) {
	var w sqlWhere
	replayWhere(&w, f, now, nil)
	var n int64
	err := s.db.QueryRow(ctx, "SELECT count(*) FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"+w.String(),
		w.args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting deliveries to replay: %w", err)
	}
	return n, nil
}

// CreateReplay records a range replay of r.Filter that matched r.Matched deliveries, running
// (or completed at once when nothing matched). It fails with ErrReplayRunning while a replay
// with the same filter runs.
func (s *Store) CreateReplay(ctx context.Context, r *Replay) error {
	filter, err := json.Marshal(r.Filter.canonical())
	if err != nil {
		return fmt.Errorf("encoding replay filter: %w", err)
	}
	r.Status = ReplayRunning
	var enqueuedAt *int64
	if r.Matched == 0 {
		// Nothing to enqueue, so the row is recorded completed and the unique index of
		// running replays cannot object; yet the same filter while a replay of it runs (its
		// deliveries are replayed already, hence the 0) is the overlap to refuse.
		var running bool
		if err := s.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM replays WHERE filter_key = $1 AND status = $2)",
			r.Filter.Key(), ReplayRunning).Scan(&running); err != nil {
			return fmt.Errorf("checking running replays: %w", err)
		}
		if running {
			return ErrReplayRunning
		}
		r.Status = ReplayCompleted
		r.EnqueuedAt = r.CreatedAt
		us := store.Micros(r.CreatedAt)
		enqueuedAt = &us
	}
	_, err = s.db.Exec(ctx, `INSERT INTO replays (id, filter, filter_key, matched, enqueued, done, status, created_by,
		created_at, updated_at, enqueued_at) VALUES ($1, $2, $3, $4, 0, 0, $5, $6, $7, $7, $8)`,
		r.ID, filter, r.Filter.Key(), r.Matched, r.Status, r.CreatedBy, store.Micros(r.CreatedAt), enqueuedAt)
	if errors.Is(err, store.ErrConflict) {
		return ErrReplayRunning
	}
	if err != nil {
		return fmt.Errorf("recording replay: %w", err)
	}
	return nil
}

const replayColumns = `id, filter, matched, enqueued, done, status, created_by, created_at, updated_at, enqueued_at, error`

func scanReplay(row store.Row) (*Replay, error) {
	var (
		r                    Replay
		filter               []byte
		createdAt, updatedAt int64
		enqueuedAt           *int64
	)
	if err := row.Scan(&r.ID, &filter, &r.Matched, &r.Enqueued, &r.Done, &r.Status, &r.CreatedBy,
		&createdAt, &updatedAt, &enqueuedAt, &r.Error); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(filter, &r.Filter); err != nil {
		return nil, fmt.Errorf("replay %s: %w: %w", r.ID, errBadFilter, err)
	}
	r.CreatedAt = store.FromMicros(createdAt)
	r.UpdatedAt = store.FromMicros(updatedAt)
	r.EnqueuedAt = store.NullMicros(enqueuedAt)
	return &r, nil
}

// GetReplay returns the replay id; store.ErrNotFound when there is none.
func (s *Store) GetReplay(ctx context.Context, id string) (*Replay, error) {
	r, err := scanReplay(s.db.QueryRow(ctx, "SELECT "+replayColumns+" FROM replays WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("getting replay: %w", err)
	}
	oc, err := replayOutcomes(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	oc.apply(r)
	return r, nil
}

// outcomes counts a replay's deliveries by status.
type outcomes struct{ done, succeeded, failed int64 }

func (o outcomes) apply(r *Replay) { r.Succeeded, r.Failed = o.succeeded, o.failed }

// replayOutcomesSQL reads one range of the partial index deliveries_replay_idx (replay_id):
// its cost follows the replay's size, not the table's.
const replayOutcomesSQL = "SELECT status, count(*) FROM deliveries WHERE replay_id = $1 GROUP BY status"

// replayOutcomes counts the deliveries of replay id by status.
func replayOutcomes(ctx context.Context, q store.Querier, id string) (outcomes, error) {
	rows, err := q.Query(ctx, replayOutcomesSQL, id)
	if err != nil {
		return outcomes{}, fmt.Errorf("counting replay %s outcomes: %w", id, err)
	}
	defer rows.Close()
	var o outcomes
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return outcomes{}, fmt.Errorf("counting replay %s outcomes: %w", id, err)
		}
		switch status {
		case StatusPending:
			continue
		case StatusSucceeded:
			o.succeeded = n
		case StatusFailed:
			o.failed = n
		}
		o.done += n
	}
	if err := rows.Err(); err != nil {
		return outcomes{}, fmt.Errorf("counting replay %s outcomes: %w", id, err)
	}
	return o, nil
}

// RefreshReplay recounts the done deliveries of a running replay and marks it completed once
// every delivery is enqueued and none is pending, then returns the replay.
func (s *Store) RefreshReplay(ctx context.Context, id string, now time.Time) (*Replay, error) {
	var out *Replay
	err := s.db.InTx(ctx, func(tx store.Querier) error {
		oc, err := replayOutcomes(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE replays SET done = $3, updated_at = $2
			WHERE id = $1 AND status = 'running'`, id, store.Micros(now), oc.done)
		if err != nil {
			return fmt.Errorf("refreshing replay: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE replays SET status = 'completed'
			WHERE id = $1 AND status = 'running' AND enqueued_at IS NOT NULL AND enqueued = matched AND done = enqueued`, id)
		if err != nil {
			return fmt.Errorf("refreshing replay: %w", err)
		}
		out, err = scanReplay(tx.QueryRow(ctx, "SELECT "+replayColumns+" FROM replays WHERE id = $1", id))
		if err != nil {
			return fmt.Errorf("refreshing replay: %w", err)
		}
		oc.apply(out)
		return nil
	})
	return out, err
}

// EnqueuingReplays returns the ids of the running replays whose batches are all in, whose
// progress RefreshReplay follows.
func (s *Store) EnqueuingReplays(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx,
		"SELECT id FROM replays WHERE status = 'running' AND enqueued_at IS NOT NULL ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("listing running replays: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing running replays: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing running replays: %w", err)
	}
	return ids, nil
}

// BatchResult says what one EnqueueBatch did.
type BatchResult struct {
	// ReplayID is the replay the batch belonged to; empty when no replay had batches left.
	ReplayID string
	// Enqueued is how many deliveries the batch inserted.
	Enqueued int
	// Finished is true when this was the replay's last batch.
	Finished bool
}

// newIDExpr is the SQL that makes a replay delivery's id, "dlv_" and 32 random hex digits, so
// a batch is one INSERT … SELECT that moves no rows through the process.
func newIDExpr(d store.Dialect) string {
	if d == store.Postgres {
		return "'dlv_' || replace(gen_random_uuid()::text, '-', '')" // PostgreSQL 13+
	}
	return "'dlv_' || lower(hex(randomblob(16)))"
}

// EnqueueBatch takes the oldest running replay with batches left (on PostgreSQL, one no other
// process is working on), inserts up to size of its deliveries after its cursor, and saves
// the cursor, all in one transaction. After the last batch it records enqueued_at and
// corrects matched to the number actually enqueued.
func (s *Store) EnqueueBatch(ctx context.Context, size int, now time.Time) (BatchResult, error) {
	var res BatchResult
	err := s.db.InTx(ctx, func(tx store.Querier) error {
		var (
			id, cursorID string
			filterJSON   []byte
			createdAt    int64
			cursorAt     *int64
			enqueued     int64
		)
		err := tx.QueryRow(ctx, `SELECT id, filter, created_at, cursor_created_at, cursor_id, enqueued FROM replays
			WHERE status = 'running' AND enqueued_at IS NULL ORDER BY created_at, id LIMIT 1`+s.db.Dialect.SkipLocked()).
			Scan(&id, &filterJSON, &createdAt, &cursorAt, &cursorID, &enqueued)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("picking a replay: %w", err)
		}
		res.ReplayID = id
		var f ReplayFilter
		if err := json.Unmarshal(filterJSON, &f); err != nil {
			return fmt.Errorf("replay %s: %w: %w", id, errBadFilter, err)
		}
		if len(f.Status) == 0 {
			return fmt.Errorf("replay %s: %w: no statuses", id, errBadFilter)
		}

		const from = " FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
		// batch adds the conditions of this batch's deliveries: the filter, after the cursor,
		// and (when end is set) up to end.
		var after *Cursor
		if cursorAt != nil {
			after = &Cursor{CreatedAt: *cursorAt, ID: cursorID}
		}
		batch := func(w *sqlWhere, idPH string, end *Cursor) {
			replayWhere(w, f, store.FromMicros(createdAt), after)
			// Deliveries this replay made are created after it, but a clock behind another
			// process's could make them look older: never replay them again.
			w.and("(d.replay_id IS NULL OR d.replay_id <> " + idPH + ")")
			if end != nil {
				w.and("(d.created_at, d.id) <= (" + w.arg(end.CreatedAt) + ", " + w.arg(end.ID) + ")")
			}
		}

		// The batch ends at its size-th matching delivery; none means this is the last batch.
		var sel sqlWhere
		batch(&sel, sel.arg(id), nil)
		var end Cursor
		err = tx.QueryRow(ctx, "SELECT d.created_at, d.id"+from+sel.String()+
			" ORDER BY d.created_at, d.id LIMIT 1 OFFSET "+strconv.Itoa(size-1), sel.args...).Scan(&end.CreatedAt, &end.ID)
		var endp *Cursor
		switch {
		case errors.Is(err, store.ErrNotFound):
			res.Finished = true
		case err != nil:
			return fmt.Errorf("replay %s: finding the batch: %w", id, err)
		default:
			endp = &end
		}

		us := store.Micros(now)
		var ins sqlWhere
		nowPH, idPH := ins.arg(us), ins.arg(id)
		batch(&ins, idPH, endp)
		n, err := tx.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
			attempts, last_error, next_attempt_at, replay_of, replay_id, created_at, updated_at)
			SELECT `+newIDExpr(s.db.Dialect)+`, d.event_id, d.webhook_id, d.survey_id, d.type, w.url, 'pending',
			0, '', CAST(`+nowPH+` AS BIGINT), d.id, CAST(`+idPH+` AS TEXT), CAST(`+nowPH+` AS BIGINT), CAST(`+nowPH+` AS BIGINT)`+
			from+ins.String(), ins.args...)
		if err != nil {
			return fmt.Errorf("replay %s: enqueuing a batch: %w", id, err)
		}
		res.Enqueued = int(n)
		total := enqueued + n
		if res.Finished {
			status := ReplayRunning
			if total == 0 {
				status = ReplayCompleted
			}
			_, err = tx.Exec(ctx, `UPDATE replays SET enqueued = $2, matched = $2, enqueued_at = $3, status = $4,
				updated_at = $3 WHERE id = $1`, id, total, us, status)
		} else {
			_, err = tx.Exec(ctx, `UPDATE replays SET enqueued = $2, cursor_created_at = $3, cursor_id = $4,
				updated_at = $5 WHERE id = $1`, id, total, end.CreatedAt, end.ID, us)
		}
		if err != nil {
			return fmt.Errorf("replay %s: saving progress: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

// FailReplay marks a running replay failed with reason. The deliveries it enqueued stay.
func (s *Store) FailReplay(ctx context.Context, id, reason string, now time.Time) error {
	_, err := s.db.Exec(ctx, `UPDATE replays SET status = 'failed', error = $2, updated_at = $3
		WHERE id = $1 AND status = 'running'`, id, reason, store.Micros(now))
	if err != nil {
		return fmt.Errorf("marking replay %s failed: %w", id, err)
	}
	return nil
}
