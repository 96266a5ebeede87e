// The retention purge's results, shared by the Deliveries and Events families
// (internal/retention drives both through their owners).

package store

import "time"

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
