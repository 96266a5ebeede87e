package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// The statuses of a range replay.
const (
	ReplayRunning   = store.ReplayRunning
	ReplayCompleted = store.ReplayCompleted
	ReplayFailed    = store.ReplayFailed
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

// match is the store's form of the deliveries a range replay of f created at bound selects
// (see the package documentation): bound caps createdAt at the replay's creation, so the
// deliveries a replay inserts are never matched again by itself. after, when set, continues
// after an earlier batch's last delivery.
func match(f ReplayFilter, bound time.Time, after *store.DeliveryCursor) store.ReplayMatch {
	until := f.Until
	if bound.Before(until) {
		until = bound
	}
	return store.ReplayMatch{Status: f.Status, SurveyID: f.SurveyID, WebhookID: f.WebhookID, Type: f.Type,
		Since: f.Since, Until: until, After: after}
}

// CountReplay counts the deliveries a range replay of f created at now would enqueue.
func (s *Store) CountReplay(ctx context.Context, f ReplayFilter, now time.Time) (int64, error) {
	return s.drv.Deliveries().CountReplay(ctx, match(f, now, nil))
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
	if r.Matched == 0 {
		// Nothing to enqueue, so the row is recorded completed and the unique index of
		// running replays cannot object; yet the same filter while a replay of it runs (its
		// deliveries are replayed already, hence the 0) is the overlap to refuse.
		running, err := s.drv.Deliveries().ReplayRunning(ctx, r.Filter.Key())
		if err != nil {
			return err
		}
		if running {
			return ErrReplayRunning
		}
		r.Status = ReplayCompleted
		r.EnqueuedAt = r.CreatedAt
	}
	err = s.drv.Deliveries().InsertReplay(ctx, &store.ReplayRecord{ID: r.ID, Filter: filter, FilterKey: r.Filter.Key(),
		Matched: r.Matched, Status: r.Status, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, EnqueuedAt: r.EnqueuedAt})
	if errors.Is(err, store.ErrConflict) {
		return ErrReplayRunning
	}
	return err
}

// replayOf decodes a stored replay.
func replayOf(rec *store.ReplayRecord) (*Replay, error) {
	r := &Replay{ID: rec.ID, Matched: rec.Matched, Enqueued: rec.Enqueued, Done: rec.Done, Status: rec.Status,
		CreatedBy: rec.CreatedBy, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, EnqueuedAt: rec.EnqueuedAt,
		Error: rec.Error}
	if err := json.Unmarshal(rec.Filter, &r.Filter); err != nil {
		return nil, fmt.Errorf("replay %s: %w: %w", r.ID, errBadFilter, err)
	}
	return r, nil
}

// GetReplay returns the replay id; store.ErrNotFound when there is none.
func (s *Store) GetReplay(ctx context.Context, id string) (*Replay, error) {
	rec, err := s.drv.Deliveries().GetReplay(ctx, id)
	if err != nil {
		return nil, err
	}
	r, err := replayOf(&rec)
	if err != nil {
		return nil, fmt.Errorf("getting replay: %w", err)
	}
	oc, err := replayOutcomes(ctx, s.drv, id)
	if err != nil {
		return nil, err
	}
	oc.apply(r)
	return r, nil
}

// outcomes counts a replay's deliveries by status.
type outcomes struct{ done, succeeded, failed int64 }

func (o outcomes) apply(r *Replay) { r.Succeeded, r.Failed = o.succeeded, o.failed }

// replayOutcomes counts the deliveries of replay id by status.
func replayOutcomes(ctx context.Context, x store.Executor, id string) (outcomes, error) {
	byStatus, err := x.Deliveries().ReplayOutcomes(ctx, id)
	if err != nil {
		return outcomes{}, err
	}
	var o outcomes
	for status, n := range byStatus {
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
	return o, nil
}

// RefreshReplay recounts the done deliveries of a running replay and marks it completed once
// every delivery is enqueued and none is pending, then returns the replay.
func (s *Store) RefreshReplay(ctx context.Context, id string, now time.Time) (*Replay, error) {
	var out *Replay
	err := s.drv.InTx(ctx, func(tx store.Executor) error {
		oc, err := replayOutcomes(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := tx.Deliveries().RefreshReplay(ctx, id, oc.done, now); err != nil {
			return err
		}
		rec, err := tx.Deliveries().GetReplay(ctx, id)
		if err != nil {
			return fmt.Errorf("refreshing replay: %w", err)
		}
		if out, err = replayOf(&rec); err != nil {
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
	return s.drv.Deliveries().EnqueuingReplays(ctx)
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

// EnqueueBatch takes the oldest running replay with batches left (on PostgreSQL, one no other
// process is working on), inserts up to size of its deliveries after its cursor, and saves
// the cursor, all in one transaction. After the last batch it records enqueued_at and
// corrects matched to the number actually enqueued.
func (s *Store) EnqueueBatch(ctx context.Context, size int, now time.Time) (BatchResult, error) {
	var res BatchResult
	err := s.drv.InTx(ctx, func(tx store.Executor) error {
		q := tx.Deliveries()
		rec, err := q.NextReplay(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		id := rec.ID
		res.ReplayID = id
		var f ReplayFilter
		if err := json.Unmarshal(rec.Filter, &f); err != nil {
			return fmt.Errorf("replay %s: %w: %w", id, errBadFilter, err)
		}
		if len(f.Status) == 0 {
			return fmt.Errorf("replay %s: %w: no statuses", id, errBadFilter)
		}
		// Deliveries this replay made are created after it, but a clock behind another
		// process's could make them look older: never replay them again.
		m := match(f, rec.CreatedAt, rec.Cursor)
		m.Exclude = id

		// The batch ends at its size-th matching delivery; none means this is the last batch.
		end, err := q.ReplayBatchEnd(ctx, m, size)
		switch {
		case errors.Is(err, store.ErrNotFound):
			res.Finished = true
		case err != nil:
			return fmt.Errorf("replay %s: %w", id, err)
		default:
			m.Through = &end
		}
		n, err := q.EnqueueReplay(ctx, m, id, now)
		if err != nil {
			return fmt.Errorf("replay %s: %w", id, err)
		}
		res.Enqueued = int(n)
		total := rec.Enqueued + n
		if res.Finished {
			status := ReplayRunning
			if total == 0 {
				status = ReplayCompleted
			}
			err = q.ReplayEnqueued(ctx, id, total, status, now)
		} else {
			err = q.ReplayProgress(ctx, id, total, end, now)
		}
		if err != nil {
			return fmt.Errorf("replay %s: %w", id, err)
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
	return s.drv.Deliveries().FailReplay(ctx, id, reason, now)
}
