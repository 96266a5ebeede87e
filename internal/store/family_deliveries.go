package store

import (
	"context"
	"time"
)

// The statuses of a delivery (deliveries.status), the one status set of the code base.
const (
	// DeliveryPending: to be attempted at NextAttemptAt.
	DeliveryPending = "pending"
	// DeliverySucceeded: an attempt was delivered.
	DeliverySucceeded = "succeeded"
	// DeliveryFailed: the attempts ran out, or the delivery cannot be attempted.
	DeliveryFailed = "failed"
	// DeliverySkipped: the endpoint was disabled when the event arrived.
	DeliverySkipped = "skipped"
)

// DeliveryStatuses lists every delivery status.
var DeliveryStatuses = []string{DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliverySkipped}

// Delivery is one event sent (or to be sent) to one endpoint: a deliveries row. Zero values
// stand for NULL columns.
type Delivery struct {
	ID, EventID, WebhookID, SurveyID, Type, URL string
	Status                                      string
	Attempts                                    int
	// LastStatusCode is the last answer's HTTP status; 0 when none came.
	LastStatusCode int
	// LastError is the last attempt's error code; empty when delivered or not attempted.
	LastError string
	// NextAttemptAt is when a pending delivery is due; zero otherwise.
	NextAttemptAt time.Time
	// ReplayOf is the delivery this one replays; ReplayID the range replay that made it.
	ReplayOf, ReplayID string
	// Lane marks a delivery in its endpoint's FIFO lane (see internal/dispatch, "FIFO
	// endpoints"): when it is inserted, the store takes its position from its event's seq.
	// A lane delivery is claimed only as its lane's head; the flag of a stored delivery
	// never changes.
	Lane                 bool
	CreatedAt, UpdatedAt time.Time
}

// Attempt is one entry of a delivery's attempt log (delivery_attempts). Stored times have
// microsecond precision, durations millisecond precision.
type Attempt struct {
	DeliveryID string
	N          int
	StartedAt  time.Time
	Duration   time.Duration
	// StatusCode is the answer's HTTP status; 0 when no answer came.
	StatusCode int
	// Error is the attempt's error; empty when delivered.
	Error        string
	ResponseBody string
}

// EndpointRoom is how many more attempts an endpoint can take in the claiming process.
type EndpointRoom struct {
	WebhookID string
	Free      int
}

// DeliveryClaim asks for due deliveries: pending, due at Now, not leased.
type DeliveryClaim struct {
	Now, LeaseUntil time.Time
	// PerEndpoint caps the deliveries claimed per endpoint not listed in Rooms; Rooms caps the
	// listed ones; Limit caps the claim.
	PerEndpoint, Limit int
	Rooms              []EndpointRoom
	// LaneGapUntil: a lane head stored before it no longer waits for the missing deliveries
	// of earlier events (they may never come); zero waits for ever.
	LaneGapUntil time.Time
}

// EndpointCounter is one endpoint's failure-counter change in a batch of results.
type EndpointCounter struct {
	WebhookID string
	// Reset: the batch had a success; Failures counts the failures after the last success.
	Reset    bool
	Failures int
	// FirstFailureAt is when the first of those failures ended.
	FirstFailureAt time.Time
}

// FailingEndpoints asks to disable, among WebhookIDs, the endpoints with at least Threshold
// consecutive failures whose first failure ended at or before SpanUntil.
type FailingEndpoints struct {
	WebhookIDs []string
	Threshold  int
	SpanUntil  time.Time
}

// DeliveryResults is one batch of the engine's results, written in one transaction (on
// PostgreSQL one round trip).
type DeliveryResults struct {
	// Deliveries are upserted: inserted, or updated while the stored row is pending and has
	// not more attempts. Each id appears once.
	Deliveries []Delivery
	// Attempts are inserted once per (delivery, n).
	Attempts []Attempt
	// Counters move the endpoints' failure counters.
	Counters []EndpointCounter
	// Gone lists endpoints whose receiver answered 410 Gone: they are disabled.
	Gone []string
	// Failing, when set, disables the endpoints past the failure threshold.
	Failing *FailingEndpoints
	// Now stamps the disabling.
	Now time.Time
}

// DisabledEndpoint is an endpoint a batch of results disabled.
type DisabledEndpoint struct {
	ID, SurveyID, Reason string
}

// GoneReason is the disabled_reason of an endpoint whose receiver answered 410.
const GoneReason = "the receiver answered 410 Gone"

// DeliveryCursor is a position in created_at, id order.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}

