package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Errors of replaying one delivery.
var (
	// ErrEndpointDisabled: the delivery's endpoint is disabled; re-enable it first.
	ErrEndpointDisabled = errors.New("endpoint disabled")
	// ErrEndpointDeleted: the delivery's endpoint no longer exists.
	ErrEndpointDeleted = errors.New("endpoint deleted")
	// ErrReplayRunning: a replay with the same filter is running.
	ErrReplayRunning = errors.New("a replay with the same filter is running")
	// ErrDeliveryGone: the delivery to replay was deleted (by the retention purge or with its
	// survey) after it was read and before the replay could hold it.
	ErrDeliveryGone = errors.New("the delivery was deleted while it was being replayed")
)

// Store is the one door to the deliveries, delivery_attempts and replays tables: the API's
// listing and replays, and the dispatch engine's claims and results (which the engine reaches
// through interfaces of its own). The queries are the store driver's (store.Deliveries).
type Store struct {
	drv store.Driver
}

// NewStore returns the delivery queries over db.
func NewStore(db *store.DB) *Store { return &Store{drv: db.Driver} }

// List returns a page of the deliveries in scope that match q, newest first, and the cursor
// of the next page (nil on the last page). The caller has checked q.SurveyID against scope.
func (s *Store) List(ctx context.Context, scope Scope, q ListQuery) ([]*Delivery, *Cursor, error) {
	if !scope.All && len(scope.Surveys) == 0 {
		return []*Delivery{}, nil, nil
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = DefaultLimit
	}
	f := store.DeliveryFilter{SurveyID: q.SurveyID, WebhookID: q.WebhookID, Status: q.Status, Type: q.Type,
		Since: q.Since, Until: q.Until, Limit: limit + 1}
	if !scope.All {
		f.Surveys = scope.Surveys
	}
	if q.After != nil {
		f.Before = &store.DeliveryCursor{CreatedAt: store.FromMicros(q.After.CreatedAt), ID: q.After.ID}
	}
	rows, err := s.drv.Deliveries().List(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Delivery, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, &Cursor{CreatedAt: store.Micros(last.CreatedAt), ID: last.ID}, nil
}

// Get returns the delivery id if scope covers its survey; store.ErrNotFound otherwise.
func (s *Store) Get(ctx context.Context, scope Scope, id string) (*Delivery, error) {
	d, err := s.drv.Deliveries().Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !scope.Allows(d.SurveyID) {
		return nil, fmt.Errorf("getting delivery: %w", errOutOfScope)
	}
	return &d, nil
}

// errOutOfScope is Get's answer for a stored delivery the caller may not see: not found, and
// never told purged either.
var errOutOfScope = fmt.Errorf("outside the caller's surveys: %w", store.ErrNotFound)

// Why a delivery id names no stored delivery (see Store.Gone).
const (
	GoneUnknown   = ""          // never issued, as far as the store can tell
	GoneRetention = "retention" // created before the retention horizon, so purged by it
	GoneSurvey    = "survey"    // created while a survey since deleted existed
)

// Gone tells why id names no stored delivery, from the creation time the id carries
// (CreatedAt): before now-retention (retention > 0) it was purged by retention; inside a
// deleted survey's tombstone it may have been deleted with that survey; otherwise (or when
// the id carries no time) GoneUnknown. It is a function of the id and the store's
// tombstones alone, so it tells nothing of any survey the caller may not see.
func (s *Store) Gone(ctx context.Context, id string, now time.Time, retention time.Duration) (string, error) {
	at, ok := CreatedAt(id)
	if !ok || at.After(now) {
		return GoneUnknown, nil
	}
	if retention > 0 && at.Before(now.Add(-retention)) {
		return GoneRetention, nil
	}
	purged, err := s.drv.Deliveries().Purged(ctx, at)
	if err != nil || !purged {
		return GoneUnknown, err
	}
	return GoneSurvey, nil
}

// Attempts returns the attempt log of a delivery, in order.
func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	return s.drv.Deliveries().Attempts(ctx, deliveryID)
}

