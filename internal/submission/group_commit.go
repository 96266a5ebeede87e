package submission

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
)

// pending is one submission on its way into the store.
type pending struct {
	id          string
	surveyID    string
	userID      string
	sessionID   string
	idemKey     string
	body        []byte // the stored submission
	submittedAt time.Time
	entry       outbox.Entry
	// eventHead is the entry's envelope without its data, which is body: what the events
	// table stores of it (store.Event.DataSubmissionID). Nil: the event is stored whole.
	eventHead []byte

	// respondent is read by Submit (SQLite) or by the batch's commit (PostgreSQL, in its
	// first round trip); the follow-up URL is filled from it.
	respondent *store.Submitter
	// span is the submitting request's span, which the batch's commit span belongs to or
	// links to.
	span trace.SpanContext

	done chan struct{}
	// Set before done closes: the submission's id (this one's, or the earlier one's it
	// repeats) and whether this call created it.
	resultID string
	created  bool
	err      error
}

// committer writes submissions with group commit: concurrent submissions queue up and are
// written together, in one transaction per batch, by at most `writers` transactions at a
// time. There is no background goroutine: a submitter that finds a writer slot free writes a
// batch itself (including whatever queued meanwhile); a writer that finishes while more is
// queued hands over to a new goroutine, so every submitter answers as soon as its own batch
// commits. Each caller still learns its result only after the commit.
type committer struct {
	db       *store.DB
	outbox   Outbox
	tracer   trace.Tracer
	maxBatch int
	writers  int
	linger   time.Duration
	// onCommit is called with the number of submissions a commit created.
	onCommit func(created int)

	mu     sync.Mutex
	queue  []*pending
	active int
}

// submit queues it and returns once it is committed (or failed).
func (c *committer) submit(ctx context.Context, it *pending) error {
	c.mu.Lock()
	c.queue = append(c.queue, it)
	lead := c.mayLead()
	if lead {
		c.active++
	}
	c.mu.Unlock()
	if lead {
		c.lead()
	}
	select {
	case <-it.done:
		return it.err
	case <-ctx.Done():
		// The submission may still commit; the client that gave up will learn its id by
		// repeating the request with the same Idempotency-Key.
		return fmt.Errorf("waiting for the commit: %w", ctx.Err())
	}
}

// extraWriterMin is how many submissions must be waiting before a second (third, …) writer
// starts while one is writing. Below it they wait for the writer's next batch: the server's
// cost of a batch is mostly per statement and per transaction, so a writer started for one
// submission would cost nearly as much as one for thirty, and on a small machine the CPU it
// takes slows the batch already being written.
const extraWriterMin = 4

// mayLead reports whether a submitter that just queued may write a batch itself: when no
// writer is active, or when a writer slot is free and enough is waiting (c.mu held).
func (c *committer) mayLead() bool {
	if c.active == 0 {
		return true
	}
	return c.active < c.writers && len(c.queue) >= extraWriterMin
}

// lead writes one batch, then hands the writer slot on if more is queued.
func (c *committer) lead() {
	if c.linger > 0 {
		c.mu.Lock()
		short := len(c.queue) < c.maxBatch
		c.mu.Unlock()
		if short {
			time.Sleep(c.linger)
		}
	}
	c.mu.Lock()
	n := min(len(c.queue), c.maxBatch)
	batch := make([]*pending, n)
	copy(batch, c.queue)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	c.mu.Unlock()

	if len(batch) > 0 {
		c.write(batch)
	}

	c.mu.Lock()
	if len(c.queue) > 0 {
		// Keep the slot: a fresh goroutine writes what queued, while this submitter answers.
		c.mu.Unlock()
		go c.lead()
		return
	}
	c.active--
	c.mu.Unlock()
}

// writeTimeout bounds one batch's transaction, which belongs to no single request: no
// client giving up cancels the others' commit.
const writeTimeout = 30 * time.Second