// DeliveryFilter selects deliveries to list, newest first. Zero fields do not filter.
type DeliveryFilter struct {
	// Surveys, when not nil, limits the list to these surveys (empty: to none).
	Surveys   []string
	SurveyID  string
	WebhookID string
	Status    []string
	Type      string
	// Since (inclusive) and Until (exclusive) bound created_at.
	Since, Until time.Time
	// Before continues the listing after this delivery (strictly older).
	Before *DeliveryCursor
	// Limit caps the rows returned. Required.
	Limit int
}

// ReplayMatch selects the deliveries a range replay re-sends (see internal/delivery): of
// the given statuses, created in [Since, Until), optionally of one survey, endpoint or
// type, whose endpoint exists and is enabled, not replayed already and not made by replay
// Exclude.
type ReplayMatch struct {
	Status                    []string
	SurveyID, WebhookID, Type string
	Since, Until              time.Time
	// After continues after this delivery (ascending); Since is then not applied.
	After *DeliveryCursor
	// Through, when set, ends the match at this delivery (inclusive).
	Through *DeliveryCursor
	// Exclude is a replay id whose own deliveries never match; empty for none.
	Exclude string
}

// ReplayRecord is a replays row. Filter is the canonical filter as JSON.
type ReplayRecord struct {
	ID                      string
	Filter                  []byte
	FilterKey               string
	Matched, Enqueued, Done int64
	Status                  string
	CreatedBy               string
	CreatedAt, UpdatedAt    time.Time
	EnqueuedAt              time.Time // zero while batches remain
	Error                   string
	Cursor                  *DeliveryCursor // the last delivery enqueued; nil before the first batch
}

// The statuses of a range replay (replays.status).
const (
	ReplayRunning   = "running"
	ReplayCompleted = "completed"
	ReplayFailed    = "failed"
)

