package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store"
)

// ErrQueued is what reading rows through a BatchQueue gives: a queued statement's results are
// read from the batch once it is sent.
var ErrQueued = errors.New("queued statements return no rows")

// BatchQueue is a Querier that queues statements into a PostgreSQL pgx.Batch instead of
// running them, so that statements other packages build (the outbox's INSERT, the publish
// marks) join one round trip. Exec reports 0 rows affected.
type BatchQueue struct{ Batch *pgx.Batch }

// Exec queues the statement.
func (q BatchQueue) Exec(_ context.Context, sql string, args ...any) (int64, error) {
	q.Batch.Queue(sql, args...)
	return 0, nil
}

// Query fails with ErrQueued.
func (q BatchQueue) Query(context.Context, string, ...any) (store.Rows, error) { return nil, ErrQueued }

// QueryRow returns a Row whose Scan fails with ErrQueued.
func (q BatchQueue) QueryRow(context.Context, string, ...any) store.Row { return queuedRow{} }

type queuedRow struct{}

func (queuedRow) Scan(...any) error { return ErrQueued }
