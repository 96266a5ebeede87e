package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/delivery"
	endpoints "github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// Config configures a Dispatcher. Zero fields take the documented defaults.
type Config struct {
	// DB is the store deliveries and attempts are recorded in. Required.
	DB *store.DB
	// Secrets opens the webhook secrets and survey jwtSecrets sealed in the store
	// (SECRETS_KEY). Required.
	Secrets *secret.Keyring
	// Consumer is the durable JetStream consumer the dispatchers share ("dispatcher").
	// Consumer or ConsumerFunc is required.
	Consumer jetstream.Consumer
	// ConsumerFunc returns the consumer, waiting until there is one (NATS may be down when the
	// process starts); it fails only when it never will be (ctx ended, connection closed).
	// Run calls it again when its message iterator ends unexpectedly (the consumer was
	// deleted). Default: returns Consumer.
	ConsumerFunc func(ctx context.Context) (jetstream.Consumer, error)
	// ConsumerResetFunc returns a channel closed when the consumer has been created again
	// (a NATS server came back with an empty store): Run then opens a new message iterator,
	// since the old one's pull requests went to a consumer that no longer existed. Default:
	// none.
	ConsumerResetFunc func() <-chan struct{}
	// Client sends the attempts. Required; the caller closes it.
	Client *webhook.Client
	// AttemptTimeout is the Client's timeout (WEBHOOK_TIMEOUT); leases and the in-progress
	// acks are sized from it. Default 15s.
	AttemptTimeout time.Duration
	// Issuer is the iss of the Authorization JWTs (TOKEN_ISSUER). Default "intake24".
	Issuer string
	// RetrySchedule is the delay before each attempt (WEBHOOK_RETRY_SCHEDULE); its length is
	// the attempt limit. Default config.DefaultRetrySchedule.
	RetrySchedule []time.Duration
	// Jitter spreads every scheduled delay by up to ±Jitter of itself. Default 0.1; negative
	// turns jitter off.
	Jitter float64
	// Concurrency bounds attempts in flight in this process (DISPATCH_CONCURRENCY). Default 64
	// per CPU.
	Concurrency int
	// EndpointConcurrency bounds attempts in flight to one endpoint in this process
	// (DISPATCH_ENDPOINT_CONCURRENCY). Default 32.
	EndpointConcurrency int
	// DisableAfterFailures and DisableAfter: an endpoint is disabled after that many
	// consecutive failed attempts spanning at least that long. Defaults 100 and 24h; a
	// negative DisableAfterFailures never disables, a negative DisableAfter needs no span.
	DisableAfterFailures int
	DisableAfter         time.Duration
	// CacheTTL is how long a survey's endpoints are used before they are read again for the
	// failure counters other dispatchers move. Webhook changes do not wait for it: events carry
	// the webhooks version they were accepted at (see the package doc). Default 1s.
	CacheTTL time.Duration
	// PollInterval is how often the retry scheduler looks for due deliveries it was not told
	// about (replays, other processes' retries). Default 1s.
	PollInterval time.Duration
	// ParkDelay is how far a delivery parked for a congested endpoint is pushed. Default 1s.
	ParkDelay time.Duration
	// SlowAfter is how long a delivery waits for a slot of its endpoint before it is parked.
	// Default 250ms.
	SlowAfter time.Duration
	// FIFOGapWait bounds how long the head of a FIFO lane, once stored, waits for the
	// deliveries of earlier events of its survey to be recorded before it goes without them
	// (see "FIFO endpoints" in the package doc): the order holds for events whose deliveries
	// are recorded within FIFOGapWait of each other, and an event that never gets one (its
	// message lost) holds its lane up no longer than this. It must exceed the consumer's
	// AckWait, after which a dead dispatcher's messages are delivered again. Default 5m;
	// negative waits for ever.
	FIFOGapWait time.Duration
	// Lease is how long a claimed stored delivery belongs to this process. It must cover the
	// wait for a worker and one attempt. Default AttemptTimeout + 15s.
	Lease time.Duration
	// BatchSize is the most results written in one transaction. Default 256.
	BatchSize int
	// FlushInterval is the longest a result waits for others to share its transaction.
	// Default 5ms.
	FlushInterval time.Duration
	// DrainTimeout bounds how long Run waits at shutdown for attempts in flight before it
	// cancels them (they are parked and retried later). Default AttemptTimeout.
	DrainTimeout time.Duration
	// Logger receives the engine's logs. Default: discarded.
	Logger *slog.Logger
	// Metrics receives Attempts, AttemptDuration, Deliveries, EndpointsDisabled,
	// RetryClaimDuration and RetryClaimsSlow. Default: a registry of its own.
	Metrics *telemetry.Metrics
	// TracerProvider and Propagator default to the OpenTelemetry globals.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// NowFunc returns the current time. Default time.Now.
	NowFunc func() time.Time
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.Issuer == "" {
		c.Issuer = webhook.DefaultIssuer
	}
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule, _ = config.ParseSchedule(config.DefaultRetrySchedule)
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64 * runtime.NumCPU()
	}
	if c.EndpointConcurrency == 0 {
		c.EndpointConcurrency = 32
	}
	if c.DisableAfterFailures == 0 {
		c.DisableAfterFailures = 100
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = 24 * time.Hour
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.ParkDelay == 0 {
		c.ParkDelay = time.Second
	}
	if c.SlowAfter == 0 {
		c.SlowAfter = 250 * time.Millisecond
	}
	if c.FIFOGapWait == 0 {
		c.FIFOGapWait = 5 * time.Minute
	}
	if c.Lease == 0 {
		c.Lease = c.AttemptTimeout + 15*time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = c.AttemptTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Metrics == nil {
		c.Metrics = telemetry.NewMetrics()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = otel.GetTextMapPropagator()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.ConsumerFunc == nil && c.Consumer != nil {
		consumer := c.Consumer
		c.ConsumerFunc = func(context.Context) (jetstream.Consumer, error) { return consumer, nil }
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Secrets == nil:
		return errors.New("Secrets is required")
	case c.DB == nil:
		return errors.New("DB is required")
	case c.ConsumerFunc == nil:
		return errors.New("Consumer or ConsumerFunc is required")
	case c.Client == nil:
		return errors.New("Client is required")
	case c.AttemptTimeout < 0:
		return errors.New("AttemptTimeout must not be negative")
	case c.Concurrency < 1 || c.EndpointConcurrency < 1:
		return errors.New("concurrency must be at least 1")
	case c.BatchSize < 1:
		return errors.New("BatchSize must be at least 1")
	case c.Lease <= c.AttemptTimeout:
		return errors.New("Lease must be longer than AttemptTimeout")
	case c.CacheTTL < 0 || c.PollInterval < 0 || c.ParkDelay < 0 || c.SlowAfter < 0 || c.FlushInterval < 0 || c.DrainTimeout < 0:
		return errors.New("durations must not be negative")
	}
	for _, d := range c.RetrySchedule {
		if d < 0 {
			return errors.New("RetrySchedule delays must not be negative")
		}
	}
	return nil
}

// Dispatcher delivers events from the shared consumer to webhook endpoints. Create it with
// New and call Run once.
type Dispatcher struct {
	cfg     Config
	policy  retryPolicy
	cache   *endpointCache
	slots   *endpointSlots
	limiter *rateLimiter
	writer  *resultWriter
	sched   *retryScheduler
	tracer  trace.Tracer
	logger  *slog.Logger
	ackWait atomic.Int64 // the consumer's AckWait (ns), known once a consumer is

	// consumeLog aggregates the failures of opening and reading the consumer.
	consumeLog *telemetry.FailureLog
	// tokenLog aggregates the failures of taking rate-limit tokens from the store.
	tokenLog *telemetry.FailureLog

	jobs     chan *job
	waiting  chan struct{} // bounds deliveries waiting for an endpoint slot
	waiters  sync.WaitGroup
	stopping chan struct{}
	running  atomic.Bool

	// deliveries is the deliveries' owner: recorded deliveries of redelivered messages.
	deliveries eventDeliveries
	// storedInFlight counts claimed stored deliveries not yet handed to the writer.
	storedInFlight atomic.Int64

	attemptCounters  map[string]prometheus.Counter
	deliveryCounters map[string]prometheus.Counter
	failures         *failureLog
	// acks settles messages whose deliveries are all recorded.
	acks acker
}

// New returns a Dispatcher for cfg, with defaults applied.
func New(cfg Config) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	d := &Dispatcher{
		cfg:      cfg,
		policy:   retryPolicy{schedule: cfg.RetrySchedule, jitter: max(cfg.Jitter, 0)},
		cache:    newEndpointCache(cfg.DB, cfg.Secrets, cfg.CacheTTL, cfg.NowFunc),
		slots:    newEndpointSlots(cfg.EndpointConcurrency),
		tracer:   cfg.TracerProvider.Tracer("github.com/dispatch24/dispatch24/internal/dispatch"),
		logger:   cfg.Logger,
		jobs:     make(chan *job),
		waiting:  make(chan struct{}, cfg.Concurrency),
		stopping: make(chan struct{}),

		attemptCounters:  make(map[string]prometheus.Counter),
		deliveryCounters: make(map[string]prometheus.Counter),
		failures:         newFailureLog(cfg.Logger, cfg.NowFunc),
		acks:             jetStreamAcker{},
	}
	for _, code := range []string{"delivered", string(webhook.CodeHTTPStatus), string(webhook.CodeRedirect),
		string(webhook.CodeTimeout), string(webhook.CodeConnection), string(webhook.CodeDNS), string(webhook.CodeTLS),
		string(webhook.CodeBlockedAddress), string(webhook.CodeInvalidRequest)} {
		d.attemptCounters[code] = cfg.Metrics.Attempts.WithLabelValues(code)
	}
	d.consumeLog = &telemetry.FailureLog{Logger: cfg.Logger, Msg: "consuming events failed; retrying",
		RecoveredMsg: "consuming events again", Interval: 30 * time.Second}
	d.tokenLog = &telemetry.FailureLog{Logger: cfg.Logger, Msg: "taking rate-limit tokens failed; deliveries to limited endpoints wait",
		RecoveredMsg: "taking rate-limit tokens again", Interval: 30 * time.Second}
	d.limiter = newRateLimiter(endpoints.NewStore(cfg.DB, cfg.Secrets), cfg.NowFunc)
	deliveries := delivery.NewStore(cfg.DB)
	d.deliveries = deliveries
	d.writer = newResultWriter(resultWriterConfig{
		Store: deliveries, NowFunc: cfg.NowFunc, Logger: cfg.Logger, Metrics: cfg.Metrics,
		BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval,
		DisableAfterFailures: cfg.DisableAfterFailures, DisableAfter: cfg.DisableAfter,
		AckFunc: d.ack,
		QueuedFunc: func(stored bool) {
			if stored {
				d.storedInFlight.Add(-1)
			}
			d.sched.roomFreed()
		},
		DueFunc:      func(t time.Time) { d.sched.hint(t) },
		DisabledFunc: func(e store.DisabledEndpoint) { d.cache.invalidate(e.SurveyID) },
	})
	d.sched = newRetryScheduler(retrySchedulerConfig{
		Claims: deliveries,
		LoadEventsFunc: func(ctx context.Context, ids []string) (map[string]storedEvent, error) {
			return loadEvents(ctx, outbox.NewArchive(cfg.DB), ids)
		},
		Endpoints: d.cache, Slots: d.slots, Limiter: d.limiter, InFlight: &d.storedInFlight, Jobs: d,
		Concurrency: cfg.Concurrency, EndpointConcurrency: cfg.EndpointConcurrency, BatchSize: cfg.BatchSize,
		Lease: cfg.Lease, AttemptTimeout: cfg.AttemptTimeout, ParkDelay: cfg.ParkDelay, PollInterval: cfg.PollInterval,
		FIFOGapWait: cfg.FIFOGapWait,
		NowFunc:     cfg.NowFunc, Logger: cfg.Logger, Metrics: cfg.Metrics, Propagator: cfg.Propagator,
	})
	return d, nil
}

// Run consumes and delivers until ctx ends, then shuts down: it stops fetching (handing
// buffered messages back), lets attempts in flight finish for up to DrainTimeout, writes every
// result, acks, and returns nil. It returns an error only when consuming fails for good.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("dispatcher: Run called twice")
	}
	d.logger.InfoContext(ctx, "dispatcher started", "concurrency", d.cfg.Concurrency,
		"endpoint_concurrency", d.cfg.EndpointConcurrency, "attempts", d.policy.maxAttempts())

	// Attempts and writes outlive ctx: shutdown finishes them (bounded) instead of dropping them.
	attemptCtx, cancelAttempts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAttempts()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		d.writer.run(context.WithoutCancel(ctx))
	}()
	var workers sync.WaitGroup
	for range d.cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range d.jobs {
				d.work(attemptCtx, j)
			}
		}()
	}
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		d.sched.run(runCtx)
	}()

	err := d.consume(runCtx)

	// Shutdown: no new work, waiting deliveries are parked, attempts in flight get DrainTimeout.
	cancelRun()
	close(d.stopping)
	<-schedDone
	d.waiters.Wait()
	close(d.jobs)
	drained := make(chan struct{})
	go func() {
		workers.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(d.cfg.DrainTimeout):
		d.logger.WarnContext(ctx, "attempts still in flight at shutdown; cancelling them", "drain_timeout", d.cfg.DrainTimeout)
		cancelAttempts()
		<-drained
	}
	d.writer.close()
	<-writerDone
	d.logger.InfoContext(ctx, "dispatcher stopped")
	return err
}

