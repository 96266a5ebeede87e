package outbox

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Config configures a Relay.
type Config struct {
	// DB holds the events table (required).
	DB *store.DB
	// JS is the JetStream context events are published through (required).
	JS jetstream.JetStream
	// UsableFunc reports whether NATS takes publishes now (default: JS's connection is
	// connected). The api passes its NATS link's, which also refuses a server too old.
	UsableFunc func() bool
	// Metrics receives EventsPublished and PublishErrors (nil: none).
	Metrics *telemetry.Metrics
	// Logger (nil: slog.Default()).
	Logger *slog.Logger
	// TracerProvider makes the publish spans (nil: the OpenTelemetry global).
	TracerProvider trace.TracerProvider
	// Propagator reads stored trace context and writes it into message headers (nil: the
	// OpenTelemetry global).
	Propagator propagation.TextMapPropagator

	// FastLease is how long events written through Add stay reserved for this relay's fast
	// path before any relay's sweep may take them: the delay before events of a crashed
	// process are published by another (default 15s).
	FastLease time.Duration
	// Lease is how long a sweep's claim holds events while they are published (default 30s).
	Lease time.Duration
	// SweepInterval is how often the outbox is checked for events nobody holds (default 1s).
	SweepInterval time.Duration
	// MaxBackoff caps the wait between sweeps while NATS fails (default 5s).
	MaxBackoff time.Duration
	// BatchSize is how many events one sweep claims (default 256).
	BatchSize int
	// AckTimeout is how long a publish may wait for JetStream's ack before it counts as
	// failed and the event goes back to the outbox (default 5s).
	AckTimeout time.Duration
	// QueueSize is how many committed batches may wait for the fast path; past it
	// notifications are dropped and the sweep publishes those events (default 4096).
	QueueSize int
	// LogInterval is the least time between two log lines about failing publishes (default
	// 10s): the first failure is logged, then a count per interval, then the recovery.
	LogInterval time.Duration
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
	if c.FastLease <= 0 {
		c.FastLease = 15 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4096
	}
	if c.LogInterval <= 0 {
		c.LogInterval = 10 * time.Second
	}
	if c.UsableFunc == nil && c.JS != nil {
		c.UsableFunc = c.JS.Conn().IsConnected
	}
	return c
}

func (c Config) validate() error {
	if c.DB == nil {
		return errors.New("outbox: Config.DB is required")
	}
	if c.JS == nil {
		return errors.New("outbox: Config.JS is required")
	}
	return nil
}

// Relay publishes the outbox's events to JetStream and marks them published once JetStream
// has acknowledged them. Events written through Add and announced with Notify after their
// transaction commits are published at once (the fast path); a periodic sweep publishes
// whatever is left — events written while NATS was down, or by a process that died between
// commit and publish — claiming rows with a lease so several replicas share the work.
//
// While NATS fails the sweep backs off; a reconnect (or Wake) ends the backoff at once, so the
// outbox drains as soon as NATS is back. Publish failures are logged once when they start,
// then as a count every LogInterval, and once on recovery.
//
// Delivery to the stream is at least once; JetStream's duplicate window (Nats-Msg-Id = event
// id) turns the rare republish into one stored message.
type Relay struct {
	cfg    Config
	pub    events.Publisher
	tracer trace.Tracer
	notify chan []Entry
	// wake ends the sweep's wait (a reconnect, Wake).
	wake chan struct{}
	// publishLog aggregates publish failures.
	publishLog *telemetry.FailureLog
	// nowFunc is the clock (tests move it).
	nowFunc func() time.Time
}

// New returns a relay; Run starts it.
func New(cfg Config) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Relay{
		cfg:    cfg,
		pub:    events.Publisher{JS: cfg.JS, Propagator: cfg.Propagator},
		tracer: cfg.TracerProvider.Tracer("github.com/dispatch24/dispatch24/internal/outbox"),
		notify: make(chan []Entry, cfg.QueueSize),
		wake:   make(chan struct{}, 1),
		publishLog: &telemetry.FailureLog{
			Logger:       cfg.Logger,
			Msg:          "publishing events failed; they stay in the outbox",
			RecoveredMsg: "publishing events recovered",
			Interval:     cfg.LogInterval,
		},
		nowFunc: time.Now,
	}, nil
}

// Wake ends the sweep's wait and backoff: the outbox is swept at once. The api calls it when
// its NATS link is set up again after an outage; a reconnect of JS's connection wakes the
// relay by itself.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Add stores entries through tx (the caller's transaction, store.Driver.InTx), reserved for
// this relay's fast path until ReservedUntil. Call Notify with the same entries once the
// transaction has committed.
func (r *Relay) Add(ctx context.Context, tx store.Executor, entries []Entry) error {
	return Insert(ctx, tx, r.ReservedUntil(), entries)
}

