package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Operational events (pkg/events: webhook.disabled, delivery.exhausted) are ordinary outbox
// rows: their writers (internal/delivery for the engine's results, internal/endpoint for a
// PATCH) add them in the transaction that disables the endpoint or records the failed
// delivery, so one exists exactly when its change does, and the relay's sweep publishes
// them like any other (the writer may be a dispatcher process, which runs no relay).

// WebhookDisabled returns the entry of a webhook.disabled event: webhookID of surveyID was
// disabled for reason at `at`, in a transaction that read the webhooks version `version`
// (after the disabling moved it, so the fan-out sees the endpoint disabled).
func WebhookDisabled(surveyID, webhookID, reason string, at time.Time, version int64) (Entry, error) {
	data, err := json.Marshal(events.WebhookDisabledData{WebhookID: webhookID, Reason: reason})
	if err != nil {
		return Entry{}, fmt.Errorf("encoding webhook.disabled: %w", err)
	}
	return operationalEntry(events.NewID(), events.TypeWebhookDisabled, surveyID, data, at, version)
}

// DeliveryExhausted returns the entry of a delivery.exhausted event for d, a delivery that
// ended failed at `at`. Its id is derived from d's (ExhaustedEventID), so recording the same
// failure twice (a redelivered message, a retry attempted again after a lost lease) names
// the same event, which InsertNew then leaves out.
func DeliveryExhausted(d *store.Delivery, at time.Time, version int64) (Entry, error) {
	data, err := json.Marshal(events.DeliveryExhaustedData{WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
		Attempts: d.Attempts, LastError: d.LastError})
	if err != nil {
		return Entry{}, fmt.Errorf("encoding delivery.exhausted: %w", err)
	}
	return operationalEntry(ExhaustedEventID(d.ID, at), events.TypeDeliveryExhausted, d.SurveyID, data, at, version)
}

// ExhaustedEventID is the id of the delivery.exhausted event of delivery deliveryID:
// "evt_", 12 hex digits of Unix milliseconds and the first 20 hex digits of
// SHA-256("delivery.exhausted" "\x00" deliveryID): the shape of every event id (a UUIDv7 in
// hex), which the dispatcher's delivery ids build on. The time is the delivery id's own (its
// event's creation), so the id depends on the delivery alone; a delivery id carrying no time
// (ids from before the erasure release) takes failedAt's.
func ExhaustedEventID(deliveryID string, failedAt time.Time) string {
	ms := fmt.Sprintf("%012x", failedAt.UnixMilli()&0xffffffffffff)
	if len(deliveryID) == len("dlv_")+32 && deliveryID[:4] == "dlv_" && isLowerHex(deliveryID[4:]) {
		ms = deliveryID[4:16]
	}
	h := sha256.New()
	h.Write([]byte(events.TypeDeliveryExhausted))
	h.Write([]byte{0})
	h.Write([]byte(deliveryID))
	return "evt_" + ms + hex.EncodeToString(h.Sum(nil)[:10])
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func operationalEntry(id, eventType, surveyID string, data []byte, at time.Time, version int64) (Entry, error) {
	ev := events.Event{ID: id, Type: eventType, Timestamp: at, SurveyID: surveyID, Data: data}
	payload, err := ev.Marshal()
	if err != nil {
		return Entry{}, err
	}
	return Entry{
		SurveyID:  surveyID,
		CreatedAt: at,
		Message: events.Message{ID: id, Type: eventType, Subject: events.Subject(surveyID, eventType), Payload: payload,
			WebhooksVersion: version},
	}, nil
}

// InsertNew stores the entries that are not stored yet through x (the caller's transaction),
// free for the relay's next sweep, and returns those it stored. Entries with derived ids
// (DeliveryExhausted) may already be there; a concurrent writer of the same id makes the
// transaction fail on the primary key, and its retry then finds the row.
func InsertNew(ctx context.Context, x store.Executor, entries []Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	ids := make([]string, len(entries))
	for i := range entries {
		ids[i] = entries[i].Message.ID
	}
	stored, err := x.Events().ByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("looking for stored operational events: %w", err)
	}
	have := make(map[string]bool, len(stored))
	for i := range stored {
		have[stored[i].ID] = true
	}
	fresh := entries[:0:0]
	for _, e := range entries {
		if !have[e.Message.ID] {
			have[e.Message.ID] = true
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	if err := Insert(ctx, x, time.Time{}, fresh); err != nil {
		return nil, err
	}
	return fresh, nil
}
