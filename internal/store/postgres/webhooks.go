package postgres

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Webhooks returns the executor's queries of the webhooks and the webhooks version tables.
func (e executor) Webhooks() store.Webhooks {
	return webhooks{sqlcommon.Webhooks{Read: e.read(), Write: e.write()}}
}

// webhooks is the shared SQL with PostgreSQL's row lock.
type webhooks struct{ sqlcommon.Webhooks }

// GetForUpdate locks the row, so that the engine's failure-counter updates cannot interleave
// with the caller's read and write.
func (q webhooks) GetForUpdate(ctx context.Context, surveyID, id string) (*store.Webhook, error) {
	w, err := sqlcommon.ScanWebhook(q.Write.QueryRow(ctx, sqlcommon.SelectWebhookSQL+" FOR UPDATE", id, surveyID))
	if err != nil {
		return nil, fmt.Errorf("getting webhook: %w", err)
	}
	return w, nil
}
