package store

import (
	"context"
	"time"
)

// DeliveriesPurge runs the retention purge's queries on the deliveries and delivery_attempts
// tables (internal/retention). It stands apart from Deliveries only until both are merged.
type DeliveriesPurge interface {
	// PurgeDeliveries deletes up to limit deliveries that are not pending and whose last
	// activity (updated_at) is in [from, cutoff), the oldest first, with their attempt logs,
	// in one transaction. A pending delivery is never deleted, however old. On PostgreSQL rows
	// that another transaction holds are skipped, not waited for. Passing the previous
	// batch's Last as from starts the next batch where it ended instead of stepping again over
	// the index entries of rows already deleted (PostgreSQL keeps them until a VACUUM).
	PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (PurgedDeliveries, error)
	// OldestFinishedDelivery is the last activity of the oldest delivery that is not pending
	// (the next one the purge deletes); the zero time when there is none.
	OldestFinishedDelivery(ctx context.Context) (time.Time, error)
	// ReclaimSpace gives the space of deleted rows back, a step of at most maxPages pages at a
	// time, and reports how many free pages remain to give back (0: done). SQLite truncates
	// the file with an incremental vacuum (converting a small database that was created
	// without incremental auto-vacuum once; a large one returns ErrVacuumNeeded, and its
	// free pages are still reused for new rows). PostgreSQL runs a throttled VACUUM of the
	// purged tables, which makes their dead rows' space reusable where autovacuum is off or
	// behind, and reports 0. With maxPages 0 it only prepares: SQLite converts a small
	// database, PostgreSQL does nothing.
	ReclaimSpace(ctx context.Context, maxPages int) (remaining int, err error)
}

// PurgedDeliveries counts the rows one purge batch deleted.
type PurgedDeliveries struct {
	Deliveries, Attempts int
	// Last is the latest last activity among the deliveries deleted (zero: none).
	Last time.Time
}

// ErrVacuumNeeded: the SQLite database does not use incremental auto-vacuum and is too large
// to convert while the service runs. Purged space is reused for new rows but the file does
// not shrink until an operator runs VACUUM (see the README's operations section).
var ErrVacuumNeeded = errVacuumNeeded{}

type errVacuumNeeded struct{}

func (errVacuumNeeded) Error() string {
	return "the SQLite database does not use incremental auto-vacuum: run PRAGMA auto_vacuum = INCREMENTAL; VACUUM; on it while the api is stopped"
}

// EventCursor is a position in the published events, in (published_at, id) order.
type EventCursor struct {
	PublishedAt time.Time
	ID          string
}

// PurgedEvents is what one events purge batch did.
type PurgedEvents struct {
	// Deleted counts the events deleted; Scanned the events looked at (some are kept while
	// deliveries still refer to them).
	Deleted, Scanned int
	// Next is where the next batch starts.
	Next EventCursor
}