// ReservedUntil is the claimed_until of events written now for this relay's fast path: now
// plus FastLease. Writers that store events themselves (a submission batch's commit) give it
// their rows; Add uses it.
func (r *Relay) ReservedUntil() time.Time { return r.nowFunc().Add(r.cfg.FastLease) }

// Notify hands committed entries to the fast path without blocking. When the relay is
// saturated or not running, the entries stay in the outbox and a sweep publishes them after
// their reservation ends.
func (r *Relay) Notify(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	select {
	case r.notify <- entries:
	default:
		r.cfg.Logger.Debug("outbox fast path full; the sweep will publish", "events", len(entries))
	}
}

// flight is a batch of publishes waiting for JetStream's acks.
type flight struct {
	entries  []Entry
	futures  []jetstream.PubAckFuture // nil where the publish could not start
	spans    []trace.Span
	startErr error // why publishes could not start, if any did not
	deadline time.Time
	// done is closed once every ack is in (or timed out) and failures are released.
	done chan struct{}
	// err is set before done closes when a publish failed.
	err error
}

// Run publishes until ctx ends. On the way out it waits for outstanding acks (bounded by
// AckTimeout), records them, and gives back events it had not published.
func (r *Relay) Run(ctx context.Context) error {
	// A reconnect ends the sweep's backoff at once: the outbox drains as soon as NATS is back.
	nc := r.cfg.JS.Conn()
	connected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(connected)
	stopWaking := make(chan struct{})
	defer close(stopWaking)
	go func() {
		for {
			select {
			case <-stopWaking:
				return
			case _, ok := <-connected:
				if !ok {
					return
				}
				r.Wake()
			}
		}
	}()

	inflight := make(chan *flight, 64)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		r.collect(inflight)
	}()

	var producers sync.WaitGroup
	producers.Add(2)
	go func() {
		defer producers.Done()
		r.sweepLoop(ctx, inflight)
	}()
	go func() {
		defer producers.Done()
		r.fastPath(ctx, inflight)
	}()
	producers.Wait()
	close(inflight)
	<-collected
	r.releaseQueued()
	return nil
}

// fastPath publishes notified entries as they arrive, coalescing whatever is queued.
func (r *Relay) fastPath(ctx context.Context, inflight chan<- *flight) {
	for {
		var batch []Entry
		select {
		case <-ctx.Done():
			return
		case batch = <-r.notify:
		}
		// Appending must never write into the notifier's array past its slice.
		batch = slices.Clip(batch)
	more:
		for len(batch) < r.cfg.BatchSize {
			select {
			case b := <-r.notify:
				batch = append(batch, b...)
			default:
				break more
			}
		}
		if !r.cfg.UsableFunc() {
			// Publishing now would only sit in the reconnect buffer; give the events to the
			// sweep, which publishes them once NATS is back.
			r.releaseEntries(batch, "NATS not connected")
			continue
		}
		inflight <- r.publish(ctx, batch)
	}
}

// sweepLoop claims and publishes events nobody holds, backing off while NATS fails. A wake
// (reconnect) ends the wait and the backoff at once.
func (r *Relay) sweepLoop(ctx context.Context, inflight chan<- *flight) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = r.cfg.MaxBackoff
	bo.MaxElapsedTime = 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	failing := false // logged once when it starts and once when it ends, not every retry
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.wake:
			timer.Stop()
			bo.Reset()
		}
		full, err := r.sweep(ctx, inflight)
		var delay time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			delay = bo.NextBackOff()
			if !failing {
				r.cfg.Logger.WarnContext(ctx, "outbox sweep failing; events stay in the outbox and are retried with backoff", "err", err)
			}
			failing = true
			timer.Reset(delay)
			continue
		case full:
			delay = 0 // more is waiting
		default:
			delay = r.cfg.SweepInterval
		}
		if failing {
			r.cfg.Logger.InfoContext(ctx, "outbox sweep recovered")
			failing = false
		}
		bo.Reset()
		timer.Reset(delay)
	}
}

// sweep claims one batch, publishes it and waits for its acks; full reports that the batch
// was full, so more may be waiting. It fails when NATS is not usable or a publish of the
// batch failed.
func (r *Relay) sweep(ctx context.Context, inflight chan<- *flight) (full bool, err error) {
	if !r.cfg.UsableFunc() {
		return false, errNotConnected
	}
	now := r.nowFunc()
	entries, err := claim(ctx, r.cfg.DB, now, now.Add(r.cfg.Lease), r.cfg.BatchSize)
	if err != nil || len(entries) == 0 {
		return false, err
	}
	r.cfg.Logger.DebugContext(ctx, "outbox sweep claimed events", "events", len(entries))
	f := r.publish(ctx, entries)
	inflight <- f
	<-f.done
	if f.err != nil {
		return false, f.err
	}
	return len(entries) == r.cfg.BatchSize, nil
}

var errNotConnected = errors.New("NATS not connected")

