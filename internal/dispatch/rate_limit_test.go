package dispatch

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	endpoints "github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// TestRateLimitAcrossDispatchers runs two dispatchers on one store and one stream with a
// survey whose every event goes to an endpoint limited to 20 deliveries a second and to one
// without a limit. Every event reaches each receiver exactly once in one attempt (waiting for
// a token is not an attempt and counts no failure), the limited receiver never gets more than
// the limit allows (CONTRACT section 8: within 10% over any 10 seconds), and the unlimited
// endpoint is not held behind the limited one.
func TestRateLimitAcrossDispatchers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		const limit, n = 20, 300 // 300 events need at least 14.75 s at 20/s (a 5-token burst first)
		h := newHarness(t, db)
		limited, free := newReceiver(t, nil), newReceiver(t, nil)
		survey := h.addSurvey("")
		lim := h.addEndpoint(survey, limited.url())
		unl := h.addEndpoint(survey, free.url())
		if _, err := db.Exec(context.Background(), "UPDATE webhooks SET rate_limit = $1 WHERE id = $2", limit, lim.ID); err != nil {
			t.Fatal(err)
		}
		// The events wait in the stream before the dispatchers start, so that how fast they
		// are published (slow on a loaded machine) does not pace either endpoint.
		for range n {
			h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		}
		cfg := h.config("0s,50ms,100ms")
		h.start(cfg)
		h.start(cfg)
		waitForLong(t, "the unlimited endpoint to get every event", 2*time.Minute, func() bool { return free.count() >= n })
		limitedWhenFreeDone := limited.count()
		waitForLong(t, "the limited endpoint to get every event", 3*time.Minute, func() bool { return limited.count() >= n })
		// Let stray duplicates, if any, arrive before counting.
		waitFor(t, "every delivery to be recorded", func() bool {
			return len(h.deliveries("webhook_id IN ($1, $2) AND status = 'succeeded'", lim.ID, unl.ID)) == 2*n
		})

		for _, rc := range []*receiver{limited, free} {
			seen := map[string]int{}
			for _, r := range rc.requests() {
				var ev struct{ ID string }
				if err := json.Unmarshal(r.Body, &ev); err != nil {
					t.Fatal(err)
				}
				seen[ev.ID]++
			}
			if len(seen) != n || len(rc.requests()) != n {
				t.Errorf("%s got %d requests for %d events, want %d each once", rc.url(), len(rc.requests()), len(seen), n)
			}
		}
		for _, d := range h.deliveries("webhook_id IN ($1, $2)", lim.ID, unl.ID) {
			if d.Attempts != 1 {
				t.Errorf("delivery %s to %s took %d attempts, want 1: waiting for the limit is no attempt", d.ID, d.WebhookID, d.Attempts)
			}
		}
		if st := h.webhookState(lim.ID); st.ConsecutiveFailures != 0 || st.Disabled {
			t.Errorf("the limited endpoint's failure counters moved: %+v", st)
		}

		// The highest rate over any 10 s window, from the receipt times: the windows that
		// matter start at a receipt.
		var at []time.Time
		for _, r := range limited.requests() {
			at = append(at, r.At)
		}
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		most := 0
		for i := range at {
			j := sort.Search(len(at), func(j int) bool { return !at[j].Before(at[i].Add(10 * time.Second)) })
			most = max(most, j-i)
		}
		if bound := int(1.1 * limit * 10); most > bound {
			t.Errorf("the limited endpoint got %d deliveries in a 10 s window, more than %d (the limit %d/s + 10%%)", most, bound, limit)
		}
		t.Logf("limited endpoint: at most %d deliveries in 10 s (bound %d), %d of %d when the unlimited one had all",
			most, int(1.1*limit*10), limitedWhenFreeDone, n)
		// Holding the limited endpoint's events never held the other's: it had them all while
		// the limited one, which cannot take them in less than 14.75 s, still waited for some.
		if limitedWhenFreeDone >= n {
			t.Errorf("the unlimited endpoint got its last event only after the limited one had all %d", n)
		}
	})
}

