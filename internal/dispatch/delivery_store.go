package dispatch

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
)

// The engine's storage, in the interfaces it uses. Deliveries and their attempts belong to
// internal/delivery (its *Store implements all three); the events archive belongs to internal/outbox.

// claimStore leases due stored deliveries for the retry scheduler.
type claimStore interface {
	ClaimDue(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error)
}

// resultStore records a batch of results in one transaction and returns the endpoints it
// disabled, appended to disabled, and the operational events it wrote, appended to reported.
type resultStore interface {
	RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint,
		reported []delivery.Reported) ([]store.DisabledEndpoint, []delivery.Reported, error)
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

// eventArchive reads stored events (internal/outbox, the owner of events).
type eventArchive interface {
	Events(ctx context.Context, ids []string) ([]store.Event, error)
}

// loadEvents reads the payloads and trace headers of events. Events whose payload was erased
// (their respondent was deleted) are left out: their deliveries end as event_missing instead
// of sending an empty envelope.
func loadEvents(ctx context.Context, archive eventArchive, ids []string) (map[string]storedEvent, error) {
	out := make(map[string]storedEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	evs, err := archive.Events(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	for i := range evs {
		if !evs[i].ErasedAt.IsZero() {
			continue
		}
		out[evs[i].ID] = storedEvent{payload: evs[i].Payload, trace: evs[i].Trace}
	}
	return out, nil
}