// ReplayOne enqueues d again to its endpoint as a new pending delivery (replay_of d.ID) due
// at now, to the endpoint's current URL, and returns the new delivery. It fails with
// ErrEndpointDeleted, ErrEndpointDisabled, or ErrDeliveryGone.
//
// The replayed delivery is held (store.Deliveries.Hold) in the transaction that inserts the
// new one: the retention purge deletes an event only once no delivery refers to it, so
// while d is held its event stays, and once the new delivery is committed it keeps the event
// in turn. Without the hold, a purge that deleted d and then its event between the caller's
// read of d and this insert would leave a pending delivery of an event that is gone.
func (s *Store) ReplayOne(ctx context.Context, d *Delivery, now time.Time) (*Delivery, error) {
	now = store.FromMicros(store.Micros(now))
	nd := Delivery{ID: NewID(), EventID: d.EventID, WebhookID: d.WebhookID, SurveyID: d.SurveyID, Type: d.Type,
		Status: StatusPending, NextAttemptAt: now, ReplayOf: d.ID, CreatedAt: now, UpdatedAt: now}
	err := s.drv.InTx(ctx, func(tx store.Executor) error {
		if err := tx.Deliveries().Hold(ctx, d.ID); errors.Is(err, store.ErrNotFound) {
			return ErrDeliveryGone
		} else if err != nil {
			return fmt.Errorf("replaying delivery: %w", err)
		}
		url, _, disabled, err := tx.Deliveries().Target(ctx, d.WebhookID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrEndpointDeleted
		}
		if err != nil {
			return fmt.Errorf("replaying delivery: %w", err)
		}
		if disabled {
			return ErrEndpointDisabled
		}
		nd.URL = url
		if err := tx.Deliveries().Insert(ctx, &nd, nil); err != nil {
			return fmt.Errorf("replaying delivery: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &nd, nil
}

// WebhookSurvey returns the survey of the webhook id; store.ErrNotFound when there is none.
func (s *Store) WebhookSurvey(ctx context.Context, id string) (string, error) {
	_, surveyID, _, err := s.drv.Deliveries().Target(ctx, id)
	return surveyID, err
}

// PendingRetries counts the deliveries parked in the store waiting for their next attempt.
func (s *Store) PendingRetries(ctx context.Context) (int64, error) {
	return s.drv.Deliveries().PendingRetries(ctx)
}

// The dispatch engine's side, which it reaches through interfaces of its own.

// ClaimDue leases due pending deliveries for the engine's retry scheduler (see
// store.Deliveries.ClaimDue).
func (s *Store) ClaimDue(ctx context.Context, c store.DeliveryClaim) ([]Delivery, error) {
	return s.drv.Deliveries().ClaimDue(ctx, c)
}

// Reported is an operational event (pkg/events) that a batch of results wrote to the outbox.
type Reported struct {
	// EventID and Type are the event's; SurveyID and WebhookID whom it is about.
	EventID, Type, SurveyID, WebhookID string
}

// RecordResults writes a batch of the engine's results in one transaction and returns the
// endpoints it disabled, appended to disabled, and the operational events it wrote,
// appended to reported.
//
// The operational events go in the same transaction (outbox.InsertNew), so none is lost
// when the process dies after the commit and none exists for a change that was rolled back:
// a webhook.disabled for each endpoint the batch disabled (the driver reports only
// endpoints it moved from enabled to disabled), and a delivery.exhausted for each delivery
// the batch recorded failed, unless that delivery carried an operational event itself: a
// failure to report a failure is not reported again, or two failing endpoints subscribed to
// each other's reports would exchange them forever. (A webhook.disabled is still written
// when such a delivery's 410 disables its endpoint: that happens once per disabling.)
//
// A batch that can write no operational event (no 410, no endpoint failing, no failed
// delivery) takes the driver's one round trip as before; the others also pay for the
// transaction's begin and commit, a read of the webhooks version and of stored event ids.
func (s *Store) RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint,
	reported []Reported) ([]store.DisabledEndpoint, []Reported, error) {
	if !mayReport(r) {
		disabled, err := s.drv.Deliveries().RecordResults(ctx, r, disabled)
		return disabled, reported, err
	}
	start, startReported := len(disabled), len(reported)
	err := s.drv.InTx(ctx, func(tx store.Executor) error {
		var err error
		disabled, err = tx.Deliveries().RecordResults(ctx, r, disabled[:start])
		if err != nil {
			return err
		}
		reported, err = writeOperational(ctx, tx, r, disabled[start:], reported[:startReported])
		return err
	})
	if err != nil {
		return disabled[:start], reported[:startReported], err
	}
	return disabled, reported, nil
}

// mayReport reports whether recording r can make an operational event.
func mayReport(r *store.DeliveryResults) bool {
	if len(r.Gone) > 0 || r.Failing != nil {
		return true
	}
	for i := range r.Deliveries {
		if reportsExhaustion(&r.Deliveries[i]) {
			return true
		}
	}
	return false
}

// reportsExhaustion reports whether d, as recorded, makes a delivery.exhausted event.
func reportsExhaustion(d *store.Delivery) bool {
	return d.Status == store.DeliveryFailed && !events.Operational(d.Type)
}

// writeOperational writes, through tx, the operational events of a recorded batch: r's
// results and the endpoints it disabled.
func writeOperational(ctx context.Context, tx store.Executor, r *store.DeliveryResults, disabled []store.DisabledEndpoint,
	reported []Reported) ([]Reported, error) {
	n := len(disabled)
	for i := range r.Deliveries {
		if reportsExhaustion(&r.Deliveries[i]) {
			n++
		}
	}
	if n == 0 {
		return reported, nil
	}
	// Read after the disabling moved the version: the fan-out of these events then sees the
	// endpoints as this transaction left them.
	version, err := tx.Webhooks().Version(ctx)
	if err != nil {
		return reported, fmt.Errorf("reading the webhooks version: %w", err)
	}
	entries := make([]outbox.Entry, 0, n)
	for _, de := range disabled {
		e, err := outbox.WebhookDisabled(de.SurveyID, de.ID, de.Reason, r.Now, version)
		if err != nil {
			return reported, err
		}
		entries = append(entries, e)
	}
	for i := range r.Deliveries {
		if d := &r.Deliveries[i]; reportsExhaustion(d) {
			e, err := outbox.DeliveryExhausted(d, r.Now, version)
			if err != nil {
				return reported, err
			}
			entries = append(entries, e)
		}
	}
	stored, err := outbox.InsertNew(ctx, tx, entries)
	if err != nil {
		return reported, fmt.Errorf("writing operational events: %w", err)
	}
	for i := range stored {
		e := &stored[i]
		reported = append(reported, Reported{EventID: e.Message.ID, Type: e.Message.Type, SurveyID: e.SurveyID,
			WebhookID: events.AboutWebhook(e.Message.Type, e.Message.Payload)})
	}
	return reported, nil
}

// EventDeliveries returns the ids of the deliveries recorded for an event.
func (s *Store) EventDeliveries(ctx context.Context, eventID string) ([]string, error) {
	return s.drv.Deliveries().EventDeliveries(ctx, eventID)
}

// The retention purge's side (internal/retention reaches it through an interface of its
// own): the queries of store.Deliveries it runs, in the owner of their tables.

// PurgeDeliveries deletes a batch of expired finished deliveries with their attempt logs
// (store.Deliveries.PurgeDeliveries).
func (s *Store) PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (store.PurgedDeliveries, error) {
	return s.drv.Deliveries().PurgeDeliveries(ctx, from, cutoff, limit)
}

// OldestFinishedDelivery is the last activity of the oldest finished delivery; the zero time
// when there is none.
func (s *Store) OldestFinishedDelivery(ctx context.Context) (time.Time, error) {
	return s.drv.Deliveries().OldestFinishedDelivery(ctx)
}

// PruneTombstones deletes the tombstones of surveys deleted before cutoff
// (store.Deliveries.PruneTombstones).
func (s *Store) PruneTombstones(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.drv.Deliveries().PruneTombstones(ctx, cutoff)
}

// ReclaimSpace gives the purged rows' space back, a step at a time
// (store.Deliveries.ReclaimSpace).
func (s *Store) ReclaimSpace(ctx context.Context, maxPages int) (int, error) {
	return s.drv.Deliveries().ReclaimSpace(ctx, maxPages)
}
