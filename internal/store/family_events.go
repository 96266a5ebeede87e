package store

import (
	"context"
	"time"
)

// Events runs the queries of the events table: the transactional outbox that internal/outbox
// publishes to JetStream, and the archive that replays and test sends read.
type Events interface {
	// Insert stores events, normally in the transaction of the change they report, so an
	// event exists exactly when its change does. The rows are claimed until claimedUntil (the
	// zero time: not claimed, free for any relay's sweep at once). Large slices are written in
	// chunks of a few hundred rows per statement.
	Insert(ctx context.Context, claimedUntil time.Time, events []Event) error
	// InsertPublished stores a test send's event, already published at ev.CreatedAt: the
	// outbox never publishes it, while replays can still read it from the archive.
	InsertPublished(ctx context.Context, ev Event) error
	// Claim leases up to limit unpublished events that no relay holds (never claimed,
	// released, or whose lease ended before now) until `until`, the oldest first, and returns
	// them (in no particular order). Concurrent claims take disjoint events.
	Claim(ctx context.Context, now, until time.Time, limit int) ([]Event, error)
	// MarkPublished records that the events were published at now: their lease ends and their
	// publish attempts count one more, in one transaction. The commit need not wait for its
	// flush to disk: a mark lost in a crash only means the event is published again.
	MarkPublished(ctx context.Context, now time.Time, ids []string) error
	// Release gives back unpublished events after a failed publish, recording the attempt and
	// reason: their lease ends, so the next sweep takes them.
	Release(ctx context.Context, ids []string, reason string) error

	// ByID reads stored events, published or not (the archive that retries and replays
	// read); ids that name no event are left out, and the order is the database's.
	ByID(ctx context.Context, ids []string) ([]Event, error)
	// CountUnpublished counts the events not yet published (the outbox's backlog).
	CountUnpublished(ctx context.Context) (int, error)

	// DeleteSurvey deletes every event of a survey (its deletion) and returns how many.
	DeleteSurvey(ctx context.Context, surveyID string) (int64, error)
	// EraseUser erases the payloads of the events about respondent userID and returns how
	// many: the row stays (its deliveries' log names it) with the payload and trace headers
	// replaced by ErasedPayload and "{}", UserID cleared and ErasedAt set to now. An erased
	// event that was not published yet is marked published at now, so the outbox never sends
	// the empty envelope.
	EraseUser(ctx context.Context, userID string, now time.Time) (int64, error)
	// PurgePublished looks at up to limit published events after cursor `after` (the zero
	// cursor: from the first) whose publication is before cutoff, in (published_at, id)
	// order, and deletes those that no delivery refers to any more (internal/retention purges
	// deliveries first). An unpublished event is never deleted.
	PurgePublished(ctx context.Context, cutoff time.Time, after EventCursor, limit int) (PurgedEvents, error)
	// OldestPublished is the publication time of the oldest published event; the zero time
	// when there is none.
	OldestPublished(ctx context.Context) (time.Time, error)
}

// ErasedPayload is the payload an erased event keeps (see Events.EraseUser): an empty JSON
// object, which no envelope is. Event.ErasedAt, not the payload, tells an erased event.
const ErasedPayload = "{}"

// JoinEnvelope is the envelope whose fields are head's (a JSON object without data) followed
// by "data": data: exactly what encoding/json writes for the envelope when data is compact
// JSON with HTML escaped, as a stored submission's body is. The submission's intake builds the
// envelope it publishes with it, and the store the one it reads back, so the two agree byte for
// byte.
func JoinEnvelope(head, data []byte) []byte {
	out := AppendEnvelopeOpen(make([]byte, 0, len(head)+len(`,"data":`)+len(data)+1), head)
	out = append(out, data...)
	return append(out, '}')
}

// AppendEnvelopeOpen appends to dst the part of JoinEnvelope's result before the data: head
// without its closing brace, then "data": (after a comma when head has fields). Appending the
// data and '}' completes the envelope.
func AppendEnvelopeOpen(dst, head []byte) []byte {
	dst = append(dst, head[:len(head)-1]...)
	if len(head) > 2 {
		dst = append(dst, ',')
	}
	return append(dst, `"data":`...)
}

// Event is one event of the events table.
type Event struct {
	ID       string
	Type     string
	SurveyID string
	// Subject is the NATS subject it is published on.
	Subject string
	// Payload is the exact envelope delivered to receivers (a JSON object). With
	// DataSubmissionID set, Insert stores it without its data: it is then the envelope
	// without the data field, and ByID and Claim give back the whole envelope.
	Payload []byte
	// DataSubmissionID names the submission whose stored body is the envelope's data ("":
	// none, the payload is stored whole). A submission's event stores its ~10 KB of data once,
	// in the submission, instead of twice: JoinEnvelope puts the two together on reading.
	DataSubmissionID string
	// Trace holds the W3C trace context headers of the request that created it (nil: none).
	Trace map[string]string
	// CreatedAt is when the event happened.
	CreatedAt time.Time
	// WebhooksVersion is the webhooks version its transaction read (0: unknown).
	WebhooksVersion int64
	// UserID is the respondent the event is about ("": none), whose deletion erases it.
	UserID string
	// ErasedAt is when the payload was erased (zero: it is intact).
	ErasedAt time.Time
}
