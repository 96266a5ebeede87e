package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
)

// resultWriter records outcomes in batches: it collects them for up to FlushInterval or
// BatchSize, writes the deliveries, the attempt log and the endpoints' failure counters in one
// transaction, and only then acks the messages whose deliveries are all recorded. A crash
// before the commit loses nothing: the messages are redelivered and the deterministic
// delivery ids make the second recording an update.
type resultWriter struct {
	d     *Dispatcher
	in    chan outcome
	stmts *statementCache

	// Reused across flushes; only the writer goroutine touches them.
	args     []any
	stmtBuf  []statement
	rows     []int
	attempts []int
	latest   map[string]int
	aggs     map[string]*counterAgg
	order    []string
	// dirty holds endpoints this process counted failures for and has not reset since, so a
	// success resets their counters without a read.
	dirty map[string]bool

	// Set inside a transaction, applied after its commit.
	disabled []disabledEndpoint
}

type counterAgg struct {
	counterUpdate
	failingBefore bool
}

// commitTries is how often a batch is written before it is split to isolate a bad row.
const commitTries = 4

// commitTimeout bounds one write of a batch.
const commitTimeout = 30 * time.Second

func newResultWriter(d *Dispatcher) *resultWriter {
	return &resultWriter{
		d:      d,
		in:     make(chan outcome, 2*d.cfg.BatchSize),
		stmts:  newStatementCache(),
		latest: make(map[string]int),
		aggs:   make(map[string]*counterAgg),
		dirty:  make(map[string]bool),
	}
}

// put queues an outcome; it blocks while the writer is BatchSize×2 behind, which slows the
// workers down to what the store takes.
func (w *resultWriter) put(o outcome) {
	w.in <- o
	if o.stored {
		w.d.storedInFlight.Add(-1)
	}
	w.d.sched.roomFreed()
}

// close ends run once every queued outcome is written.
func (w *resultWriter) close() { close(w.in) }

