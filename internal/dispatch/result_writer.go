package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// resultWriterConfig is what the result writer depends on.
type resultWriterConfig struct {
	Store   resultStore
	NowFunc func() time.Time
	Logger  *slog.Logger
	// Metrics receives Deliveries, EndpointsDisabled and OperationalEvents.
	Metrics *telemetry.Metrics
	// BatchSize and FlushInterval: see Config.
	BatchSize     int
	FlushInterval time.Duration
	// DisableAfterFailures and DisableAfter: see Config.
	DisableAfterFailures int
	DisableAfter         time.Duration
	// AckFunc acks a message whose deliveries are all recorded.
	AckFunc func(jetstream.Msg)
	// QueuedFunc is called when an outcome is queued: room for another attempt, and for a
	// stored delivery (stored) one claimed delivery fewer in flight.
	QueuedFunc func(stored bool)
	// DueFunc reports the earliest due time among the pending deliveries of a written batch.
	DueFunc func(time.Time)
	// DisabledFunc reports an endpoint disabled by a written batch.
	DisabledFunc func(store.DisabledEndpoint)
}

// resultWriter records outcomes in batches: it collects them for up to FlushInterval or
// BatchSize, writes the deliveries, the attempt log and the endpoints' failure counters in one
// transaction, and only then acks the messages whose deliveries are all recorded. A crash
// before the commit loses nothing: the messages are redelivered and the deterministic
// delivery ids make the second recording an update.
type resultWriter struct {
	cfg      resultWriterConfig
	in       chan outcome
	counters map[string]prometheus.Counter // deliveries by final status

	// Reused across flushes; only the writer goroutine touches them.
	results store.DeliveryResults
	latest  map[string]int
	aggs    map[string]*counterAgg
	order   []string
	// dirty holds endpoints this process counted failures for and has not reset since, so a
	// success resets their counters without a read.
	dirty map[string]bool

	// Set by a commit, applied after it.
	disabled []store.DisabledEndpoint
	reported []delivery.Reported
}

type counterAgg struct {
	store.EndpointCounter
	failingBefore bool
	// failingSince is the earliest FailingSince of the endpoint's outcomes in the batch.
	failingSince time.Time
}

// clockMargin is how far apart the dispatchers' clocks may be when the result writer decides
// that an endpoint cannot have failed for DisableAfter yet.
const clockMargin = time.Minute

// commitTries is how often a batch is written before it is split to isolate a bad row.
const commitTries = 4

// commitTimeout bounds one write of a batch.
const commitTimeout = 30 * time.Second

func newResultWriter(cfg resultWriterConfig) *resultWriter {
	w := &resultWriter{
		cfg:      cfg,
		in:       make(chan outcome, 2*cfg.BatchSize),
		counters: make(map[string]prometheus.Counter),
		latest:   make(map[string]int),
		aggs:     make(map[string]*counterAgg),
		dirty:    make(map[string]bool),
	}
	for _, s := range []string{StatusSucceeded, StatusFailed, StatusSkipped} {
		w.counters[s] = cfg.Metrics.Deliveries.WithLabelValues(s)
	}
	return w
}

// put queues an outcome; it blocks while the writer is BatchSize×2 behind, which slows the
// workers down to what the store takes.
func (w *resultWriter) put(o outcome) {
	w.in <- o
	w.cfg.QueuedFunc(o.stored)
}

// close ends run once every queued outcome is written.
func (w *resultWriter) close() { close(w.in) }

