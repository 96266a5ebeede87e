package dispatch

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// tokenTaker takes tokens of an endpoint's shared rate-limit bucket (internal/endpoint, the
// owner of the webhooks tables).
type tokenTaker interface {
	TakeTokens(ctx context.Context, t store.TokenTake) (store.TokenGrant, error)
}

// The shape of an endpoint's shared bucket and of this process's share of it (see the package
// doc, "Rate limits", for why these values).
const (
	// rateBurstShare is the bucket's capacity in seconds of the limit: a quarter of a second.
	rateBurstShare = 4
	// rateBatchShare is the most a process takes at once, in seconds of the limit: a tenth.
	rateBatchShare = 10
	// rateTokenLife is how long tokens taken from the store may be spent: a token held longer
	// is dropped, so that a process never spends late what the bucket granted long ago.
	rateTokenLife = 100 * time.Millisecond
	// rateIdle is how long an endpoint without takes stays known to the limiter.
	rateIdle = time.Minute
)

// rateLimiter spends the tokens this process takes from the limited endpoints' shared
// buckets. Tokens are taken in small batches (at most a tenth of a second's worth) with one
// statement each, and spent here one per attempt; when the bucket is empty the limiter
// remembers until when, so that deliveries in the meantime are parked without asking the
// store again.
type rateLimiter struct {
	src tokenTaker
	now func() time.Time

	m sync.Map     // webhook id → *rateBucket
	n atomic.Int32 // entries in m: none spares the unlimited endpoints' path any lookup
}

// rateBucket is this process's view of one endpoint's bucket.
type rateBucket struct {
	mu         sync.Mutex // held across a take from the store: one take at a time per endpoint
	rate       int        // the limit the tokens were taken for
	tokens     int        // taken and not spent yet
	expires    time.Time  // when the tokens held stop counting
	emptyUntil time.Time  // the shared bucket has no token before then
	used       atomic.Int64
}

func newRateLimiter(src tokenTaker, now func() time.Time) *rateLimiter {
	return &rateLimiter{src: src, now: now}
}

// rateParams returns the token interval, the bucket's burst and the most taken at once for a
// limit of rate a second. The interval rounds up to whole microseconds (the store's unit), so
// the bucket never fills faster than the limit.
func rateParams(rate int) (interval time.Duration, burst, batch int) {
	interval = time.Duration(math.Ceil(1e6/float64(rate))) * time.Microsecond
	burst = max(1, rate/rateBurstShare)
	batch = min(burst, max(1, rate/rateBatchShare))
	return interval, burst, batch
}

// bucket returns ep's bucket, creating it; nil for an endpoint without a limit.
func (l *rateLimiter) bucket(ep *endpoint, now time.Time) *rateBucket {
	if ep.RateLimit <= 0 {
		if l.n.Load() > 0 {
			if _, ok := l.m.LoadAndDelete(ep.ID); ok { // its limit was removed
				l.n.Add(-1)
			}
		}
		return nil
	}
	v, ok := l.m.Load(ep.ID)
	if !ok {
		var loaded bool
		if v, loaded = l.m.LoadOrStore(ep.ID, &rateBucket{}); !loaded {
			l.n.Add(1)
		}
	}
	b := v.(*rateBucket)
	b.used.Store(now.UnixNano())
	return b
}

// limitedUntil returns when ep, a limited endpoint whose bucket this process found empty, has
// a token again; zero when it may have one now (or has no limit). It never asks the store.
func (l *rateLimiter) limitedUntil(ep *endpoint) time.Time {
	now := l.now()
	b := l.bucket(ep, now)
	if b == nil {
		return time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == ep.RateLimit && now.Before(b.emptyUntil) && (b.tokens == 0 || !now.Before(b.expires)) {
		return b.emptyUntil
	}
	return time.Time{}
}

// take spends one of ep's tokens for an attempt starting now, taking a batch from the store
// when this process holds none. ok false says the endpoint is at its limit: the delivery waits
// until retryAt. An endpoint without a limit always has a token.
func (l *rateLimiter) take(ctx context.Context, ep *endpoint) (ok bool, retryAt time.Time, err error) {
	now := l.now()
	b := l.bucket(ep, now)
	if b == nil {
		return true, time.Time{}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate != ep.RateLimit {
		// A new limit: what was taken for the old one no longer counts.
		b.rate, b.tokens, b.expires, b.emptyUntil = ep.RateLimit, 0, time.Time{}, time.Time{}
	}
	if b.tokens > 0 && now.Before(b.expires) {
		b.tokens--
		return true, time.Time{}, nil
	}
	b.tokens = 0
	if now.Before(b.emptyUntil) {
		return false, b.emptyUntil, nil
	}
	interval, burst, batch := rateParams(ep.RateLimit)
	g, err := l.src.TakeTokens(ctx, store.TokenTake{WebhookID: ep.ID, Want: batch, Interval: interval, Burst: burst, Now: now})
	if err != nil {
		return false, time.Time{}, err
	}
	b.tokens, b.expires = g.Granted, now.Add(rateTokenLife)
	if g.Granted < batch {
		b.emptyUntil = g.NextAt
	}
	if b.tokens == 0 {
		return false, g.NextAt, nil
	}
	b.tokens--
	return true, time.Time{}, nil
}

// rooms caps, in a retry claim's rooms, each limited endpoint this process knows at the
// tokens it holds, none while its bucket is empty, and a batch otherwise (what the next take
// may get): the claim then takes no more of a limited endpoint's due deliveries than it can
// send. perEndpoint is the share of endpoints the rooms do not list.
func (l *rateLimiter) rooms(rooms []store.EndpointRoom, perEndpoint int) []store.EndpointRoom {
	if l.n.Load() == 0 {
		return rooms
	}
	now := l.now()
	l.m.Range(func(k, v any) bool {
		id, b := k.(string), v.(*rateBucket)
		if now.Sub(time.Unix(0, b.used.Load())) > rateIdle {
			if l.m.CompareAndDelete(id, b) {
				l.n.Add(-1)
			}
			return true
		}
		room := 0
		// A take from the store in flight: its outcome is not known yet, so no room now;
		// the next claim sees it.
		if !b.mu.TryLock() {
			rooms = addRoom(rooms, id, 0, perEndpoint)
			return true
		}
		switch {
		case b.tokens > 0 && now.Before(b.expires):
			room = b.tokens
		case now.Before(b.emptyUntil):
		case b.rate > 0:
			_, _, room = rateParams(b.rate)
		default:
			room = 1 // not taken from yet: one delivery learns the limit
		}
		b.mu.Unlock()
		rooms = addRoom(rooms, id, room, perEndpoint)
		return true
	})
	return rooms
}

// addRoom caps the room of endpoint id in rooms at room, adding it when it is not listed
// (then it had perEndpoint).
func addRoom(rooms []store.EndpointRoom, id string, room, perEndpoint int) []store.EndpointRoom {
	for i := range rooms {
		if rooms[i].WebhookID == id {
			rooms[i].Free = min(rooms[i].Free, room)
			return rooms
		}
	}
	return append(rooms, store.EndpointRoom{WebhookID: id, Free: min(perEndpoint, room)})
}
