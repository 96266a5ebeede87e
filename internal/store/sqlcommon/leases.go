package sqlcommon

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Leases is the leases family on both databases.
type Leases struct {
	Write store.Querier
}

// TryAcquire implements store.Leases: one upsert that takes a free or expired lease, renews
// the holder's own, and changes nothing (no row affected) when another holder has it.
func (l Leases) TryAcquire(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	n, err := l.Write.Exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= $4`,
		name, holder, store.Micros(until), store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("taking lease %s: %w", name, err)
	}
	return n == 1, nil
}

// Release implements store.Leases.
func (l Leases) Release(ctx context.Context, name, holder string) error {
	if _, err := l.Write.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("releasing lease %s: %w", name, err)
	}
	return nil
}