// consume feeds messages to dispatch until ctx ends. It waits for the consumer (NATS may be
// down), and when its message iterator ends unexpectedly (the consumer was deleted) it asks
// for the consumer again and goes on; it fails only when the consumer will never come.
func (d *Dispatcher) consume(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 250 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.MaxElapsedTime = 0
	for {
		c, err := d.cfg.ConsumerFunc(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("consuming: %w", err)
		}
		if info := c.CachedInfo(); info != nil {
			d.ackWait.Store(int64(info.Config.AckWait))
		}
		start := time.Now()
		err = d.consumeFrom(ctx, c)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errConsumerReset) {
			d.logger.InfoContext(ctx, "consumer created again; consuming from it")
			continue
		}
		d.consumeLog.Fail(ctx, 1, err)
		if time.Since(start) > time.Minute {
			bo.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(bo.NextBackOff()):
		}
	}
}

var errConsumerReset = errors.New("consumer created again")

// consumeFrom feeds messages of c to dispatch until ctx ends (nil) or the iterator ends
// (why).
func (d *Dispatcher) consumeFrom(ctx context.Context, c jetstream.Consumer) error {
	// A 5s heartbeat (the default is half the 30s expiry): a pull request lost while NATS
	// restarts is noticed, and sent again, within 10s instead of 30s.
	it, err := c.Messages(jetstream.PullMaxMessages(min(max(2*d.cfg.Concurrency, 64), 4096)),
		jetstream.PullHeartbeat(5*time.Second))
	if err != nil {
		return fmt.Errorf("opening the message iterator: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	var reset atomic.Bool
	if d.cfg.ConsumerResetFunc != nil {
		resetC, iterDone := d.cfg.ConsumerResetFunc(), make(chan struct{})
		defer close(iterDone)
		go func() {
			select {
			case <-resetC:
				reset.Store(true)
				it.Drain() // what is buffered is still handled
			case <-iterDone:
			}
		}()
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				// Missing heartbeats, a deleted consumer: the iterator pulls again by itself
				// or closes, which the next call reports.
				d.consumeLog.Fail(ctx, 1, err)
				continue
			}
			switch {
			case ctx.Err() != nil:
				return nil
			case reset.Load():
				return errConsumerReset
			}
			return fmt.Errorf("reading messages: %w", err)
		}
		d.consumeLog.Recover(ctx)
		if ctx.Err() != nil {
			// Draining: hand buffered messages straight back to the other dispatchers.
			_ = msg.Nak()
			continue
		}
		d.handleMessage(ctx, msg)
	}
}

