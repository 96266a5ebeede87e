package submission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Outbox stores events in the caller's transaction and, after the commit, hands them to the
// relay's fast path. *outbox.Relay is one.
type Outbox interface {
	// Add stores entries in the transaction tx, reserved for the fast path.
	Add(ctx context.Context, tx store.Executor, entries []outbox.Entry) error
	// ReservedUntil is the reservation of events written now, for a batch's commit that
	// stores its events itself (store.SubmissionBatch.EventsClaimedUntil).
	ReservedUntil() time.Time
	// Notify hands committed entries to the fast path.
	Notify(entries []outbox.Entry)
}

var _ Outbox = (*outbox.Relay)(nil)

// Config configures a Service.
type Config struct {
	// DB is the store (required).
	DB *store.DB
	// Outbox receives the events (required).
	Outbox Outbox
	// Metrics counts accepted submissions (nil: none).
	Metrics *telemetry.Metrics
	// Logger (nil: slog.Default()).
	Logger *slog.Logger
	// TracerProvider (nil: the OpenTelemetry global).
	TracerProvider trace.TracerProvider
	// Propagator captures the request's trace context into each event (nil: the
	// OpenTelemetry global).
	Propagator propagation.TextMapPropagator

	// MaxBatch bounds the submissions written in one transaction (default 256).
	MaxBatch int
	// Writers is how many batch transactions may run at once (default 1 when the store has a
	// single writer, as SQLite has; otherwise, as on PostgreSQL, one per CPU, from 2 to 4).
	// A writer beyond the first starts only when several submissions are waiting, so
	// batches stay big: the server's cost of a batch is mostly per statement and per
	// transaction, not per row (on a 2-CPU machine, about 250-300 µs of server CPU per
	// 10 KB submission in batches of ~15, and ~500 µs when four writers each take whatever
	// is queued).
	Writers int
	// Linger makes a writer wait this long for more submissions before committing a batch
	// that is not full (default 0: batches form only from what queues during the previous
	// commit, which adds no latency when the load is light).
	Linger time.Duration
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = otel.GetTextMapPropagator()
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.Writers <= 0 && c.DB != nil {
		c.Writers = 1
		if c.DB.Driver.Submissions().ConcurrentCommits() {
			c.Writers = min(max(runtime.NumCPU(), 2), 4)
		}
	}
	return c
}

func (c Config) validate() error {
	if c.DB == nil {
		return errors.New("submission: Config.DB is required")
	}
	if c.Outbox == nil {
		return errors.New("submission: Config.Outbox is required")
	}
	return nil
}

// Service is the survey app's side of Dispatch24: respondents start and cancel sessions and
// submit recalls; each becomes an event in the outbox, written in the same transaction.
type Service struct {
	cfg    Config
	db     *store.DB
	outbox Outbox
	// readFirst: each request reads its respondent before joining a batch, since the
	// store's batch commit had better not (store.Submissions.CommitReadsSubmitters).
	readFirst bool
	committer *committer
	nowFunc   func() time.Time
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, db: cfg.DB, outbox: cfg.Outbox, nowFunc: time.Now,
		readFirst: !cfg.DB.Driver.Submissions().CommitReadsSubmitters()}
	s.committer = &committer{
		db:       cfg.DB,
		outbox:   cfg.Outbox,
		tracer:   cfg.TracerProvider.Tracer("github.com/dispatch24/dispatch24/internal/submission"),
		maxBatch: cfg.MaxBatch,
		writers:  cfg.Writers,
		linger:   cfg.Linger,
	}
	if cfg.Metrics != nil {
		s.committer.onCommit = func(n int) { cfg.Metrics.Submissions.Add(float64(n)) }
	}
	return s, nil
}

// Receipt is the answer to a submission.
type Receipt struct {
	// SubmissionID is the submission's id; for a repeat, the first submission's.
	SubmissionID string
	// FollowUpURL is where the survey app sends the respondent next ("" for none).
	FollowUpURL string
	// Created is false when the submission repeated an earlier one.
	Created bool
}