// Deliveries runs the queries of the deliveries, delivery_attempts and replays tables. Its
// owner is internal/delivery. The engine's results also move the endpoints' failure counters
// (webhooks), in the same round trip; and replays read the webhooks they re-send to.
type Deliveries interface {
	// Insert adds d and its attempts (a replay, a test send).
	Insert(ctx context.Context, d *Delivery, attempts []Attempt) error
	// ClaimDue leases due pending deliveries, oldest due first, per endpoint no more than
	// its room and c.Limit in all (see the drivers). Lane deliveries are claimed only as
	// their lane's head, at most c.Limit of them besides: the lowest lane position of the endpoint's
	// pending lane deliveries, when it is due, not leased, and no event of the survey with a
	// lower position that the endpoint should get lacks its delivery, unless the head was
	// stored before c.LaneGapUntil. The result is in (NextAttemptAt, ID)
	// order; NextAttemptAt is the due time the delivery was claimed at.
	ClaimDue(ctx context.Context, c DeliveryClaim) ([]Delivery, error)
	// RecordResults writes a batch of results in one transaction and returns the endpoints
	// it disabled, appended to disabled.
	RecordResults(ctx context.Context, r *DeliveryResults, disabled []DisabledEndpoint) ([]DisabledEndpoint, error)
	// EventDeliveries returns the ids of the deliveries of an event.
	EventDeliveries(ctx context.Context, eventID string) ([]string, error)
	// PendingRetries counts the pending deliveries waiting in the store for their next
	// attempt (the dispatch24_pending_retries gauge).
	PendingRetries(ctx context.Context) (int64, error)

	// List returns up to f.Limit deliveries matching f, newest first (created_at, id).
	List(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// Get returns a delivery; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (Delivery, error)
	// Hold keeps delivery id, inside the caller's transaction (store.Driver.InTx), from being
	// deleted until the transaction ends (PostgreSQL: a FOR SHARE row lock, which the purge's
	// FOR UPDATE SKIP LOCKED passes over; SQLite: the write transaction, which no purge batch
	// can enter); ErrNotFound when it is not stored (any more). A replay holds the delivery it
	// replays, so the retention purge cannot delete it, and then its event, while the replay
	// is being inserted.
	Hold(ctx context.Context, id string) error
	// Attempts returns a delivery's attempt log in order.
	Attempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// Target returns the URL of an endpoint and whether it is disabled; ErrNotFound when it
	// does not exist (a replay re-sends to the endpoint's current URL).
	Target(ctx context.Context, webhookID string) (url, surveyID string, disabled bool, err error)

	// CountReplay counts the deliveries m matches.
	CountReplay(ctx context.Context, m ReplayMatch) (int64, error)
	// ReplayBatchEnd returns the n-th delivery m matches in (created_at, id) order;
	// ErrNotFound when fewer match.
	ReplayBatchEnd(ctx context.Context, m ReplayMatch, n int) (DeliveryCursor, error)
	// EnqueueReplay inserts a pending delivery, due at now, replaying each delivery m
	// matches for replay replayID, with a new random id; it returns how many.
	EnqueueReplay(ctx context.Context, m ReplayMatch, replayID string, now time.Time) (int64, error)
	// InsertReplay records a replay; ErrConflict while one of the same FilterKey runs.
	InsertReplay(ctx context.Context, r *ReplayRecord) error
	// ReplayRunning reports whether a replay of filterKey is running.
	ReplayRunning(ctx context.Context, filterKey string) (bool, error)
	// GetReplay returns a replay; ErrNotFound when there is none.
	GetReplay(ctx context.Context, id string) (ReplayRecord, error)
	// NextReplay returns the oldest running replay with batches left (on PostgreSQL one no
	// other transaction holds, and locks it); ErrNotFound when there is none.
	NextReplay(ctx context.Context) (ReplayRecord, error)
	// ReplayProgress saves a batch's progress: enqueued so far and the cursor.
	ReplayProgress(ctx context.Context, id string, enqueued int64, cursor DeliveryCursor, now time.Time) error
	// ReplayEnqueued records the last batch: matched = enqueued, enqueued_at now, status.
	ReplayEnqueued(ctx context.Context, id string, enqueued int64, status string, now time.Time) error
	// ReplayOutcomes counts a replay's deliveries by status.
	ReplayOutcomes(ctx context.Context, replayID string) (map[string]int64, error)
	// RefreshReplay saves done for a running replay and completes it once every delivery is
	// enqueued and done.
	RefreshReplay(ctx context.Context, id string, done int64, now time.Time) error
	// EnqueuingReplays returns the running replays whose batches are all in, oldest first.
	EnqueuingReplays(ctx context.Context) ([]string, error)
	// FailReplay marks a running replay failed.
	FailReplay(ctx context.Context, id, reason string, now time.Time) error

	// DeleteSurvey deletes a survey's deliveries, their attempt logs and the replays that
	// name it, and records a tombstone covering [since, now] (since: the survey's creation),
	// and returns how many deliveries it deleted. Meant for the survey's deletion, in its
	// transaction. From then on RecordResults drops the results of the survey's deliveries
	// created at or before now (an attempt that was in flight does not bring its delivery
	// back), while deliveries of a survey created again under the same id are recorded.
	DeleteSurvey(ctx context.Context, surveyID string, since, now time.Time) (int64, error)
	// Purged reports whether a delivery created at createdAt may have been deleted with its
	// survey: some tombstone covers createdAt.
	Purged(ctx context.Context, createdAt time.Time) (bool, error)

	// The retention purge's queries (internal/retention, through internal/delivery).

	// PurgeDeliveries deletes up to limit deliveries that are not pending and whose last
	// activity (updated_at) is in [from, cutoff), the oldest first, with their attempt logs,
	// in one transaction. A pending delivery is never deleted, however old. On PostgreSQL rows
	// that another transaction holds are skipped, not waited for. Passing the previous
	// batch's Last as from starts the next batch where it ended instead of stepping again over
	// the index entries of rows already deleted (PostgreSQL keeps them until a VACUUM).
	PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (PurgedDeliveries, error)
	// OldestFinishedDelivery is the last activity of the oldest delivery that is not pending
	// (the next one the purge deletes); the zero time when there is none.
	OldestFinishedDelivery(ctx context.Context) (time.Time, error)
	// PruneTombstones deletes the tombstones of surveys deleted before cutoff (the retention
	// horizon) and returns how many. Nothing they guard can exist any more: every delivery
	// they cover was created before cutoff, so an id of one is answered as purged by its age
	// alone, and no attempt of one can still be in flight.
	PruneTombstones(ctx context.Context, cutoff time.Time) (int64, error)
	// ReclaimSpace gives the space of deleted rows back, a step of at most maxPages pages at a
	// time, and reports how many free pages remain to give back (0: done). SQLite truncates
	// the file with an incremental vacuum (converting a small database that was created
	// without incremental auto-vacuum once; a large one returns ErrVacuumNeeded, and its
	// free pages are still reused for new rows). PostgreSQL runs a throttled VACUUM of the
	// purged tables (deliveries, delivery_attempts and events: the purge empties the events
	// that the deliveries kept), which makes their dead rows' space reusable where autovacuum
	// is off or behind, and reports 0. With maxPages 0 it only prepares: SQLite converts a
	// small database, PostgreSQL does nothing.
	ReclaimSpace(ctx context.Context, maxPages int) (remaining int, err error)
}
