package store

import (
	"context"
	"time"
)

// Leases runs the queries of the leases table: named jobs that one process of many runs at a
// time (the retention purge), each held by one holder until its lease expires.
type Leases interface {
	// TryAcquire takes the lease name for holder until `until`, or renews it when holder
	// already has it. It reports false when another holder has it and its lease has not
	// expired at now. Leases compare the processes' clocks: keep them synchronised (NTP) to
	// well within a lease's length.
	TryAcquire(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// Release gives the lease up if holder has it (a no-op otherwise), so another process
	// need not wait for it to expire.
	Release(ctx context.Context, name, holder string) error
}