// Submit stores rec for the respondent p with its survey.session.submitted event, durably,
// before it returns. A repeat of an earlier submission of the same respondent — the same
// idempotency key, or the same sessionId — returns the earlier submission's id and stores
// nothing.
func (s *Service) Submit(ctx context.Context, p *httpapi.Principal, rec *Recall, idemKey string) (*Receipt, error) {
	now := s.nowFunc().UTC().Truncate(time.Millisecond)
	it := &pending{
		id:          newID("sub_"),
		surveyID:    p.SurveyID,
		userID:      p.UserID,
		sessionID:   rec.SessionID,
		idemKey:     idemKey,
		submittedAt: now,
		span:        trace.SpanContextFromContext(ctx),
		done:        make(chan struct{}),
	}
	ev := events.Event{
		ID:           events.NewID(),
		Type:         events.TypeSessionSubmitted,
		Timestamp:    now,
		SurveyID:     p.SurveyID,
		SessionID:    rec.SessionID,
		UserID:       p.UserID,
		Username:     p.Username,
		SubmissionID: it.id,
	}
	payload, head, body, err := submissionEnvelope(&ev, len(rec.Raw)+len(it.id)+len(p.SurveyID)+len(p.UserID)+96,
		func(dst []byte) []byte {
			return appendStoredSubmission(dst, it.id, p.SurveyID, p.UserID, now, rec.Raw, rec.Compact)
		})
	if err != nil {
		return nil, err
	}
	it.body, it.eventHead, it.entry = body, head, s.entry(ctx, &ev, payload)
	if s.readFirst {
		// Where the batch's commit does not read its respondents itself (PostgreSQL reads
		// them in its first round trip), each request reads its own, concurrently, before
		// joining a batch.
		if it.respondent, err = s.respondent(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := s.committer.submit(ctx, it); err != nil {
		return nil, err
	}
	return &Receipt{SubmissionID: it.resultID, FollowUpURL: followUpURL(it.respondent, p.UserID), Created: it.created}, nil
}

// StartSession opens a new session for the respondent p and returns its id. A session the
// respondent left open is cancelled first (with its own event): a respondent has at most one
// open session.
func (s *Service) StartSession(ctx context.Context, p *httpapi.Principal) (string, error) {
	ri, err := s.respondent(ctx, p)
	if err != nil {
		return "", err
	}
	id := newID("ses_")
	for attempt := 1; ; attempt++ {
		var entries []outbox.Entry
		err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
			now := s.nowFunc()
			cancelled, err := tx.Submissions().CancelOpenSessions(ctx, p.SurveyID, p.UserID, now)
			if err != nil {
				return err
			}
			if err := tx.Submissions().OpenSession(ctx, id, p.SurveyID, p.UserID, now); err != nil {
				return err
			}
			entries = entries[:0]
			for _, sid := range cancelled {
				e, err := s.sessionEntry(ctx, p, events.TypeSessionCancelled, sid, now, ri.WebhooksVersion)
				if err != nil {
					return err
				}
				entries = append(entries, e)
			}
			e, err := s.sessionEntry(ctx, p, events.TypeSessionStarted, id, now, ri.WebhooksVersion)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			return s.outbox.Add(ctx, tx, entries)
		})
		// Two starts racing: the unique index of open sessions refuses the second; run it
		// again, now cancelling the first.
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return "", err
		}
		s.outbox.Notify(entries)
		return id, nil
	}
}

// ErrNoOpenSession is returned by CancelSession when the respondent has no open session.
var ErrNoOpenSession = errors.New("no open session")

// CancelSession cancels the respondent's open session and returns its id.
func (s *Service) CancelSession(ctx context.Context, p *httpapi.Principal) (string, error) {
	var (
		entries []outbox.Entry
		id      string
	)
	err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		now := s.nowFunc()
		cancelled, err := tx.Submissions().CancelOpenSessions(ctx, p.SurveyID, p.UserID, now)
		if err != nil {
			return err
		}
		if len(cancelled) == 0 {
			return ErrNoOpenSession
		}
		version, err := tx.Webhooks().Version(ctx)
		if err != nil {
			return err
		}
		entries = entries[:0]
		for _, sid := range cancelled {
			e, err := s.sessionEntry(ctx, p, events.TypeSessionCancelled, sid, now, version)
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		id = cancelled[0]
		return s.outbox.Add(ctx, tx, entries)
	})
	if err != nil {
		return "", err
	}
	s.outbox.Notify(entries)
	return id, nil
}

