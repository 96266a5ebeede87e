package dispatch

import (
	"sync"
	"sync/atomic"

	"github.com/dispatch24/dispatch24/internal/store"
)

// endpointSlots caps attempts in flight per endpoint in this process. Each endpoint gets
// capacity slots; a delivery that finds them taken waits a little (SlowAfter) and is then
// parked in the store, and the endpoint is marked congested until a slot frees, so later
// deliveries to it are parked at once instead of waiting too.
type endpointSlots struct {
	capacity int

	mu sync.Mutex
	m  map[string]*endpointSlot
}

// endpointSlot is one endpoint's semaphore.
type endpointSlot struct {
	id        string
	sem       chan struct{}
	congested atomic.Bool
}

func newEndpointSlots(capacity int) *endpointSlots {
	return &endpointSlots{capacity: capacity, m: make(map[string]*endpointSlot)}
}

// get returns the endpoint's slots, creating them on first use. Endpoints are few (rows of
// the webhooks table), so entries are kept for the life of the process.
func (s *endpointSlots) get(id string) *endpointSlot {
	s.mu.Lock()
	e := s.m[id]
	if e == nil {
		e = &endpointSlot{id: id, sem: make(chan struct{}, s.capacity)}
		s.m[id] = e
	}
	s.mu.Unlock()
	return e
}

// occupied lists up to limit endpoints with attempts in flight or congested, with their free
// slots (none while congested). The retry scheduler claims no more of an endpoint's due
// deliveries than it has room for; endpoints not listed have all their slots free.
func (s *endpointSlots) occupied(limit int) []store.EndpointRoom {
	var out []store.EndpointRoom
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.m {
		if len(out) >= limit {
			break
		}
		free := s.capacity - len(e.sem)
		if e.congested.Load() {
			free = 0
		}
		if free < s.capacity {
			out = append(out, store.EndpointRoom{WebhookID: id, Free: max(free, 0)})
		}
	}
	return out
}

// tryAcquire takes a slot if one is free.
func (e *endpointSlot) tryAcquire() bool {
	select {
	case e.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// release frees a slot: the endpoint is making progress, so it is no longer congested.
func (e *endpointSlot) release() {
	<-e.sem
	e.congested.Store(false)
}
