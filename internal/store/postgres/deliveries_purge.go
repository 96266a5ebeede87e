package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// purgeDeliveries takes a batch of expired deliveries from deliveries_expiry_idx (oldest
// first, skipping rows a dispatcher holds), deletes them while they are still finished and
// expired (checked again on the row's latest version), and deletes their attempts: one
// statement, one round trip, one transaction. The attempts are found through their primary
// key with = ANY(array), a plan that needs no statistics.
const purgeDeliveries = `WITH doomed AS (
		SELECT id FROM deliveries WHERE status <> 'pending' AND updated_at >= $3 AND updated_at < $1
		ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
	), gone AS (
		DELETE FROM deliveries WHERE id = ANY (ARRAY (SELECT id FROM doomed))
			AND status <> 'pending' AND updated_at < $1
		RETURNING id, updated_at
	), logs AS (
		DELETE FROM delivery_attempts WHERE delivery_id = ANY (ARRAY (SELECT id FROM gone))
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM logs), (SELECT max(updated_at) FROM gone)`

// PurgeDeliveries implements store.Deliveries.
func (d deliveries) PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (store.PurgedDeliveries, error) {
	var out store.PurgedDeliveries
	var last *int64
	if err := d.e.write().QueryRow(ctx, purgeDeliveries, store.Micros(cutoff), limit, store.Micros(from)).Scan(&out.Deliveries, &out.Attempts, &last); err != nil {
		return store.PurgedDeliveries{}, fmt.Errorf("purging deliveries: %w", err)
	}
	out.Last = store.NullMicros(last)
	return out, nil
}

// vacuumCostDelay throttles the purge's VACUUM as autovacuum throttles itself (its default
// autovacuum_vacuum_cost_delay), instead of a manual VACUUM's full speed.
const vacuumCostDelay = "2ms"

// ReclaimSpace implements store.Deliveries: a throttled VACUUM of the purged tables on a
// connection of its own (VACUUM cannot run in a transaction).
func (d deliveries) ReclaimSpace(ctx context.Context, maxPages int) (int, error) {
	if maxPages == 0 {
		return 0, nil
	}
	if d.e.tx != nil {
		return 0, errors.New("reclaiming space: VACUUM cannot run inside a transaction")
	}
	c, err := d.e.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("reclaiming space: %w", err)
	}
	// The setting is the session's: reset before the connection goes back to the pool (or,
	// failing that, the connection is closed).
	defer func() {
		if _, err := c.Exec(context.WithoutCancel(ctx), "RESET vacuum_cost_delay"); err != nil {
			_ = c.Conn().Close(context.WithoutCancel(ctx))
		}
		c.Release()
	}()
	if _, err := c.Exec(ctx, "SET vacuum_cost_delay = '"+vacuumCostDelay+"'"); err != nil {
		return 0, fmt.Errorf("reclaiming space: %w", mapErr(err))
	}
	if _, err := c.Exec(ctx, "VACUUM (SKIP_LOCKED) deliveries, delivery_attempts, events"); err != nil {
		return 0, fmt.Errorf("reclaiming space: %w", mapErr(err))
	}
	return 0, nil
}