// waitForLong is waitFor with a deadline of its own.
func waitForLong(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRateLimiterSpendsBatches drives the limiter on a fixed clock against the real store: it
// takes a batch (a tenth of a second's worth) per query and spends it locally, parks until the
// bucket's next token once the burst is spent, drops tokens held past their life, and starts
// afresh when the limit changes. Endpoints without a limit never meet it.
func TestRateLimiterSpendsBatches(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, db)
		survey := h.addSurvey("")
		ep := &endpoint{ID: h.addEndpoint(survey, "https://example.org/h").ID, RateLimit: 40} // 25 ms a token, burst 10, batch 4
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		l := newRateLimiter(endpoints.NewStore(db, h.keys), func() time.Time { return now })
		take := func() (bool, time.Time) {
			t.Helper()
			ok, at, err := l.take(ctx, ep)
			if err != nil {
				t.Fatal(err)
			}
			return ok, at
		}
		granted := 0
		for {
			ok, at := take()
			if !ok {
				// The burst of 10 is spent: the next token is 25 ms on.
				if want := now.Add(25 * time.Millisecond); !at.Equal(want) {
					t.Errorf("retry at %s, want %s", at, want)
				}
				break
			}
			granted++
		}
		if granted != 10 {
			t.Errorf("granted %d tokens at one instant, want the burst, 10", granted)
		}
		if at := l.limitedUntil(ep); !at.Equal(now.Add(25 * time.Millisecond)) {
			t.Errorf("limitedUntil %s, want the next token's time", at)
		}
		rooms := l.rooms(nil, 8)
		if len(rooms) != 1 || rooms[0].WebhookID != ep.ID || rooms[0].Free != 0 {
			t.Errorf("rooms while empty: %+v, want none for %s", rooms, ep.ID)
		}

		// A second later the bucket is full again; a batch of 4 is taken, 1 spent.
		now = now.Add(time.Second)
		if ok, _ := take(); !ok {
			t.Fatal("no token after a second")
		}
		if rooms := l.rooms(nil, 8); len(rooms) != 1 || rooms[0].Free != 3 {
			t.Errorf("rooms with 3 tokens held: %+v", rooms)
		}
		// Held past their life, the 3 are dropped: the next take asks the store, whose bucket
		// (10 − 4 + 4 refilled over 110 ms, capped at the burst) grants a new batch.
		now = now.Add(rateTokenLife + 10*time.Millisecond)
		var n int
		if err := db.QueryRow(ctx, "SELECT granted FROM webhook_rate_tokens WHERE webhook_id = $1", ep.ID).Scan(&n); err != nil || n != 4 {
			t.Fatalf("the last take granted %d, %v; want a batch of 4", n, err)
		}
		if ok, _ := take(); !ok {
			t.Fatal("no token after the held ones expired")
		}
		before := now
		// A new limit: the tokens held for the old one are dropped.
		ep2 := *ep
		ep2.RateLimit = 10 // 100 ms a token, burst 2, batch 1
		if ok, _, err := l.take(ctx, &ep2); !ok || err != nil {
			t.Errorf("no token under the new limit: %v", err)
		}
		if at := l.limitedUntil(&ep2); !at.IsZero() && at.Before(before) {
			t.Errorf("limitedUntil %s under the new limit", at)
		}
		// No limit: always a token, and the endpoint is forgotten.
		ep3 := ep2
		ep3.RateLimit = 0
		if ok, _, err := l.take(ctx, &ep3); !ok || err != nil {
			t.Errorf("an unlimited endpoint: %v, %v", ok, err)
		}
		if rooms := l.rooms(nil, 8); len(rooms) != 0 {
			t.Errorf("rooms after the limit was removed: %+v", rooms)
		}
	})
}
