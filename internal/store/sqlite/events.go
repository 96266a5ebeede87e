package sqlite

import (
	"context"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Events returns the executor's queries of the events and the outbox tables.
func (e executor) Events() store.Events {
	return events{sqlcommon.Events{Read: e.read(), Write: e.write()}, e}
}

// events needs no row locks to claim: the one writer already serialises claims.
type events struct {
	sqlcommon.Events
	e executor
}

// MarkPublished runs its statements in one transaction (the caller's, if any).
func (ev events) MarkPublished(ctx context.Context, now time.Time, ids []string) error {
	if ev.e.tx != nil {
		return ev.MarkPublishedIn(ctx, ev.e.tx, now, ids)
	}
	return ev.e.c.InTx(ctx, func(tx store.Querier) error {
		return ev.MarkPublishedIn(ctx, tx, now, ids)
	})
}
