package dispatch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

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
	loadedAt  time.Time
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

// endpointCache reads surveys' endpoints through a short-lived cache: one query per survey
// and TTL at most, however many events arrive, while PATCH, rotation and disabling still take
// effect within about TTL. Concurrent misses for one survey share one query.
type endpointCache struct {
	db  *store.DB
	ttl time.Duration
	now func() time.Time

	keys *secret.Keyring // opens the sealed secrets once per load, not per delivery

	mu sync.Mutex
	m  map[string]*cacheEntry
}

type cacheEntry struct {
	val      *surveyEndpoints
	loading  chan struct{} // closed when the load in flight ends; nil when none is
	err      error         // the last load's error
	lastUsed time.Time
}

// idleEviction is how long an unused survey stays in the cache.
const idleEviction = 10 * time.Minute

func newEndpointCache(db *store.DB, keys *secret.Keyring, ttl time.Duration, now func() time.Time) *endpointCache {
	return &endpointCache{db: db, keys: keys, ttl: ttl, now: now, m: make(map[string]*cacheEntry)}
}

// get returns the survey's endpoints, loading them when the cached copy is older than the
// TTL. While one caller refreshes a stale copy, the others keep using it.
func (c *endpointCache) get(ctx context.Context, surveyID string) (*surveyEndpoints, error) {
	now := c.now()
	c.mu.Lock()
	e := c.m[surveyID]
	if e == nil {
		e = &cacheEntry{}
		c.m[surveyID] = e
	}
	e.lastUsed = now
	if v := e.val; v != nil && now.Sub(v.loadedAt) < c.ttl {
		c.mu.Unlock()
		return v, nil
	}
	if e.loading != nil {
		ch, v := e.loading, e.val
		c.mu.Unlock()
		if v != nil {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		v, err := e.val, e.err
		c.mu.Unlock()
		if v == nil {
			return nil, err
		}
		return v, nil
	}
	e.loading = make(chan struct{})
	c.mu.Unlock()

	v, err := c.load(ctx, surveyID, now)

	c.mu.Lock()
	if err == nil {
		e.val = v
	} else if e.val != nil {
		// The store did not answer: keep delivering with what was known a moment ago.
		v, err = e.val, nil
	}
	e.err = err
	close(e.loading)
	e.loading = nil
	c.evictIdleLocked(now)
	c.mu.Unlock()
	return v, err
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

const loadEndpointsSQL = `SELECT s.jwt_secret, w.id, w.url, w.events, w.secret, w.previous_secret,
	w.previous_secret_until, w.disabled, w.consecutive_failures, w.first_failure_at
FROM surveys s LEFT JOIN webhooks w ON w.survey_id = s.id
WHERE s.id = $1
ORDER BY w.created_at, w.id`

func (c *endpointCache) load(ctx context.Context, surveyID string, now time.Time) (*surveyEndpoints, error) {
	rows, err := c.db.Query(ctx, loadEndpointsSQL, surveyID)
	if err != nil {
		return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
	}
	defer rows.Close()
	out := &surveyEndpoints{loadedAt: now}
	for rows.Next() {
		var (
			jwtSecret, id, url, types, secret, prev *string
			prevUntil, firstFailure                 *int64
			disabled                                *bool
			failures                                *int64
		)
		if err := rows.Scan(&jwtSecret, &id, &url, &types, &secret, &prev, &prevUntil, &disabled, &failures, &firstFailure); err != nil {
			return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
		}
		out.found = true
		if jwtSecret != nil && *jwtSecret != "" && out.jwtKey == nil {
			if out.jwtKey, err = c.openJWTKey(surveyID, *jwtSecret); err != nil {
				return nil, err
			}
		}
		if id == nil {
			continue // the survey has no endpoints: one row of NULLs
		}
		ep := &endpoint{
			ID:       *id,
			SurveyID: surveyID,
			URL:      deref(url),
			Types:    splitTypes(deref(types)),
			Disabled: disabled != nil && *disabled,
			Failing:  (failures != nil && *failures > 0) || firstFailure != nil,
		}
		ep.current = []string{deref(secret)}
		ep.both = ep.current
		if prev != nil && *prev != "" && prevUntil != nil {
			ep.both = []string{deref(secret), *prev}
			ep.previousUntil = store.FromMicros(*prevUntil)
		}
		if err := c.openSecrets(ep); err != nil {
			return nil, err
		}
		out.endpoints = append(out.endpoints, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// splitTypes parses the webhooks.events column: event types separated by commas.
func splitTypes(s string) []string {
	var out []string
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