// handleMessage fans one event out to its endpoints.
func (d *Dispatcher) handleMessage(ctx context.Context, msg jetstream.Msg) {
	now := d.cfg.NowFunc()
	hdr := msg.Headers()
	parent := context.Background()
	if len(hdr) > 0 {
		parent = d.cfg.Propagator.Extract(parent, headerCarrier(hdr))
	}
	spanCtx, span := d.tracer.Start(parent, "dispatch process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrMessagingSystem, attrSubject.String(msg.Subject())))

	ev, err := decodeEnvelope(msg.Data(), msg.Subject(), hdr.Get(eventTypeHeader))
	if err != nil {
		d.settle(spanCtx, msg, span, err)
		return
	}
	span.SetAttributes(attrEventID.String(ev.ID), attrEventType.String(ev.Type), attrSurveyID.String(ev.SurveyID))
	se, err := d.cache.get(ctx, ev.SurveyID, webhooksVersion(hdr))
	if err != nil {
		d.settle(spanCtx, msg, span, transient(err))
		return
	}
	// An operational event is never sent to the endpoint it is about (pkg/events): a
	// disabled endpoint would only record it skipped, and a failing one would be told of
	// its own failures by the very requests that fail. A FIFO endpoint that subscribes to it
	// records it skipped instead: its lane waits for every subscribed event's delivery row.
	about := events.AboutWebhook(ev.Type, msg.Data())
	var targets []*endpoint
	for _, ep := range se.endpoints {
		if ep.subscribed(ev.Type) && (about == "" || ep.ID != about || ep.FIFO) {
			targets = append(targets, ep)
		}
	}
	if len(targets) > 0 && redelivered(msg) {
		// A dispatcher may have recorded some deliveries and died before acking: those are
		// done or owned by the retry scheduler now, and must not be sent again from here.
		targets, err = d.unrecorded(ctx, ev.ID, targets)
		if err != nil {
			d.settle(spanCtx, msg, span, transient(err))
			return
		}
	}
	if len(targets) == 0 {
		d.settle(spanCtx, msg, span, nil)
		return
	}

	in := &inbound{msg: msg, received: now, span: span}
	in.progressAt.Store(now.UnixNano())
	in.remaining.Store(int32(len(targets)))
	e := &event{envelope: ev, body: msg.Data(), trace: spanCtx}
	for _, ep := range targets {
		j := &job{ev: e, ep: ep, jwtKey: se.jwtKey, id: delivery.DeliveryID(ev.ID, ep.ID), createdAt: now, msg: in,
			lane: ep.FIFO}
		switch {
		case about != "" && ep.ID == about:
			d.writer.put(d.finish(j, StatusSkipped, CodeAboutEndpoint, now))
		case ep.Disabled:
			d.writer.put(d.finish(j, StatusSkipped, CodeEndpointDisabled, now))
		case ep.FIFO:
			// Never attempted from the message: another dispatcher may hold an earlier event
			// of the lane whose delivery is not recorded yet. The lane's claim sends it.
			due := now
			if d.policy.schedule[0] > 0 {
				due = now.Add(d.policy.delay(1))
			}
			d.park(j, due)
		case d.policy.schedule[0] > 0:
			d.park(j, now.Add(d.policy.delay(1)))
		default:
			d.dispatch(j)
		}
	}
}

// webhooksVersion is the webhooks version the event was accepted at, from its message's
// header: 0 when there is none (an event from before versions existed). A header that does not
// parse asks for a load that reads every change made so far.
func webhooksVersion(h nats.Header) int64 {
	s := h.Get(events.HeaderWebhooksVersion)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64
	}
	return v
}