// write commits a batch and resolves every submission in it. Submissions repeating another
// in the same batch (same respondent and Idempotency-Key or session) follow that one. If the
// batch's transaction fails, each submission is retried alone, so one bad submission cannot
// fail the others.
func (c *committer) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	// The commit span belongs to the first submission's trace and links the others'.
	links := make([]trace.Link, 0, len(batch)-1)
	for _, it := range batch[1:] {
		links = append(links, trace.Link{SpanContext: it.span})
	}
	ctx, span := c.tracer.Start(trace.ContextWithSpanContext(ctx, batch[0].span), "submission.commit",
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("submission.batch_size", len(batch))))
	defer span.End()

	primaries, follows := dedupe(batch)
	err := c.writeTx(ctx, primaries)
	if err != nil && len(primaries) > 1 {
		span.AddEvent("batch failed; writing submissions one by one", trace.WithAttributes(attribute.String("error", err.Error())))
		for _, it := range primaries {
			it.err = nil
			if err := c.writeTx(ctx, []*pending{it}); err != nil {
				it.err = err
			}
		}
	} else if err != nil {
		primaries[0].err = err
	}
	for _, it := range primaries {
		if it.err != nil {
			span.SetStatus(codes.Error, "a submission failed")
			span.RecordError(it.err)
		}
	}
	for it, first := range follows {
		it.resultID, it.created, it.err, it.respondent = first.resultID, false, first.err, first.respondent
	}
	for _, it := range batch {
		close(it.done)
	}
}

// admit refuses a respondent deleted or disabled after its token was issued (404 or 403),
// when the batch's commit reads it (store.SubmissionBatch.Admit).
func admit(ri *store.Submitter) error {
	_, err := checkRespondent(ri)
	return err
}

// writeTx writes items in one transaction (store.Submissions.Commit) and, after the commit,
// hands their events to the outbox's fast path.
func (c *committer) writeTx(ctx context.Context, items []*pending) error {
	b := store.SubmissionBatch{
		Items:              make([]store.SubmissionItem, len(items)),
		EventsClaimedUntil: c.outbox.ReservedUntil(),
		Admit:              admit,
	}
	for i, it := range items {
		b.Items[i] = store.SubmissionItem{
			Submission: store.Submission{
				ID:             it.id,
				SurveyID:       it.surveyID,
				UserID:         it.userID,
				SessionID:      it.sessionID,
				IdempotencyKey: it.idemKey,
				Body:           it.body,
				SubmittedAt:    it.submittedAt,
			},
			Event:     it.entry.Row(),
			Submitter: it.respondent,
		}
		if it.eventHead != nil {
			ev := &b.Items[i].Event
			ev.Payload, ev.DataSubmissionID = it.eventHead, it.id
		}
	}
	if err := c.db.Driver.Submissions().Commit(ctx, &b); err != nil {
		return err
	}
	var entries []outbox.Entry
	for i, it := range items {
		r := &b.Items[i]
		it.respondent, it.err = r.Submitter, r.Err
		it.created, it.resultID = r.Created, r.ResultID
		if r.Created {
			e := it.entry
			e.Message.WebhooksVersion = r.Event.WebhooksVersion
			entries = append(entries, e)
		}
	}
	c.outbox.Notify(entries)
	if c.onCommit != nil && len(entries) > 0 {
		c.onCommit(len(entries))
	}
	return nil
}

// dedupe splits a batch into the submissions to write and those repeating one of them.
func dedupe(batch []*pending) (primaries []*pending, follows map[*pending]*pending) {
	if len(batch) == 1 {
		return batch, nil
	}
	seen := make(map[string]*pending, len(batch))
	for _, it := range batch {
		var keys [2]string
		if it.idemKey != "" {
			keys[0] = "k\x00" + it.surveyID + "\x00" + it.userID + "\x00" + it.idemKey
		}
		if it.sessionID != "" {
			keys[1] = "s\x00" + it.surveyID + "\x00" + it.userID + "\x00" + it.sessionID
		}
		var first *pending
		for _, k := range keys {
			if k != "" && first == nil {
				first = seen[k]
			}
		}
		if first != nil {
			if follows == nil {
				follows = map[*pending]*pending{}
			}
			follows[it] = first
			continue
		}
		for _, k := range keys {
			if k != "" {
				seen[k] = it
			}
		}
		primaries = append(primaries, it)
	}
	return primaries, follows
}
