package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Events returns the executor's queries of the events and the outbox tables.
func (e executor) Events() store.Events {
	return events{sqlcommon.Events{Read: e.read(), Write: e.write(), LockClause: " FOR UPDATE SKIP LOCKED"}, e}
}

// events claims with SKIP LOCKED, so that replicas claim disjoint rows concurrently, and marks
// events published in one round trip.
type events struct {
	sqlcommon.Events
	e executor
}

// MarkPublished sends its transaction in one round trip, and does not wait for the commit's
// WAL flush: a mark lost in a database crash only means the event is published again, and
// JetStream's duplicate window absorbs it — not worth an fsync that submissions wait behind.
// Inside the caller's transaction it runs the statements there.
func (ev events) MarkPublished(ctx context.Context, now time.Time, ids []string) error {
	if ev.e.tx != nil {
		return ev.MarkPublishedIn(ctx, ev.e.q, now, ids)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	for _, st := range sqlcommon.MarkPublishedStatements(now, ids) {
		queue(b, st)
	}
	b.Queue("COMMIT")
	// A statement that fails leaves the transaction open; the pool closes a connection
	// released that way rather than reuse it.
	if err := sendExecs(ctx, ev.e.pool, b); err != nil {
		return fmt.Errorf("marking events published: %w", err)
	}
	return nil
}
