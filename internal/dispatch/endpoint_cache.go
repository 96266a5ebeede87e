package dispatch

import (
	"context"
	"sync"
	"time"

	endpoints "github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// endpoint is a webhook endpoint as the engine sees it: a read-only snapshot shared by every
// delivery made while the snapshot is fresh.
type endpoint struct {
	ID       string
	SurveyID string
	URL      string
	Types    []string
	Disabled bool
	// Failing is true while the store counts consecutive failures for the endpoint, so a
	// success must reset them.
	Failing bool
	// FailingSince is the earliest the store's first_failure_at for the endpoint can be while
	// this copy is in use: its first failure when it was read, else the time it was read
	// (a failure streak that starts later, counted by any dispatcher, starts after it, give
	// or take the dispatchers' clocks). The result writer asks the store to check the
	// failure threshold only for endpoints failing since before DisableAfter ago.
	FailingSince time.Time
	// RateLimit is the most deliveries a second to the endpoint, across all dispatchers; 0 is
	// no limit.
	RateLimit int
	// FIFO is true for an endpoint with ordering "fifo": its events go to its lane in the store
	// and are attempted one at a time (see "FIFO endpoints" in the package doc).
	FIFO bool

	// The secrets are whsec_ secrets (scheme v1) or whsk_ signing keys (v1a, and either kind
	// while a PATCH moves an endpoint between schemes): webhook.Request.Secrets signs each by
	// its prefix, so the engine handles both schemes alike.
	current       []string // the signing secret
	both          []string // the signing secret and, during a rotation, the previous one
	previousUntil time.Time
}

// subscribed reports whether the endpoint wants events of type t.
func (e *endpoint) subscribed(t string) bool {
	for _, s := range e.Types {
		if s == t {
			return true
		}
	}
	return false
}

// secrets returns the secrets that sign an attempt at now: the previous secret signs too until
// its grace period ends.
func (e *endpoint) secrets(now time.Time) []string {
	if len(e.both) > 1 && now.Before(e.previousUntil) {
		return e.both
	}
	return e.current
}

// surveyEndpoints is a survey's signing key and endpoints, as loaded at loadedAt.
type surveyEndpoints struct {
	found     bool   // the survey exists
	jwtKey    []byte // the survey's jwtSecret; nil when it has none
	endpoints []*endpoint
	// version is the store's webhooks version read in the same snapshot as the endpoints:
	// the endpoints are right for every event accepted at that version or earlier.
	version  int64
	loadedAt time.Time
}

// byID returns the endpoint with id, or nil.
func (s *surveyEndpoints) byID(id string) *endpoint {
	for _, e := range s.endpoints {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// endpointCache reads surveys' endpoints through a cache. Whether a cached copy may fan an
// event out is decided by versions, never by time: a copy read at webhooks version v serves
// events accepted at v or earlier (see events.Message.WebhooksVersion); a later event waits
// for a load. The TTL only keeps what versions do not cover fresh — the failure counters
// other dispatchers move — at one query per survey and TTL, and while one caller refreshes
// an expired copy the others keep using it. Concurrent loads of a survey are one query.
type endpointCache struct {
	src endpointLoader
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]*cacheEntry
}

type cacheEntry struct {
	val      *surveyEndpoints
	loading  *endpointLoad // the load in flight; nil when none is
	loads    uint64        // loads started so far, numbering them
	lastUsed time.Time
}

// endpointLoad is one query for a survey's endpoints, shared by every caller that waits for it.
type endpointLoad struct {
	n    uint64        // its number among the entry's loads
	done chan struct{} // closed when val and err are set
	val  *surveyEndpoints
	err  error
}

// idleEviction is how long an unused survey stays in the cache.
const idleEviction = 10 * time.Minute

// endpointLoader reads a survey's endpoints for the cache: internal/endpoint, the owner of the
// webhooks table, which opens the sealed secrets once per load, not per delivery.
type endpointLoader interface {
	LoadSurvey(ctx context.Context, surveyID string) (*endpoints.SurveyEndpoints, error)
}

var _ endpointLoader = (*endpoints.Store)(nil)

func newEndpointCache(db *store.DB, keys *secret.Keyring, ttl time.Duration, now func() time.Time) *endpointCache {
	return &endpointCache{src: endpoints.NewStore(db, keys), ttl: ttl, now: now, m: make(map[string]*cacheEntry)}
}

// get returns the survey's endpoints as read at webhooks version need or later, loading them
// when the cached copy is older than that (or than the TTL).
func (c *endpointCache) get(ctx context.Context, surveyID string, need int64) (*surveyEndpoints, error) {
	return c.lookup(ctx, surveyID, need, false)
}

// reload returns the survey's endpoints as read by a query that started after the call, for a
// stored delivery whose endpoint the cached copy lacks or has disabled: a replay may name an
// endpoint created or re-enabled a moment ago.
func (c *endpointCache) reload(ctx context.Context, surveyID string) (*surveyEndpoints, error) {
	return c.lookup(ctx, surveyID, 0, true)
}

func (c *endpointCache) lookup(ctx context.Context, surveyID string, need int64, fresh bool) (*surveyEndpoints, error) {
	now := c.now()
	c.mu.Lock()
	e := c.m[surveyID]
	if e == nil {
		e = &cacheEntry{}
		c.m[surveyID] = e
	}
	e.lastUsed = now
	// Loads numbered above after start after this call, so they read every webhook change
	// committed before it: the event's own version, and whatever the caller has seen.
	after := e.loads
	for {
		v := e.val
		usable := v != nil && !fresh && v.version >= need
		if usable && (now.Sub(v.loadedAt) < c.ttl || e.loading != nil) {
			c.mu.Unlock()
			return v, nil
		}
		l := e.loading
		if l == nil {
			e.loads++
			l = &endpointLoad{n: e.loads, done: make(chan struct{})}
			e.loading = l
			c.mu.Unlock()
			c.run(ctx, surveyID, e, l, now)
		} else {
			c.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if l.n > after {
			switch {
			case l.err == nil:
				return l.val, nil
			case usable:
				// The store did not answer: the copy at hand is still right for this event.
				return v, nil
			default:
				return nil, l.err
			}
		}
		// The load began before this call and may predate a change the caller must see.
		c.mu.Lock()
	}
}

// run performs l and publishes its result.
func (c *endpointCache) run(ctx context.Context, surveyID string, e *cacheEntry, l *endpointLoad, now time.Time) {
	l.val, l.err = c.load(ctx, surveyID, now)
	c.mu.Lock()
	if l.err == nil {
		e.val = l.val
	}
	e.loading = nil
	close(l.done)
	c.evictIdleLocked(now)
	c.mu.Unlock()
}

// invalidate makes the next get of the survey load afresh.
func (c *endpointCache) invalidate(surveyID string) {
	c.mu.Lock()
	if e := c.m[surveyID]; e != nil && e.val != nil {
		stale := *e.val
		stale.loadedAt = time.Time{}
		e.val = &stale
	}
	c.mu.Unlock()
}

func (c *endpointCache) evictIdleLocked(now time.Time) {
	for id, e := range c.m {
		if e.loading == nil && now.Sub(e.lastUsed) > idleEviction {
			delete(c.m, id)
		}
	}
}

// load reads the survey's endpoints into the engine's snapshots.
func (c *endpointCache) load(ctx context.Context, surveyID string, now time.Time) (*surveyEndpoints, error) {
	se, err := c.src.LoadSurvey(ctx, surveyID)
	if err != nil {
		return nil, err
	}
	out := &surveyEndpoints{found: se.Found, version: se.Version, loadedAt: now}
	if se.JWTSecret != "" {
		out.jwtKey = []byte(se.JWTSecret)
	}
	for _, e := range se.Endpoints {
		ep := &endpoint{
			ID:       e.ID,
			SurveyID: surveyID,
			URL:      e.URL,
			Types:    e.Events,
			Disabled: e.Disabled,
			Failing:  e.ConsecutiveFailures > 0 || !e.FirstFailureAt.IsZero(),

			FailingSince: now,

			RateLimit: e.RateLimit,
			FIFO:      e.Ordering == store.OrderingFIFO,
		}
		if !e.FirstFailureAt.IsZero() && e.FirstFailureAt.Before(now) {
			ep.FailingSince = e.FirstFailureAt
		}
		ep.current = []string{e.Secret}
		ep.both = ep.current
		if e.PreviousSecret != "" && !e.PreviousSecretUntil.IsZero() {
			ep.both = []string{e.Secret, e.PreviousSecret}
			ep.previousUntil = e.PreviousSecretUntil
		}
		out.endpoints = append(out.endpoints, ep)
	}
	return out, nil
}
