package outbox

import (
	"context"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Entry is one event to store in the outbox.
type Entry struct {
	// SurveyID is the event's survey, for the archive's survey index.
	SurveyID string
	// UserID is the respondent the event is about ("": none): deleting the respondent erases
	// the event's payload (store.Events.EraseUser).
	UserID string
	// CreatedAt is when the event happened (stored as the row's created_at).
	CreatedAt time.Time
	// Message is the event as it will be published: id, type, subject, the exact envelope
	// bytes (events.Event.Marshal) and the trace context of the request that created it.
	Message events.Message
}

// Insert stores entries in the events table through x, normally the caller's transaction
// (store.Driver.InTx), so an event exists exactly when the change it reports does. Rows get
// claimed_until = claimedUntil (the zero time: NULL, free for any relay's sweep at once).
func Insert(ctx context.Context, x store.Executor, claimedUntil time.Time, entries []Entry) error {
	return x.Events().Insert(ctx, claimedUntil, Rows(entries))
}

// Row is e as the events table stores it.
func (e *Entry) Row() store.Event {
	return store.Event{
		ID:              e.Message.ID,
		Type:            e.Message.Type,
		SurveyID:        e.SurveyID,
		UserID:          e.UserID,
		Subject:         e.Message.Subject,
		Payload:         e.Message.Payload,
		Trace:           e.Message.Trace,
		CreatedAt:       e.CreatedAt,
		WebhooksVersion: e.Message.WebhooksVersion,
	}
}

// Rows is entries as the events table stores them.
func Rows(entries []Entry) []store.Event {
	rows := make([]store.Event, len(entries))
	for i := range entries {
		rows[i] = entries[i].Row()
	}
	return rows
}

// entryOf is the entry of a stored event.
func entryOf(ev *store.Event) Entry {
	return Entry{
		SurveyID:  ev.SurveyID,
		UserID:    ev.UserID,
		CreatedAt: ev.CreatedAt,
		Message: events.Message{
			ID:              ev.ID,
			Type:            ev.Type,
			Subject:         ev.Subject,
			Payload:         ev.Payload,
			Trace:           ev.Trace,
			WebhooksVersion: ev.WebhooksVersion,
		},
	}
}

// claim leases up to limit unpublished events that no relay holds (never claimed, released,
// or with an expired lease) until `until`, oldest first. Replicas claim disjoint rows.
func claim(ctx context.Context, db *store.DB, now, until time.Time, limit int) ([]Entry, error) {
	rows, err := db.Driver.Events().Claim(ctx, now, until, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(rows))
	for i := range rows {
		out[i] = entryOf(&rows[i])
	}
	return out, nil
}

// markPublished records that JetStream acknowledged the events (store.Events.MarkPublished:
// one transaction that does not wait for its flush to disk).
func markPublished(ctx context.Context, db *store.DB, now time.Time, ids []string) error {
	return db.Driver.Events().MarkPublished(ctx, now, ids)
}

// release gives events back after a failed publish, so the next sweep (of any relay) takes
// them; the attempt and its error are recorded.
func release(ctx context.Context, db *store.DB, ids []string, reason string) error {
	return db.Driver.Events().Release(ctx, ids, reason)
}

// InsertPublished stores an event that was delivered outside the outbox (a webhook test send),
// already marked published so the relay never sends it while replays can still read it.
func InsertPublished(ctx context.Context, x store.Executor, ev store.Event) error {
	return x.Events().InsertPublished(ctx, ev)
}

// Archive reads stored events for those who consume them after the outbox: the dispatcher's
// retries and replays, and the backlog gauge.
type Archive struct{ drv store.Driver }

// NewArchive returns the archive of db's events.
func NewArchive(db *store.DB) *Archive { return &Archive{drv: db.Driver} }

// Events reads stored events, published or not; ids that name no event are left out.
func (a *Archive) Events(ctx context.Context, ids []string) ([]store.Event, error) {
	return a.drv.Events().ByID(ctx, ids)
}

// Backlog counts the events not yet published.
func (a *Archive) Backlog(ctx context.Context) (int, error) {
	return a.drv.Events().CountUnpublished(ctx)
}

// Erased reports whether event id's payload was erased (its respondent was deleted; see
// store.Events.EraseUser); false when it is intact or not stored.
func Erased(ctx context.Context, db *store.DB, id string) (bool, error) {
	evs, err := db.Driver.Events().ByID(ctx, []string{id})
	if err != nil {
		return false, err
	}
	return len(evs) == 1 && !evs[0].ErasedAt.IsZero(), nil
}

// PurgePublished deletes expired published events that no delivery refers to any more, a
// window after a cursor at a time (store.Events.PurgePublished): the retention purge's
// (internal/retention) door to the events table.
func (a *Archive) PurgePublished(ctx context.Context, cutoff time.Time, after store.EventCursor, limit int) (store.PurgedEvents, error) {
	return a.drv.Events().PurgePublished(ctx, cutoff, after, limit)
}

// OldestPublished is the publication time of the oldest published event; the zero time when
// there is none.
func (a *Archive) OldestPublished(ctx context.Context) (time.Time, error) {
	return a.drv.Events().OldestPublished(ctx)
}
