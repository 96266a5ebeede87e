package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// expiredDeliveries selects a batch of expired deliveries through deliveries_expiry_idx,
// named so that SQLite plans nothing else whatever its statistics. Both deletes of a batch
// run it in one write transaction, which no other writer can enter, so both see one set.
const expiredDeliveries = `SELECT id FROM deliveries INDEXED BY deliveries_expiry_idx
	WHERE status <> 'pending' AND updated_at >= $3 AND updated_at < $1 ORDER BY updated_at LIMIT $2`

// lastExpired is the latest last activity of the batch expiredDeliveries selects.
const lastExpired = `SELECT max(updated_at) FROM (SELECT updated_at FROM deliveries INDEXED BY deliveries_expiry_idx
	WHERE status <> 'pending' AND updated_at >= $3 AND updated_at < $1 ORDER BY updated_at LIMIT $2)`

// PurgeDeliveries implements store.Deliveries: the attempts, then the deliveries, in one
// transaction of the writer (the caller's, if any).
func (d deliveries) PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (store.PurgedDeliveries, error) {
	var out store.PurgedDeliveries
	args := []any{store.Micros(cutoff), limit, store.Micros(from)}
	run := func(tx store.Querier) error {
		var last *int64
		if err := tx.QueryRow(ctx, lastExpired, args...).Scan(&last); err != nil {
			return err
		}
		if last == nil {
			return nil
		}
		out.Last = store.FromMicros(*last)
		n, err := tx.Exec(ctx, "DELETE FROM delivery_attempts WHERE delivery_id IN ("+expiredDeliveries+")", args...)
		if err != nil {
			return err
		}
		out.Attempts = int(n)
		n, err = tx.Exec(ctx, "DELETE FROM deliveries WHERE id IN ("+expiredDeliveries+")", args...)
		out.Deliveries = int(n)
		return err
	}
	var err error
	if d.e.tx != nil {
		err = run(d.e.tx)
	} else {
		err = d.e.c.InTx(ctx, run)
	}
	if err != nil {
		return store.PurgedDeliveries{}, fmt.Errorf("purging deliveries: %w", err)
	}
	return out, nil
}

// convertLimit is the largest database converted to incremental auto-vacuum while the service
// runs: VACUUM rewrites the whole file and holds the one writer meanwhile, so intake waits
// once for as long as rewriting this much takes.
const convertLimit = 64 << 20

// ReclaimSpace implements store.Deliveries: PRAGMA incremental_vacuum(maxPages) on the
// writer, which moves free pages to the end of the file and truncates it. A database without
// incremental auto-vacuum (every database created before this release) is converted once by
// VACUUM when it is at most convertLimit bytes; a larger one reports store.ErrVacuumNeeded.
func (d deliveries) ReclaimSpace(ctx context.Context, maxPages int) (int, error) {
	if d.e.tx != nil {
		return 0, errors.New("reclaiming space: VACUUM cannot run inside a transaction")
	}
	w := d.e.c.Write()
	var mode, pages, size int64
	if err := w.QueryRow(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return 0, fmt.Errorf("reclaiming space: %w", err)
	}
	if mode != 2 { // 2: INCREMENTAL
		if err := w.QueryRow(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return 0, fmt.Errorf("reclaiming space: %w", err)
		}
		if err := w.QueryRow(ctx, "PRAGMA page_size").Scan(&size); err != nil {
			return 0, fmt.Errorf("reclaiming space: %w", err)
		}
		if pages*size > convertLimit {
			return 0, store.ErrVacuumNeeded
		}
		if _, err := w.Exec(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
			return 0, fmt.Errorf("enabling incremental auto-vacuum: %w", err)
		}
		if _, err := w.Exec(ctx, "VACUUM"); err != nil {
			return 0, fmt.Errorf("enabling incremental auto-vacuum: %w", err)
		}
	}
	if maxPages > 0 {
		if _, err := w.Exec(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", maxPages)); err != nil {
			return 0, fmt.Errorf("reclaiming space: %w", err)
		}
	}
	var free int
	if err := w.QueryRow(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, fmt.Errorf("reclaiming space: %w", err)
	}
	return free, nil
}
