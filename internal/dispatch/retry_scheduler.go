package dispatch

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/dispatch24/dispatch24/internal/store"
)

// retryScheduler attempts the deliveries that wait in the store: retries, parked deliveries
// and replays inserted by the API. It polls every PollInterval, and sooner when the writer
// reports an earlier due time it has just recorded. Claims are leases, so several dispatchers
// share the work and a crashed one's claims come back when its leases run out.
type retryScheduler struct {
	d *Dispatcher

	mu     sync.Mutex
	wakeAt time.Time // earliest due time reported since the last poll
	wake   chan struct{}

	// reloaded lists the surveys read afresh for the batch being started (used by the
	// scheduler's goroutine only): one reload covers every delivery the batch claimed.
	reloaded map[string]bool
}

// maxRooms bounds the endpoints whose room the scheduler spells out in its claim; others
// count as having all their slots free.
const maxRooms = 200

// repollDelay is how soon the scheduler looks again after a claim that may have left due
// deliveries behind (it hit its limit, or an endpoint's share).
const repollDelay = 50 * time.Millisecond

func newRetryScheduler(d *Dispatcher) *retryScheduler {
	return &retryScheduler{d: d, wake: make(chan struct{}, 1), reloaded: map[string]bool{}}
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

func (s *retryScheduler) run(ctx context.Context) {
	poll := s.d.cfg.PollInterval
	next := s.d.cfg.NowFunc() // poll at once: deliveries may have waited while no dispatcher ran
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := s.d.cfg.NowFunc()
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
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		now = s.d.cfg.NowFunc()
		s.mu.Lock()
		if !s.wakeAt.After(now) {
			s.wakeAt = time.Time{}
		}
		s.mu.Unlock()
		if s.poll(ctx, now) {
			// More may be due already: look again shortly, once the claimed deliveries have
			// had a moment to free their endpoints' slots.
			next = now.Add(min(poll, repollDelay))
		} else {
			next = now.Add(poll)
		}
	}
}

// poll claims due deliveries and dispatches them; it reports whether it claimed as many as
// it could take, in all or for an endpoint, so that more may be due.
func (s *retryScheduler) poll(ctx context.Context, now time.Time) bool {
	d := s.d
	free := d.cfg.Concurrency - int(d.storedInFlight.Load())
	if free <= 0 {
		return false
	}
	limit := min(free, d.cfg.BatchSize)
	leaseUntil := now.Add(d.cfg.Lease)
	rooms := d.slots.occupied(maxRooms)
	claimed, err := claimDue(ctx, d.cfg.DB, store.Micros(now), store.Micros(leaseUntil), d.cfg.EndpointConcurrency, limit, rooms)
	if err != nil {
		if ctx.Err() == nil {
			d.logger.WarnContext(ctx, "retry scheduler", "err", err)
		}
		return false
	}
	if len(claimed) == 0 {
		return false
	}
	d.storedInFlight.Add(int64(len(claimed)))

	ids := make([]string, 0, len(claimed))
	seen := make(map[string]bool, len(claimed))
	for _, c := range claimed {
		if !seen[c.EventID] {
			seen[c.EventID] = true
			ids = append(ids, c.EventID)
		}
	}
	evs, evErr := loadEvents(ctx, d.cfg.DB, ids)
	margin := min(5*time.Second, (d.cfg.Lease-d.cfg.AttemptTimeout)/2)
	startBy := leaseUntil.Add(-d.cfg.AttemptTimeout - margin)
	room := make(map[string]int, len(rooms))
	for _, r := range rooms {
		room[r.id] = r.free
	}
	perEndpoint := make(map[string]int, 4)
	capped := false
	clear(s.reloaded)
	for i := range claimed {
		id := claimed[i].WebhookID
		perEndpoint[id]++
		if free, ok := room[id]; (ok && perEndpoint[id] >= free) || perEndpoint[id] >= d.cfg.EndpointConcurrency {
			capped = true
		}
		s.start(ctx, &claimed[i], evs, evErr, now, startBy)
	}
	return capped || len(claimed) >= limit
}

// start turns one claimed delivery into a job, or records why it cannot be attempted.
func (s *retryScheduler) start(ctx context.Context, c *claimedDelivery, evs map[string]storedEvent, evErr error, now, startBy time.Time) {
	d := s.d
	j := &job{
		ev:             &event{envelope: envelope{ID: c.EventID, Type: c.Type, SurveyID: c.SurveyID}, trace: context.Background()},
		ep:             &endpoint{ID: c.WebhookID, SurveyID: c.SurveyID, URL: c.URL},
		id:             c.ID,
		attempts:       c.Attempts,
		lastStatusCode: c.LastStatusCode,
		lastError:      c.LastError,
		createdAt:      c.CreatedAt,
		startBy:        startBy,
	}
	if evErr != nil {
		d.park(j, now.Add(d.cfg.ParkDelay))
		return
	}
	se, err := d.cache.get(ctx, c.SurveyID, 0)
	if err == nil {
		if ep := se.byID(c.WebhookID); (ep == nil || ep.Disabled) && !s.reloaded[c.SurveyID] {
			// Before ending the delivery for its endpoint, read the endpoint afresh: a
			// replay may name one created or re-enabled after the cached copy was read.
			// A read after the claim is fresh enough for the whole batch.
			s.reloaded[c.SurveyID] = true
			se, err = d.cache.reload(ctx, c.SurveyID)
		}
	}
	if err != nil {
		d.logger.WarnContext(ctx, "retry scheduler", "err", err)
		d.park(j, now.Add(d.cfg.ParkDelay))
		return
	}
	ep := se.byID(c.WebhookID)
	if ep == nil {
		d.writer.put(d.finish(j, StatusFailed, CodeEndpointDeleted, now))
		return
	}
	j.ep = ep
	if ep.Disabled {
		d.writer.put(d.finish(j, StatusFailed, CodeEndpointDisabled, now))
		return
	}
	stored, ok := evs[c.EventID]
	if !ok {
		d.writer.put(d.finish(j, StatusFailed, CodeEventMissing, now))
		return
	}
	env, err := decodeEnvelope(stored.payload, "", c.Type)
	if err != nil {
		d.logger.ErrorContext(ctx, "stored event is not an envelope", "event_id", c.EventID, "err", err)
		d.writer.put(d.finish(j, StatusFailed, CodeEventMissing, now))
		return
	}
	env.ID, env.SurveyID = c.EventID, c.SurveyID
	j.ev.envelope = env
	j.ev.body = stored.payload
	if len(stored.trace) > 0 {
		j.ev.trace = d.cfg.Propagator.Extract(context.Background(), propagation.MapCarrier(stored.trace))
	}
	j.jwtKey = se.jwtKey
	d.dispatch(j)
}