// dispatch starts j as soon as its endpoint has a free slot. When the endpoint is congested
// (or the engine is stopping) the job is parked; otherwise it waits for a slot off the
// caller's goroutine.
func (d *Dispatcher) dispatch(j *job) {
	if at := d.limiter.limitedUntil(j.ep); !at.IsZero() {
		// The endpoint is at its rate limit: wait in the store, not in a slot.
		d.park(j, at)
		return
	}
	slot := d.slots.get(j.ep.ID)
	if slot.tryAcquire() {
		j.slot = slot
		d.jobs <- j
		return
	}
	if slot.congested.Load() {
		d.park(j, d.cfg.NowFunc().Add(d.cfg.ParkDelay))
		return
	}
	select {
	case d.waiting <- struct{}{}:
	case <-d.stopping:
		d.park(j, d.cfg.NowFunc())
		return
	}
	d.waiters.Add(1)
	go d.waitForSlot(j, slot)
}

func (d *Dispatcher) waitForSlot(j *job, slot *endpointSlot) {
	defer d.waiters.Done()
	defer func() { <-d.waiting }()
	t := time.NewTimer(d.cfg.SlowAfter)
	defer t.Stop()
	select {
	case slot.sem <- struct{}{}:
		j.slot = slot
		d.jobs <- j
	case <-t.C:
		slot.congested.Store(true)
		d.park(j, d.cfg.NowFunc().Add(d.cfg.ParkDelay))
	case <-d.stopping:
		d.park(j, d.cfg.NowFunc())
	}
}