// publish starts publishing entries, each in a producer span continuing the trace of the
// request that created it.
func (r *Relay) publish(ctx context.Context, entries []Entry) *flight {
	f := &flight{
		entries:  entries,
		futures:  make([]jetstream.PubAckFuture, len(entries)),
		spans:    make([]trace.Span, len(entries)),
		deadline: time.Now().Add(r.cfg.AckTimeout),
		done:     make(chan struct{}),
	}
	for i, e := range entries {
		m := e.Message
		mctx := context.WithoutCancel(ctx)
		if len(m.Trace) > 0 {
			mctx = r.cfg.Propagator.Extract(mctx, propagation.MapCarrier(m.Trace))
		}
		mctx, span := r.tracer.Start(mctx, "publish "+m.Type, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.message.id", m.ID),
			))
		f.spans[i] = span
		fut, err := r.pub.PublishAsync(mctx, m)
		if err != nil {
			f.startErr = err
			continue
		}
		f.futures[i] = fut
	}
	return f
}

// markDelay is how long acknowledged events wait to be recorded, so one UPDATE records many:
// the marks are bookkeeping (a leased row is not swept meanwhile), not on any path that
// waits.
const markDelay = 20 * time.Millisecond

// collect waits for the acks of each flight in turn, marks acknowledged events published (in
// batches) and gives failed ones back to the outbox.
func (r *Relay) collect(in <-chan *flight) {
	var acked []string
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	for {
		select {
		case f, ok := <-in:
			if !ok {
				if len(acked) > 0 {
					r.markPublished(acked)
				}
				return
			}
			if len(acked) == 0 {
				flush.Reset(markDelay)
			}
			acked = r.await(f, timer, acked)
			if len(acked) < 1024 {
				continue
			}
		case <-flush.C:
		}
		flush.Stop()
		if len(acked) > 0 {
			r.markPublished(acked)
			acked = acked[:0]
		}
	}
}

// await resolves one flight, appending acknowledged ids to acked.
func (r *Relay) await(f *flight, timer *time.Timer, acked []string) []string {
	defer close(f.done)
	var (
		failed []Entry
		reason error
	)
	timer.Reset(time.Until(f.deadline))
	timedOut := false
	for i, fut := range f.futures {
		e, span := f.entries[i], f.spans[i]
		var err error
		switch {
		case fut == nil:
			err = f.startErr
		case timedOut:
			err = jetstream.ErrAsyncPublishTimeout
		default:
			select {
			case <-fut.Ok():
			case err = <-fut.Err():
			case <-timer.C:
				timedOut = true
				err = jetstream.ErrAsyncPublishTimeout
			}
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
			span.End()
			failed = append(failed, e)
			reason = err
			continue
		}
		span.End()
		acked = append(acked, e.Message.ID)
		if r.cfg.Metrics != nil {
			r.cfg.Metrics.EventsPublished.WithLabelValues(e.Message.Type).Inc()
		}
	}
	timer.Stop() // since Go 1.23 a stopped timer delivers no stale tick
	if len(failed) == 0 {
		if r.publishLog.Failing() {
			// JetStream works again without a reconnect (a failover ended): the sweep need not
			// wait out its backoff for what failed meanwhile.
			r.Wake()
		}
		r.publishLog.Recover(context.Background())
		return acked
	}
	f.err = reason
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.PublishErrors.Add(float64(len(failed)))
	}
	r.publishLog.Fail(context.Background(), len(failed), reason)
	r.releaseEntries(failed, reason.Error())
	return acked
}

// dbTimeout bounds the relay's bookkeeping writes, which run outside any request.
const dbTimeout = 10 * time.Second

// markPublished records acks, retrying briefly: an event left unmarked is published again
// after its lease, which JetStream deduplicates inside its window.
func (r *Relay) markPublished(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	op := func() error { return markPublished(ctx, r.cfg.DB, r.nowFunc(), ids) }
	bo := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(20*time.Millisecond)), ctx)
	if err := backoff.Retry(op, bo); err != nil {
		r.cfg.Logger.Error("recording published events failed; they will be published again", "events", len(ids), "err", err)
	}
}

func (r *Relay) releaseEntries(entries []Entry, reason string) {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.Message.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	if err := release(ctx, r.cfg.DB, ids, reason); err != nil {
		// Their lease still ends on its own; a sweep takes them then.
		r.cfg.Logger.Warn("releasing events failed", "events", len(ids), "err", err)
	}
}

// releaseQueued gives back the entries still waiting for the fast path when Run ends, so
// another relay need not wait for their reservation to end.
func (r *Relay) releaseQueued() {
	var left []Entry
	for {
		select {
		case b := <-r.notify:
			left = append(left, b...)
		default:
			if len(left) > 0 {
				r.releaseEntries(left, "relay stopped before publishing")
			}
			return
		}
	}
}
