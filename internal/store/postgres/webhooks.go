package postgres

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Webhooks returns the executor's queries of the webhooks and the webhooks version tables.
func (e executor) Webhooks() store.Webhooks {
	// The sequence's last value covers events whose transactions have not committed yet: a
	// lane's gap check starts after every event numbered before the change.
	return webhooks{sqlcommon.Webhooks{Read: e.read(), Write: e.write(),
		EventSeqExpr: "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq)"}}
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
