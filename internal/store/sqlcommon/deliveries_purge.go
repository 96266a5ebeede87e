package sqlcommon

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// DeliveriesPurge is the part of the retention purge's queries on deliveries that both
// databases share; each driver adds PurgeDeliveries and ReclaimSpace.
type DeliveriesPurge struct {
	Read store.Querier
}

// OldestFinishedDelivery implements store.DeliveriesPurge, from the first entry of
// deliveries_expiry_idx.
func (d DeliveriesPurge) OldestFinishedDelivery(ctx context.Context) (time.Time, error) {
	t, err := oldest(ctx, d.Read, "SELECT updated_at FROM deliveries WHERE status <> 'pending' ORDER BY updated_at LIMIT 1")
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the oldest finished delivery: %w", err)
	}
	return t, nil
}