// respondent reads the principal's respondent record, failing as checkRespondent does.
func (s *Service) respondent(ctx context.Context, p *httpapi.Principal) (*store.Submitter, error) {
	k := store.SubmitterKey{SurveyID: p.SurveyID, UserID: p.UserID}
	found, err := s.db.Driver.Submissions().Submitters(ctx, []store.SubmitterKey{k})
	if err != nil {
		return nil, err
	}
	return checkRespondent(found[k])
}

// checkRespondent turns a looked-up respondent into an error when it cannot act: 404 when it
// or its survey is gone (nil), 403 when the account is disabled.
func checkRespondent(ri *store.Submitter) (*store.Submitter, error) {
	if ri == nil {
		return nil, httpapi.NotFound("survey_not_found", "no such survey")
	}
	if ri.Disabled {
		return nil, httpapi.Forbidden("account_disabled", "this respondent account is disabled")
	}
	return ri, nil
}

// sessionEntry is the event of a session's change; webhooksVersion is as read in the request
// (store.Submitter.WebhooksVersion).
func (s *Service) sessionEntry(ctx context.Context, p *httpapi.Principal, typ, sessionID string, now time.Time,
	webhooksVersion int64) (outbox.Entry, error) {
	ev := events.Event{
		ID:        events.NewID(),
		Type:      typ,
		Timestamp: now,
		SurveyID:  p.SurveyID,
		SessionID: sessionID,
		UserID:    p.UserID,
		Username:  p.Username,
	}
	payload, err := ev.Marshal()
	if err != nil {
		return outbox.Entry{}, err
	}
	e := s.entry(ctx, &ev, payload)
	e.Message.WebhooksVersion = webhooksVersion
	return e, nil
}

// entry is ev's outbox entry, with its envelope payload and the trace context of ctx, so the
// publish continues the request's trace.
func (s *Service) entry(ctx context.Context, ev *events.Event, payload []byte) outbox.Entry {
	return outbox.Entry{
		SurveyID:  ev.SurveyID,
		UserID:    ev.UserID,
		CreatedAt: ev.Timestamp,
		Message: events.Message{
			ID:      ev.ID,
			Type:    ev.Type,
			Subject: events.Subject(ev.SurveyID, ev.Type),
			Payload: payload,
			Trace:   events.TraceHeaders(ctx, s.cfg.Propagator),
		},
	}
}

// appendStoredSubmission appends the submission as stored and delivered in the event's data:
// {"id","surveyId","userId","submissionTime","recall"}, with the recall as submitted but
// compacted as encoding/json writes a json.RawMessage (insignificant whitespace dropped; <, >,
// &, U+2028 and U+2029 escaped in strings): the same JSON, and the bytes the envelope carries,
// so that the event stores no copy of them (submissionEnvelope, store.JoinEnvelope). compact
// says the recall is so already (Recall.Compact), and it is copied as it is.
func appendStoredSubmission(b []byte, id, surveyID, userID string, at time.Time, recall []byte, compact bool) []byte {
	recall = bytes.TrimSpace(recall)
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"surveyId":`...)
	b = appendString(b, surveyID)
	b = append(b, `,"userId":`...)
	b = appendString(b, userID)
	b = append(b, `,"submissionTime":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","recall":`...)
	if compact {
		b = append(b, recall...)
	} else {
		b = appendCompactHTML(b, recall)
	}
	b = append(b, '}')
	return b
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a Go string always encodes
	return append(b, q...)
}

// newID returns prefix and a UUIDv7 without dashes: unique, opaque, sorting by creation.
func newID(prefix string) string {
	return ids.New(prefix)
}