func (w *resultWriter) run(ctx context.Context) {
	batch := make([]outcome, 0, w.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		o, ok := <-w.in
		if !ok {
			return
		}
		batch = append(batch[:0], o)
		closed := false
		timer.Reset(w.cfg.FlushInterval)
		// A lane's head that is done holds its whole lane until it is written: it does not
		// wait for others to share its transaction, only takes what is queued already.
		urgent := laneDone(&o)
	gather:
		for len(batch) < cap(batch) {
			if urgent {
				select {
				case o, ok := <-w.in:
					if !ok {
						closed = true
						break gather
					}
					batch = append(batch, o)
					continue
				default:
					break gather
				}
			}
			select {
			case o, ok := <-w.in:
				if !ok {
					closed = true
					break gather
				}
				batch = append(batch, o)
				urgent = urgent || laneDone(&o)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		w.flush(ctx, batch, commitTries)
		clear(batch)
		if closed {
			return
		}
	}
}

// laneDone reports whether o ends a lane delivery, which lets the lane's next head go.
func laneDone(o *outcome) bool { return o.d.Lane && o.d.Status != StatusPending }

// flush writes batch, retrying with backoff; a batch that keeps failing is split in halves so
// that one bad row cannot hold the others back, and a single row that keeps failing is dropped
// (its message is redelivered, its lease runs out, so it is tried again later).
func (w *resultWriter) flush(ctx context.Context, batch []outcome, tries int) {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(0))
	var err error
	for try := 1; try <= tries; try++ {
		if err = w.commit(ctx, batch); err == nil {
			w.committed(batch)
			return
		}
		if try < tries {
			time.Sleep(bo.NextBackOff())
		}
	}
	if len(batch) > 1 {
		w.cfg.Logger.ErrorContext(ctx, "recording delivery results failed; retrying in halves", "rows", len(batch), "err", err)
		h := len(batch) / 2
		w.flush(ctx, batch[:h], 1)
		w.flush(ctx, batch[h:], 1)
		return
	}
	o := &batch[0]
	w.cfg.Logger.ErrorContext(trace.ContextWithSpanContext(ctx, o.span), "recording a delivery result failed; it will be retried",
		"delivery_id", o.d.ID, "err", err)
	if o.msg != nil {
		o.msg.abandon()
	}
}

// commit writes batch in one transaction (on PostgreSQL one pipelined round trip).
func (w *resultWriter) commit(ctx context.Context, batch []outcome) error {
	// A store that stops answering must not hang the writer, and with it shutdown.
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	r := w.plan(batch)
	var err error
	w.disabled, w.reported, err = w.cfg.Store.RecordResults(ctx, r, w.disabled[:0], w.reported[:0])
	if err != nil {
		return fmt.Errorf("recording %d delivery results: %w", len(batch), err)
	}
	return nil
}

// plan gathers what records batch: the deliveries (upserted), the attempt log, the endpoints'
// failure counters, and the endpoints to disable for answering 410 or crossing the failure
// threshold.
func (w *resultWriter) plan(batch []outcome) *store.DeliveryResults {
	r := &w.results
	// A delivery appears once per batch (a redelivered message racing its first copy could
	// produce two outcomes); the last one wins.
	clear(w.latest)
	r.Deliveries = r.Deliveries[:0]
	for i := range batch {
		if k, ok := w.latest[batch[i].d.ID]; ok {
			r.Deliveries[k] = batch[i].d
			continue
		}
		w.latest[batch[i].d.ID] = len(r.Deliveries)
		r.Deliveries = append(r.Deliveries, batch[i].d)
	}
	r.Attempts = r.Attempts[:0]
	for i := range batch {
		if batch[i].hasAttempt {
			r.Attempts = append(r.Attempts, batch[i].a)
		}
	}
	var failing []string
	r.Counters, failing = w.counterUpdates(batch, r.Counters[:0])
	now := w.cfg.NowFunc()
	r.Now = now
	r.Gone = r.Gone[:0]
	for i := range batch {
		if batch[i].effect == effectGone {
			r.Gone = append(r.Gone, batch[i].d.WebhookID)
		}
	}
	r.Failing = nil
	if len(failing) > 0 && w.cfg.DisableAfterFailures > 0 {
		spanUntil := now
		if w.cfg.DisableAfter > 0 {
			spanUntil = now.Add(-w.cfg.DisableAfter)
		}
		// Only endpoints that can have been failing since spanUntil can cross the threshold.
		// Leaving the others out keeps a batch of fresh failures on the results' one round
		// trip: asking the store to check makes it a transaction, since a disabling writes a
		// webhook.disabled event with it (internal/delivery). A dead endpoint pays that only
		// after DisableAfter (24 hours by default) of failures.
		failing = slices.DeleteFunc(failing, func(id string) bool {
			since := w.aggs[id].failingSince
			return !since.IsZero() && since.After(spanUntil.Add(clockMargin))
		})
		if len(failing) > 0 {
			r.Failing = &store.FailingEndpoints{WebhookIDs: failing, Threshold: w.cfg.DisableAfterFailures, SpanUntil: spanUntil}
		}
	}
	return r
}

// counterUpdates folds the batch's outcomes, in order, into one counter change per endpoint,
// leaving out resets of endpoints that are not counting failures; it appends them to ups.
// failing lists the endpoints that failed in this batch.
func (w *resultWriter) counterUpdates(batch []outcome, ups []store.EndpointCounter) (_ []store.EndpointCounter, failing []string) {
	clear(w.aggs)
	w.order = w.order[:0]
	for i := range batch {
		o := &batch[i]
		if o.effect == effectNone {
			continue
		}
		a := w.aggs[o.d.WebhookID]
		if a == nil {
			a = &counterAgg{EndpointCounter: store.EndpointCounter{WebhookID: o.d.WebhookID}}
			w.aggs[o.d.WebhookID] = a
			w.order = append(w.order, o.d.WebhookID)
		}
		a.failingBefore = a.failingBefore || o.failing
		if a.failingSince.IsZero() || o.failingSince.Before(a.failingSince) {
			a.failingSince = o.failingSince
		}
		switch o.effect {
		case effectSuccess:
			a.Reset, a.Failures, a.FirstFailureAt = true, 0, time.Time{}
		case effectFailure, effectGone:
			a.Failures++
			if a.FirstFailureAt.IsZero() {
				a.FirstFailureAt = o.at
			}
		}
	}
	for _, id := range w.order {
		a := w.aggs[id]
		if a.Failures > 0 {
			failing = append(failing, id)
		}
		if a.Failures > 0 || a.failingBefore || w.dirty[id] {
			ups = append(ups, a.EndpointCounter)
		}
	}
	return ups, failing
}

// committed applies a written batch: dirty marks, metrics, acks, the scheduler's wake-up, and
// endpoints disabled on the way.
func (w *resultWriter) committed(batch []outcome) {
	for _, id := range w.order {
		a := w.aggs[id]
		if a.Failures > 0 {
			w.dirty[id] = true
		} else if a.Reset {
			delete(w.dirty, id)
		}
	}
	var next time.Time
	for i := range batch {
		o := &batch[i]
		if laneDone(o) {
			// A lane's head is done: the next one may go now.
			next = o.d.UpdatedAt
		}
		switch o.d.Status {
		case StatusPending:
			if !o.d.NextAttemptAt.IsZero() && (next.IsZero() || o.d.NextAttemptAt.Before(next)) {
				next = o.d.NextAttemptAt
			}
		case StatusFailed:
			w.counters[StatusFailed].Inc()
			w.cfg.Logger.InfoContext(trace.ContextWithSpanContext(context.Background(), o.span), "delivery failed",
				"delivery_id", o.d.ID, "webhook_id", o.d.WebhookID, "event_id", o.d.EventID,
				"attempts", o.d.Attempts, "error", o.d.LastError)
		default:
			w.counters[o.d.Status].Inc()
		}
		if o.msg != nil {
			o.msg.done(w.cfg.AckFunc)
		}
	}
	if !next.IsZero() {
		w.cfg.DueFunc(next)
	}
	for _, de := range w.disabled {
		w.cfg.DisabledFunc(de)
		w.cfg.Metrics.EndpointsDisabled.Inc()
		delete(w.dirty, de.ID)
		w.cfg.Logger.Warn("endpoint disabled", "webhook_id", de.ID, "survey_id", de.SurveyID, "reason", de.Reason)
	}
	w.disabled = w.disabled[:0]
	for _, op := range w.reported {
		w.cfg.Metrics.OperationalEvents.WithLabelValues(op.Type).Inc()
		w.cfg.Logger.Info("operational event written", "type", op.Type, "event_id", op.EventID,
			"survey_id", op.SurveyID, "webhook_id", op.WebhookID)
	}
	w.reported = w.reported[:0]
}