// work runs one job on a worker.
func (d *Dispatcher) work(ctx context.Context, j *job) {
	now := d.cfg.NowFunc()
	if !j.startBy.IsZero() && now.After(j.startBy) {
		// The lease would run out during the attempt: hand the delivery back.
		j.slot.release()
		d.park(j, now)
		return
	}
	// The token is taken as the attempt starts, so that the limit holds at the receiver: a
	// token taken earlier could be spent late, next to tokens taken after it.
	ok, retryAt, err := d.limiter.take(ctx, j.ep)
	if err != nil {
		d.tokenLog.Fail(ctx, 1, err)
		retryAt = now.Add(d.cfg.ParkDelay)
	} else if j.ep.RateLimit > 0 {
		d.tokenLog.Recover(ctx)
	}
	if !ok {
		// Above the limit the delivery waits, parked without an attempt: no failure is
		// counted and no worker is held.
		j.slot.release()
		d.park(j, retryAt)
		return
	}
	if j.msg != nil {
		j.msg.touch(now, time.Duration(d.ackWait.Load()))
	}
	o := d.attempt(ctx, j)
	j.slot.release()
	d.writer.put(o)
}

// park records j as pending until at, without an attempt.
func (d *Dispatcher) park(j *job, at time.Time) {
	o := d.baseOutcome(j, d.cfg.NowFunc())
	o.d.Status = StatusPending
	o.d.NextAttemptAt = at
	d.writer.put(o)
}

