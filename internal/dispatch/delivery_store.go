package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dispatch24/dispatch24/internal/store"
)

// The engine's storage, in the interfaces it uses. Deliveries and their attempts belong to
// internal/delivery (its *Store implements all three); the events archive is read here.

// claimStore leases due stored deliveries for the retry scheduler.
type claimStore interface {
	ClaimDue(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error)
}

// resultStore records a batch of results in one transaction and returns the endpoints it
// disabled, appended to disabled.
type resultStore interface {
	RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint) ([]store.DisabledEndpoint, error)
}

// eventDeliveries lists the deliveries recorded for an event (a redelivered message's).
type eventDeliveries interface {
	EventDeliveries(ctx context.Context, eventID string) ([]string, error)
}

// storedEvent is an event read back from the archive.
type storedEvent struct {
	payload []byte
	trace   map[string]string
}

// loadEvents reads the payloads and trace headers of events. Events whose payload was erased
// (their respondent was deleted) are left out: their deliveries end as event_missing instead
// of sending an empty envelope.
func loadEvents(ctx context.Context, db *store.DB, ids []string) (map[string]storedEvent, error) {
	out := make(map[string]storedEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	ph := make([]string, len(ids))
	for i, id := range ids {
		args[i] = id
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	rows, err := db.Query(ctx, "SELECT id, payload, headers FROM events WHERE erased_at IS NULL AND id IN ("+strings.Join(ph, ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id               string
			payload, headers []byte
		)
		if err := rows.Scan(&id, &payload, &headers); err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		ev := storedEvent{payload: payload}
		if len(headers) > 0 {
			_ = json.Unmarshal(headers, &ev.trace) // trace context is best effort
		}
		out[id] = ev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return out, nil
}