func (w *resultWriter) run(ctx context.Context) {
	batch := make([]outcome, 0, w.d.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		o, ok := <-w.in
		if !ok {
			return
		}
		batch = append(batch[:0], o)
		closed := false
		timer.Reset(w.d.cfg.FlushInterval)
	gather:
		for len(batch) < cap(batch) {
			select {
			case o, ok := <-w.in:
				if !ok {
					closed = true
					break gather
				}
				batch = append(batch, o)
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
		w.d.logger.ErrorContext(ctx, "recording delivery results failed; retrying in halves", "rows", len(batch), "err", err)
		h := len(batch) / 2
		w.flush(ctx, batch[:h], 1)
		w.flush(ctx, batch[h:], 1)
		return
	}
	o := &batch[0]
	w.d.logger.ErrorContext(trace.ContextWithSpanContext(ctx, o.span), "recording a delivery result failed; it will be retried",
		"delivery_id", o.d.ID, "err", err)
	if o.msg != nil {
		o.msg.abandon()
	}
}

// statement is one statement of a batch's write. Statements that disable endpoints return
// (id, survey_id, disabled_reason) rows.
type statement struct {
	sql      string
	args     []any
	disables bool
}

// commit writes batch in one transaction: on PostgreSQL one pipelined round trip (a pgx
// batch runs as an implicit transaction), on SQLite a transaction on the writer connection.
func (w *resultWriter) commit(ctx context.Context, batch []outcome) error {
	// A store that stops answering must not hang the writer, and with it shutdown.
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	stmts := w.plan(batch)
	var err error
	if pool := postgres.Pool(w.d.cfg.DB); pool != nil {
		w.disabled, err = execBatch(ctx, pool, stmts, w.disabled[:0])
	} else {
		err = w.d.cfg.DB.InTx(ctx, func(tx store.Querier) error {
			var err error
			w.disabled, err = execTx(ctx, tx, stmts, w.disabled[:0])
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("recording %d delivery results: %w", len(batch), err)
	}
	return nil
}

// plan lists the statements that record batch: the deliveries (upserted), the attempt log,
// the endpoints' failure counters, and the disabling of endpoints that answered 410 or
// crossed the failure threshold.
func (w *resultWriter) plan(batch []outcome) []statement {
	// A delivery appears once per batch (a redelivered message racing its first copy could
	// produce two outcomes); the last one wins.
	clear(w.latest)
	w.rows = w.rows[:0]
	for i := range batch {
		if k, ok := w.latest[batch[i].d.ID]; ok {
			w.rows[k] = i
			continue
		}
		w.latest[batch[i].d.ID] = len(w.rows)
		w.rows = append(w.rows, i)
	}
	w.attempts = w.attempts[:0]
	for i := range batch {
		if batch[i].hasAttempt {
			w.attempts = append(w.attempts, i)
		}
	}
	w.args = w.args[:0]
	stmts := w.stmtBuf[:0]
	for i := 0; i < len(w.rows); {
		size := chunkFor(len(w.rows) - i)
		start := len(w.args)
		for _, k := range w.rows[i : i+size] {
			w.args = deliveryArgs(w.args, &batch[k].d)
		}
		stmts = append(stmts, statement{sql: w.stmts.deliveries[size], args: w.args[start:len(w.args):len(w.args)]})
		i += size
	}
	for i := 0; i < len(w.attempts); {
		size := chunkFor(len(w.attempts) - i)
		start := len(w.args)
		for _, k := range w.attempts[i : i+size] {
			w.args = attemptArgs(w.args, batch[k].d.ID, &batch[k].a)
		}
		stmts = append(stmts, statement{sql: w.stmts.attempts[size], args: w.args[start:len(w.args):len(w.args)]})
		i += size
	}
	ups, failing := w.counterUpdates(batch)
	if len(ups) > 0 {
		sql, args := counterStatement(ups, nil)
		stmts = append(stmts, statement{sql: sql, args: args})
	}
	now := store.Micros(w.d.cfg.NowFunc())
	for i := range batch {
		if batch[i].effect == effectGone {
			stmts = append(stmts, statement{sql: disableGoneSQL, args: []any{goneReason, now, batch[i].d.WebhookID}, disables: true})
		}
	}
	if len(failing) > 0 && w.d.cfg.DisableAfterFailures > 0 {
		spanUntil := now
		if w.d.cfg.DisableAfter > 0 {
			spanUntil = store.Micros(w.d.cfg.NowFunc().Add(-w.d.cfg.DisableAfter))
		}
		sql, args := failingStatement(failing, w.d.cfg.DisableAfterFailures, spanUntil, now)
		stmts = append(stmts, statement{sql: sql, args: args, disables: true})
	}
	w.stmtBuf = stmts
	return stmts
}

// chunkFor is the largest statement size that fits n rows.
func chunkFor(n int) int {
	for _, size := range chunkSizes {
		if size <= n {
			return size
		}
	}
	return 1
}

func execBatch(ctx context.Context, pool *pgxpool.Pool, stmts []statement, disabled []disabledEndpoint) ([]disabledEndpoint, error) {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts))}
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	br := pool.SendBatch(ctx, b)
	for _, s := range stmts {
		if !s.disables {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return disabled, err
			}
			continue
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return disabled, err
		}
		for rows.Next() {
			var d disabledEndpoint
			if err := rows.Scan(&d.id, &d.surveyID, &d.reason); err != nil {
				rows.Close()
				br.Close()
				return disabled, err
			}
			disabled = append(disabled, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return disabled, err
		}
	}
	return disabled, br.Close()
}

func execTx(ctx context.Context, tx store.Querier, stmts []statement, disabled []disabledEndpoint) ([]disabledEndpoint, error) {
	for _, s := range stmts {
		if !s.disables {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return disabled, err
			}
			continue
		}
		rows, err := tx.Query(ctx, s.sql, s.args...)
		if err != nil {
			return disabled, err
		}
		for rows.Next() {
			var d disabledEndpoint
			if err := rows.Scan(&d.id, &d.surveyID, &d.reason); err != nil {
				rows.Close()
				return disabled, err
			}
			disabled = append(disabled, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return disabled, err
		}
	}
	return disabled, nil
}

// counterUpdates folds the batch's outcomes, in order, into one counter change per endpoint,
// leaving out resets of endpoints that are not counting failures. failing lists the endpoints
// that failed in this batch.
func (w *resultWriter) counterUpdates(batch []outcome) (ups []counterUpdate, failing []string) {
	clear(w.aggs)
	w.order = w.order[:0]
	for i := range batch {
		o := &batch[i]
		if o.effect == effectNone {
			continue
		}
		a := w.aggs[o.d.WebhookID]
		if a == nil {
			a = &counterAgg{counterUpdate: counterUpdate{webhookID: o.d.WebhookID}}
			w.aggs[o.d.WebhookID] = a
			w.order = append(w.order, o.d.WebhookID)
		}
		a.failingBefore = a.failingBefore || o.failing
		switch o.effect {
		case effectSuccess:
			a.reset, a.failures, a.first = true, 0, 0
		case effectFailure, effectGone:
			a.failures++
			if a.first == 0 {
				a.first = o.at
			}
		}
	}
	for _, id := range w.order {
		a := w.aggs[id]
		if a.failures > 0 {
			failing = append(failing, id)
		}
		if a.failures > 0 || a.failingBefore || w.dirty[id] {
			ups = append(ups, a.counterUpdate)
		}
	}
	return ups, failing
}

// committed applies a written batch: dirty marks, metrics, acks, the scheduler's wake-up, and
// endpoints disabled on the way.
func (w *resultWriter) committed(batch []outcome) {
	for _, id := range w.order {
		a := w.aggs[id]
		if a.failures > 0 {
			w.dirty[id] = true
		} else if a.reset {
			delete(w.dirty, id)
		}
	}
	var next int64
	for i := range batch {
		o := &batch[i]
		switch o.d.Status {
		case StatusPending:
			if o.d.NextAttemptAt > 0 && (next == 0 || o.d.NextAttemptAt < next) {
				next = o.d.NextAttemptAt
			}
		case StatusFailed:
			w.d.deliveryCounters[StatusFailed].Inc()
			w.d.logger.InfoContext(trace.ContextWithSpanContext(context.Background(), o.span), "delivery failed",
				"delivery_id", o.d.ID, "webhook_id", o.d.WebhookID, "event_id", o.d.EventID,
				"attempts", o.d.Attempts, "error", o.d.LastError)
		default:
			w.d.deliveryCounters[o.d.Status].Inc()
		}
		if o.msg != nil {
			o.msg.done(w.d)
		}
	}
	if next > 0 {
		w.d.sched.hint(store.FromMicros(next))
	}
	for _, de := range w.disabled {
		w.d.cache.invalidate(de.surveyID)
		w.d.cfg.Metrics.EndpointsDisabled.Inc()
		delete(w.dirty, de.id)
		w.d.logger.Warn("endpoint disabled", "webhook_id", de.id, "survey_id", de.surveyID, "reason", de.reason)
	}
	w.disabled = w.disabled[:0]
}
