package delivery

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
)

// RecordTestSend stores what a webhook test send leaves behind, in one transaction: its event
// (through the outbox, already published), the delivery with its final status, and its one
// attempt.
func (s *Store) RecordTestSend(ctx context.Context, ev store.Event, d *Delivery, attempt Attempt) error {
	return s.drv.InTx(ctx, func(tx store.Executor) error {
		if err := outbox.InsertPublished(ctx, tx, ev); err != nil {
			return fmt.Errorf("recording test event: %w", err)
		}
		if err := tx.Deliveries().Insert(ctx, d, []Attempt{attempt}); err != nil {
			return fmt.Errorf("recording test delivery: %w", err)
		}
		return nil
	})
}
