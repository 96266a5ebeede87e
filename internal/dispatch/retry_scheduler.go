package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// retryScheduler attempts the deliveries that wait in the store: retries, parked deliveries
// and replays inserted by the API. It polls every PollInterval, sooner when the writer reports
// an earlier due time it has just recorded, and at once while a backlog lasts: after a full
// batch it claims again straight away, and when it stopped for lack of room (in all, or an
// endpoint's share) it claims again as soon as a claimed delivery is handed back, at most
// every minClaimGap. Claims are leases, so several dispatchers share the work and a crashed
// one's claims come back when its leases run out.
type retryScheduler struct {
	cfg retrySchedulerConfig

	mu     sync.Mutex
	wakeAt time.Time // earliest due time reported since the last poll
	wake   chan struct{}

	// reloaded lists the surveys read afresh for the batch being started (used by the
	// scheduler's goroutine only): one reload covers every delivery the batch claimed.
	reloaded map[string]bool

	// freed is signalled whenever an outcome is handed to the writer: room for another
	// attempt, which the scheduler waits for after a claim that took all it could.
	freed chan struct{}

	// slowAfter is the claim duration above which a claim counts as slow (slowClaim).
	slowAfter time.Duration
	slow      slowClaims
}

// maxRooms bounds the endpoints whose room the scheduler spells out in its claim; others
// count as having all their slots free.
const maxRooms = 200

// repollDelay is how soon the scheduler looks again after a claim that found nothing while
// some endpoint had no room: that endpoint may have due deliveries waiting for its slots.
const repollDelay = 50 * time.Millisecond

// minClaimGap spaces claims made as room frees up, so that each takes the room freed
// meanwhile instead of a slot at a time: at most 100 claims a second, which still lets one
// endpoint's 32 slots (the default share) turn over 3,200 times a second per dispatcher.
const minClaimGap = 10 * time.Millisecond

// slowClaim is the claim duration counted in dispatch24_retry_claims_slow_total and logged.
// A claim costs milliseconds whatever the backlog (see store.Deliveries.ClaimDue); one over a second means the
// store is overloaded or the claim's plan has gone wrong.
const slowClaim = time.Second

// slowClaimLogEvery bounds the slow-claim warnings to one line per interval: the first slow
// claim is logged at once, later ones are summed into the next line.
const slowClaimLogEvery = time.Minute

// retrySchedulerConfig is what the retry scheduler depends on.
type retrySchedulerConfig struct {
	Claims claimStore
	// LoadEventsFunc reads the payloads and trace headers of events.
	LoadEventsFunc func(ctx context.Context, ids []string) (map[string]storedEvent, error)
	Endpoints      endpointSource
	Slots          *endpointSlots
	// Limiter caps the room of rate-limited endpoints at their tokens.
	Limiter *rateLimiter
	// InFlight counts claimed stored deliveries whose outcome is not yet queued.
	InFlight *atomic.Int64
	// Jobs takes the claimed deliveries.
	Jobs jobRunner
	// See Config.
	Concurrency, EndpointConcurrency, BatchSize int
	Lease, AttemptTimeout, ParkDelay            time.Duration
	PollInterval                                time.Duration
	// FIFOGapWait: see Config; negative waits for ever.
	FIFOGapWait time.Duration
	NowFunc     func() time.Time
	Logger      *slog.Logger
	// Metrics receives RetryClaimDuration and RetryClaimsSlow.
	Metrics    *telemetry.Metrics
	Propagator propagation.TextMapPropagator
}

// endpointSource returns a survey's endpoints (the endpoint cache).
type endpointSource interface {
	get(ctx context.Context, surveyID string, version int64) (*surveyEndpoints, error)
	reload(ctx context.Context, surveyID string) (*surveyEndpoints, error)
}

// jobRunner is where claimed deliveries go (the Dispatcher): attempted, parked, or ended.
type jobRunner interface {
	dispatch(j *job)
	park(j *job, at time.Time)
	// end records j as failed with code, without an attempt.
	end(j *job, code string, now time.Time)
}

func newRetryScheduler(cfg retrySchedulerConfig) *retryScheduler {
	return &retryScheduler{cfg: cfg, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), slowAfter: slowClaim,
		reloaded: map[string]bool{}}
}

