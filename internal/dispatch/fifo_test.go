package dispatch

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// firstSuccesses is a receiver's log of the events it took (answered 2xx), first success only,
// in the order it answered them.
type firstSuccesses struct {
	mu    sync.Mutex
	rng   *rand.Rand
	fail  float64
	seen  map[string]bool
	order []string
}

// respond fails a fraction of attempts at random (seeded) and records first successes.
func (f *firstSuccesses) respond(_ int, _ http.ResponseWriter, r *http.Request) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() < f.fail {
		return http.StatusServiceUnavailable
	}
	id := r.Header.Get("webhook-id")
	if !f.seen[id] {
		f.seen[id] = true
		f.order = append(f.order, id)
	}
	return http.StatusNoContent
}

func (f *firstSuccesses) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

// setFIFO gives an endpoint the ordering fifo, as a PATCH does.
func (h *harness) setFIFO(ep testEndpoint) {
	h.t.Helper()
	if _, err := h.db.Exec(context.Background(), "UPDATE webhooks SET ordering = 'fifo' WHERE id = $1", ep.ID); err != nil {
		h.t.Fatal(err)
	}
}

// lateRecords delays, at random (seeded), the recording of batches holding new lane
// deliveries: another dispatcher then records later events of the lane first, the hazard the
// lane's gap check is there for.
type lateRecords struct {
	resultStore
	mu  sync.Mutex
	rng *rand.Rand
}

func (l *lateRecords) RecordResults(ctx context.Context, r *store.DeliveryResults, disabled []store.DisabledEndpoint,
	reported []delivery.Reported) ([]store.DisabledEndpoint, []delivery.Reported, error) {
	for _, d := range r.Deliveries {
		if d.Lane && d.Attempts == 0 {
			l.mu.Lock()
			delay := time.Duration(l.rng.IntN(40)) * time.Millisecond
			l.mu.Unlock()
			time.Sleep(delay)
			break
		}
	}
	return l.resultStore.RecordResults(ctx, r, disabled, reported)
}

// withLateRecords is a start tweak that makes a dispatcher record new lane deliveries late.
func withLateRecords(seed uint64) func(*Dispatcher) {
	return func(d *Dispatcher) {
		d.writer.cfg.Store = &lateRecords{resultStore: d.writer.cfg.Store, rng: rand.New(rand.NewPCG(seed, seed))}
	}
}

// waitLong is waitFor with a deadline for long runs on a loaded machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFIFOOrderedUnderFailuresAndRestart is issue 14's test: 1,000 events to a FIFO endpoint
// whose receiver fails 20% of the attempts at random, on a short retry schedule, with two
// dispatchers consuming (so messages are handled out of order), one of which is stopped
// mid-run and replaced; one of them records new deliveries late, at random, so that the other
// records later events of the lane first. The receiver must see the first successes in exactly the order the
// events were accepted. An endpoint without ordering on the same survey gets every event too.
func TestFIFOOrderedUnderFailuresAndRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		n := 1000
		if db.Dialect == store.SQLite {
			n = 300 // one writer: the same logic, a shorter run
		}
		h := newHarness(t, db)
		survey := h.addSurvey("")
		log := &firstSuccesses{rng: rand.New(rand.NewPCG(14, 20)), fail: 0.2, seen: map[string]bool{}}
		rc := newReceiver(t, log.respond)
		fifo := h.addEndpoint(survey, rc.url())
		h.setFIFO(fifo)
		plain := newReceiver(t, nil)
		h.addEndpoint(survey, plain.url())

		cfg := h.config("0s,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms,5ms")
		cfg.Jitter = -1
		stop1 := h.start(cfg, withLateRecords(1))
		h.start(cfg)

		want := make([]string, 0, n)
		for i := range n {
			want = append(want, h.publish(context.Background(), survey, events.TypeSessionSubmitted).ID)
			if i == n/3 {
				// A restart mid-run: the first dispatcher stops (parking what it holds) and a
				// new one takes its place.
				stop1()
				h.start(cfg, withLateRecords(2))
			}
		}
		waitLong(t, "every event's first success", func() bool { return len(log.got()) >= n })
		got := log.got()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("first success %d is event %s, want %s (accepted %d-th)", i, got[i], want[i], i)
			}
		}
		waitLong(t, "the plain endpoint's deliveries", func() bool { return plain.count() >= n })
	})
}

// TestFIFOFailedHeadAndReplay checks that a head that ends failed lets the lane go on, and
// that a replay of an old delivery is sent while the lane waits on a head being retried.
func TestFIFOFailedHeadAndReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		survey := h.addSurvey("")
		var mu sync.Mutex
		failing := map[string]bool{}    // event ids the receiver refuses
		retryLater := map[string]bool{} // event ids the receiver asks to come back in an hour
		var firstID string
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) int {
			mu.Lock()
			defer mu.Unlock()
			id := r.Header.Get("webhook-id")
			if retryLater[id] {
				w.Header().Set("Retry-After", "3600")
				return http.StatusServiceUnavailable
			}
			if failing[id] {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		ep := h.addEndpoint(survey, rc.url())
		h.setFIFO(ep)
		cfg := h.config("0s,10ms,10ms")
		cfg.Jitter = -1
		h.start(cfg)

		// 1. e1 delivered; e2 fails for good (3 attempts), then e3 goes.
		e1 := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "e1 delivered", func() bool { return rc.count() >= 1 })
		mu.Lock()
		firstID = e1.ID
		mu.Unlock()
		e2ID := events.NewID()
		mu.Lock()
		failing[e2ID] = true
		mu.Unlock()
		e2 := h.publishWithID(survey, e2ID)
		e3 := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "e3 delivered after e2 failed", func() bool {
			d := h.deliveries("event_id = $1", e3.ID)
			return len(d) == 1 && d[0].Status == StatusSucceeded
		})
		d2 := h.deliveries("event_id = $1", e2.ID)
		if len(d2) != 1 || d2[0].Status != StatusFailed || d2[0].Attempts != 3 {
			t.Fatalf("e2's delivery: %+v, want failed after 3 attempts", d2)
		}
		var order []string
		for _, r := range rc.requests() {
			var env struct{ ID string }
			_ = json.Unmarshal(r.Body, &env)
			if len(order) == 0 || order[len(order)-1] != env.ID {
				order = append(order, env.ID)
			}
		}
		if len(order) != 3 || order[0] != firstID || order[1] != e2.ID || order[2] != e3.ID {
			t.Fatalf("requests in order %v, want e1, e2 (its attempts), e3", order)
		}

		// 2. A lane blocked on a head being retried (e4 answered 503 with Retry-After of an
		// hour) still lets a replay of e1 go.
		e4ID := events.NewID()
		mu.Lock()
		retryLater[e4ID] = true
		mu.Unlock()
		h.publishWithID(survey, e4ID)
		waitFor(t, "e4's first attempt", func() bool {
			d := h.deliveries("event_id = $1", e4ID)
			return len(d) == 1 && d[0].Attempts >= 1
		})
		before := rc.count()
		old := h.deliveries("event_id = $1", e1.ID)
		h.insertReplay(old[0])
		waitFor(t, "the replay of e1", func() bool {
			for _, r := range rc.requests()[before:] {
				if r.Header.Get("webhook-id") == e1.ID {
					return true
				}
			}
			return false
		})
	})
}

// publishWithID publishes a submitted event with the given id.
func (h *harness) publishWithID(surveyID, id string) events.Event {
	h.t.Helper()
	return h.publishEvent(context.Background(), surveyID, events.TypeSessionSubmitted, id)
}