// end records j as failed with code, without an attempt.
func (d *Dispatcher) end(j *job, code string, now time.Time) {
	d.writer.put(d.finish(j, StatusFailed, code, now))
}

// finish records j as ended with status and code, without an attempt.
func (d *Dispatcher) finish(j *job, status, code string, now time.Time) outcome {
	o := d.baseOutcome(j, now)
	o.d.Status = status
	o.d.LastError = code
	return o
}

// baseOutcome is j's delivery as it stands, before any attempt.
func (d *Dispatcher) baseOutcome(j *job, now time.Time) outcome {
	created := j.createdAt
	if created.IsZero() {
		created = now
	}
	return outcome{
		d: store.Delivery{
			ID: j.id, EventID: j.ev.ID, WebhookID: j.ep.ID, SurveyID: j.ev.SurveyID, Type: j.ev.Type, URL: j.ep.URL,
			Attempts: j.attempts, LastStatusCode: j.lastStatusCode, LastError: j.lastError,
			CreatedAt: created, UpdatedAt: now, Lane: j.lane,
		},
		msg:          j.msg,
		stored:       j.stored(),
		failing:      j.ep.Failing,
		failingSince: j.ep.FailingSince,
		span:         trace.SpanContextFromContext(j.ev.trace),
	}
}

// settle acks, terminates or naks a message that needs no deliveries recorded, per err:
// nil acks, a transient error naks with its delay, anything else (a malformed message)
// terminates it.
func (d *Dispatcher) settle(ctx context.Context, msg jetstream.Msg, span trace.Span, err error) {
	defer span.End()
	var t *transientError
	switch {
	case err == nil:
		d.ack(msg)
	case errors.As(err, &t):
		span.RecordError(err)
		d.logger.WarnContext(ctx, "event not dispatched; it will be redelivered", "err", err, "retry_in", t.delay)
		_ = msg.NakWithDelay(t.delay)
	default:
		span.RecordError(err)
		d.logger.ErrorContext(ctx, "dropping malformed event message", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("malformed event")
	}
}

// ack acks a message whose deliveries are all recorded.
func (d *Dispatcher) ack(msg jetstream.Msg) { d.acks.ack(msg) }

// transientError marks a failure that a later redelivery may not meet (the store was away).
type transientError struct {
	err   error
	delay time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err, delay: 2 * time.Second} }

// redelivered reports whether the server has delivered msg before.
func redelivered(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && md.NumDelivered > 1
}

// unrecorded drops the endpoints that already have a delivery of the event.
func (d *Dispatcher) unrecorded(ctx context.Context, eventID string, eps []*endpoint) ([]*endpoint, error) {
	ids, err := d.deliveries.EventDeliveries(ctx, eventID)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	out := eps[:0:0]
	for _, ep := range eps {
		// Deliveries recorded before ids carried their time have the legacy form.
		if !have[delivery.DeliveryID(eventID, ep.ID)] && !have[delivery.LegacyDeliveryID(eventID, ep.ID)] {
			out = append(out, ep)
		}
	}
	return out, nil
}