// hint reports that a delivery is due at t.
func (s *retryScheduler) hint(t time.Time) {
	s.mu.Lock()
	if s.wakeAt.IsZero() || t.Before(s.wakeAt) {
		s.wakeAt = t
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// roomFreed reports that an attempt's worth of room came back.
func (s *retryScheduler) roomFreed() {
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// pollResult says what a poll leaves behind, and so when to poll next.
type pollResult int

const (
	// pollIdle: nothing more is known to be due; poll after PollInterval or a hint.
	pollIdle pollResult = iota
	// pollMore: a full batch was claimed with room to spare; more is likely due now.
	pollMore
	// pollNoRoom: more is likely due, but this process has no room for it until attempts
	// finish (its Concurrency, or an endpoint's share).
	pollNoRoom
	// pollNoRoomMaybe: nothing was claimed while an endpoint had no room; it may have due
	// deliveries.
	pollNoRoomMaybe
)

func (s *retryScheduler) run(ctx context.Context) {
	poll := s.cfg.PollInterval
	next := s.cfg.NowFunc() // poll at once: deliveries may have waited while no dispatcher ran
	var lastClaim time.Time
	var freed <-chan struct{} // s.freed while waiting for room, nil otherwise
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := s.cfg.NowFunc()
		s.mu.Lock()
		due := next
		if !s.wakeAt.IsZero() && s.wakeAt.Before(due) {
			due = s.wakeAt
		}
		s.mu.Unlock()
		if wait := due.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				timer.Stop()
				continue
			case <-freed:
				timer.Stop()
				freed = nil
				next = lastClaim.Add(minClaimGap)
				continue
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		now = s.cfg.NowFunc()
		s.mu.Lock()
		if !s.wakeAt.After(now) {
			s.wakeAt = time.Time{}
		}
		s.mu.Unlock()
		// Room freed from here on counts for the next claim.
		select {
		case <-s.freed:
		default:
		}
		lastClaim, freed = now, nil
		switch s.poll(ctx, now) {
		case pollMore:
			next = now
		case pollNoRoom:
			// Claim again once an attempt is handed back; PollInterval at the latest.
			next, freed = now.Add(poll), s.freed
		case pollNoRoomMaybe:
			next = now.Add(min(poll, repollDelay))
		default:
			next = now.Add(poll)
		}
	}
}

// poll claims due deliveries and dispatches them; it reports whether more may be due.
func (s *retryScheduler) poll(ctx context.Context, now time.Time) pollResult {
	c := &s.cfg
	free := c.Concurrency - int(c.InFlight.Load())
	if free <= 0 {
		return pollNoRoom
	}
	limit := min(free, c.BatchSize)
	leaseUntil := now.Add(c.Lease)
	rooms := c.Limiter.rooms(c.Slots.occupied(maxRooms), c.EndpointConcurrency)
	start := time.Now()
	claim := store.DeliveryClaim{Now: now, LeaseUntil: leaseUntil, PerEndpoint: c.EndpointConcurrency, Limit: limit,
		Rooms: rooms}
	if c.FIFOGapWait >= 0 {
		claim.LaneGapUntil = now.Add(-c.FIFOGapWait)
	}
	claimed, err := c.Claims.ClaimDue(ctx, claim)
	s.observeClaim(ctx, time.Since(start), len(claimed))
	if err != nil {
		if ctx.Err() == nil {
			c.Logger.WarnContext(ctx, "retry scheduler", "err", err)
		}
		return pollIdle
	}
	if len(claimed) == 0 {
		for _, r := range rooms {
			if r.Free == 0 {
				return pollNoRoomMaybe
			}
		}
		return pollIdle
	}
	c.InFlight.Add(int64(len(claimed)))

	ids := make([]string, 0, len(claimed))
	seen := make(map[string]bool, len(claimed))
	for _, d := range claimed {
		if !seen[d.EventID] {
			seen[d.EventID] = true
			ids = append(ids, d.EventID)
		}
	}
	evs, evErr := c.LoadEventsFunc(ctx, ids)
	margin := min(5*time.Second, (c.Lease-c.AttemptTimeout)/2)
	startBy := leaseUntil.Add(-c.AttemptTimeout - margin)
	room := make(map[string]int, len(rooms))
	for _, r := range rooms {
		room[r.WebhookID] = r.Free
	}
	perEndpoint := make(map[string]int, 4)
	capped := false
	clear(s.reloaded)
	for i := range claimed {
		id := claimed[i].WebhookID
		perEndpoint[id]++
		if free, ok := room[id]; (ok && perEndpoint[id] >= free) || perEndpoint[id] >= c.EndpointConcurrency {
			capped = true
		}
		s.start(ctx, &claimed[i], evs, evErr, now, startBy)
	}
	switch {
	case len(claimed) >= limit && limit < free:
		return pollMore
	case len(claimed) >= limit, capped:
		return pollNoRoom
	default:
		return pollIdle
	}
}

// slowClaims aggregates slow claims between two warnings.
type slowClaims struct {
	loggedAt time.Time     // last warning
	count    int           // slow claims since
	max      time.Duration // the slowest of them
}

// observeClaim records a claim's duration, and counts and logs it when it is slow.
func (s *retryScheduler) observeClaim(ctx context.Context, took time.Duration, rows int) {
	m := s.cfg.Metrics
	m.RetryClaimDuration.Observe(took.Seconds())
	if took < s.slowAfter {
		return
	}
	m.RetryClaimsSlow.Inc()
	sc := &s.slow
	sc.count++
	sc.max = max(sc.max, took)
	now := time.Now()
	if !sc.loggedAt.IsZero() && now.Sub(sc.loggedAt) < slowClaimLogEvery {
		return
	}
	// slow_claims counts this claim and those since the last line (at most one a minute).
	s.cfg.Logger.WarnContext(ctx, "retry claims are slow", "slow_claims", sc.count, "slowest", sc.max, "last", took,
		"last_rows", rows, "threshold", s.slowAfter)
	*sc = slowClaims{loggedAt: now}
}

// start turns one claimed delivery into a job, or records why it cannot be attempted.
func (s *retryScheduler) start(ctx context.Context, c *store.Delivery, evs map[string]storedEvent, evErr error, now, startBy time.Time) {
	jobs := s.cfg.Jobs
	j := &job{
		ev:             &event{envelope: envelope{ID: c.EventID, Type: c.Type, SurveyID: c.SurveyID}, trace: context.Background()},
		ep:             &endpoint{ID: c.WebhookID, SurveyID: c.SurveyID, URL: c.URL},
		id:             c.ID,
		attempts:       c.Attempts,
		lastStatusCode: c.LastStatusCode,
		lastError:      c.LastError,
		createdAt:      c.CreatedAt,
		startBy:        startBy,
		lane:           c.Lane,
	}
	if evErr != nil {
		jobs.park(j, now.Add(s.cfg.ParkDelay))
		return
	}
	se, err := s.cfg.Endpoints.get(ctx, c.SurveyID, 0)
	if err == nil {
		if ep := se.byID(c.WebhookID); (ep == nil || ep.Disabled) && !s.reloaded[c.SurveyID] {
			// Before ending the delivery for its endpoint, read the endpoint afresh: a
			// replay may name one created or re-enabled after the cached copy was read.
			// A read after the claim is fresh enough for the whole batch.
			s.reloaded[c.SurveyID] = true
			se, err = s.cfg.Endpoints.reload(ctx, c.SurveyID)
		}
	}
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "retry scheduler", "err", err)
		jobs.park(j, now.Add(s.cfg.ParkDelay))
		return
	}
	ep := se.byID(c.WebhookID)
	if ep == nil {
		jobs.end(j, CodeEndpointDeleted, now)
		return
	}
	j.ep = ep
	if ep.Disabled {
		jobs.end(j, CodeEndpointDisabled, now)
		return
	}
	stored, ok := evs[c.EventID]
	if !ok {
		jobs.end(j, CodeEventMissing, now)
		return
	}
	env, err := decodeEnvelope(stored.payload, "", c.Type)
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "stored event is not an envelope", "event_id", c.EventID, "err", err)
		jobs.end(j, CodeEventMissing, now)
		return
	}
	env.ID, env.SurveyID = c.EventID, c.SurveyID
	j.ev.envelope = env
	j.ev.body = stored.payload
	if len(stored.trace) > 0 {
		j.ev.trace = s.cfg.Propagator.Extract(context.Background(), propagation.MapCarrier(stored.trace))
	}
	j.jwtKey = se.jwtKey
	jobs.dispatch(j)
}
