package dispatch

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// pathReceiver records, per request path, the event ids (webhook-id) it was sent, and answers
// 204 to all of them.
type pathReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]request // path → requests
}

func newPathReceiver(t testing.TB) *pathReceiver {
	t.Helper()
	rc := &pathReceiver{got: map[string][]request{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got[r.URL.Path] = append(rc.got[r.URL.Path], request{Header: r.Header.Clone(), Body: body, At: time.Now()})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// requestFor returns the request at path that carried event id, if any.
func (rc *pathReceiver) requestFor(path, eventID string) (request, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, r := range rc.got[path] {
		if r.Header.Get("webhook-id") == eventID {
			return r, true
		}
	}
	return request{}, false
}

// messagesDone returns a tweak that reports the event id of every message whose deliveries are
// recorded, and the channel it reports on.
func messagesDone() (func(*Dispatcher), <-chan string) {
	ch := make(chan string, 1024)
	return withAcker(watchAcks{done: func(msg jetstream.Msg) { ch <- msg.Headers().Get(jetstream.MsgIDHeader) }}), ch
}

// awaitDone waits until the message of event id has had its deliveries recorded.
func awaitDone(t *testing.T, done <-chan string, id string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-done:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for event %s to be dispatched", id)
		}
	}
}

// TestFanOutSeesEarlierWebhookChanges: an event is fanned out with every webhook change made
// before it was accepted, however recently the dispatcher read the survey's endpoints. The
// cache's TTL is an hour, so nothing but the event's webhooks version can make it reload.
func TestFanOutSeesEarlierWebhookChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newPathReceiver(t)
		survey := h.addSurvey("")
		cfg := h.config("0s")
		cfg.CacheTTL = time.Hour
		tweak, done := messagesDone()
		h.start(cfg, tweak)
		ctx := context.Background()

		// Register, then submit, fifty times: each event reaches the endpoint registered just
		// before it (and every earlier one).
		const rounds = 50
		for i := range rounds {
			path := fmt.Sprintf("/round-%d", i)
			h.addEndpoint(survey, rc.URL+path)
			ev := h.publish(ctx, survey, events.TypeSessionSubmitted)
			awaitDone(t, done, ev.ID)
			if _, ok := rc.requestFor(path, ev.ID); !ok {
				t.Fatalf("round %d: the endpoint registered before the event did not get it", i)
			}
			if n := len(h.deliveries("event_id = $1", ev.ID)); n != i+1 {
				t.Fatalf("round %d: %d deliveries, want %d", i, n, i+1)
			}
		}

		// Unsubscribe one, delete one, disable one, rotate the secret of another: the next event
		// follows all four changes.
		unsub := h.addEndpoint(survey, rc.URL+"/unsubscribed")
		gone := h.addEndpoint(survey, rc.URL+"/deleted")
		off := h.addEndpoint(survey, rc.URL+"/disabled")
		rotated := h.addEndpoint(survey, rc.URL+"/rotated")
		before := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, before.ID)
		for _, p := range []string{"/unsubscribed", "/deleted", "/disabled", "/rotated"} {
			if _, ok := rc.requestFor(p, before.ID); !ok {
				t.Fatalf("%s did not get the event sent before the changes", p)
			}
		}
		newSecret := webhook.NewSecret()
		now := store.Micros(time.Now())
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"UPDATE webhooks SET events = $2, updated_at = $3 WHERE id = $1", []any{unsub.ID, events.TypeSessionStarted, now}},
			{"DELETE FROM webhooks WHERE id = $1", []any{gone.ID}},
			{"UPDATE webhooks SET disabled = TRUE, disabled_reason = 'disabled by hand', disabled_at = $2 WHERE id = $1", []any{off.ID, now}},
			{`UPDATE webhooks SET previous_secret = secret, previous_secret_until = $2, secret = $3 WHERE id = $1`,
				[]any{rotated.ID, store.Micros(time.Now().Add(time.Hour)), newSecret}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
		after := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, after.ID)
		for _, p := range []string{"/unsubscribed", "/deleted", "/disabled"} {
			if _, ok := rc.requestFor(p, after.ID); ok {
				t.Errorf("%s got an event accepted after its change", p)
			}
		}
		byWebhook := map[string]storedDelivery{}
		for _, d := range h.deliveries("event_id = $1", after.ID) {
			byWebhook[d.WebhookID] = d
		}
		if _, ok := byWebhook[unsub.ID]; ok {
			t.Error("the unsubscribed endpoint has a delivery of the later event")
		}
		if _, ok := byWebhook[gone.ID]; ok {
			t.Error("the deleted endpoint has a delivery of the later event")
		}
		if d := byWebhook[off.ID]; d.Status != StatusSkipped {
			t.Errorf("the disabled endpoint's delivery of the later event is %q, want %q", d.Status, StatusSkipped)
		}
		req, ok := rc.requestFor("/rotated", after.ID)
		if !ok {
			t.Fatal("the rotated endpoint did not get the later event")
		}
		v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{newSecret}})
		if _, err := v.Verify(req.Header, req.Body); err != nil {
			t.Errorf("the event accepted after the rotation is not signed with the new secret: %v", err)
		}
	})
}

// TestReplayToNewEndpoint: a stored delivery naming an endpoint the dispatcher's copy of the
// survey lacks (created, or re-enabled, after it was read) is attempted, not failed as
// deleted or disabled.
func TestReplayToNewEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newPathReceiver(t)
		survey := h.addSurvey("")
		old := h.addEndpoint(survey, rc.URL+"/old")
		off := h.addEndpoint(survey, rc.URL+"/reenabled")
		ctx := context.Background()
		if _, err := db.Exec(ctx, "UPDATE webhooks SET disabled = TRUE WHERE id = $1", off.ID); err != nil {
			t.Fatal(err)
		}
		cfg := h.config("0s")
		cfg.CacheTTL = time.Hour
		tweak, done := messagesDone()
		h.start(cfg, tweak)
		ev := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, ev.ID) // the dispatcher has read the survey's endpoints now
		first := h.delivery(delivery.DeliveryID(ev.ID, old.ID))

		fresh := h.addEndpoint(survey, rc.URL+"/new")
		if _, err := db.Exec(ctx, "UPDATE webhooks SET disabled = FALSE WHERE id = $1", off.ID); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ep := range []testEndpoint{fresh, off} {
			target := first
			target.WebhookID, target.URL = ep.ID, ep.URL
			ids = append(ids, h.insertReplay(target))
		}
		for _, id := range ids {
			waitFor(t, "the replay to end", func() bool { return h.delivery(id).Status != StatusPending })
			if d := h.delivery(id); d.Status != StatusSucceeded {
				t.Errorf("replay %s to a webhook the cache lacked: %+v", id, d)
			}
		}
		for _, p := range []string{"/new", "/reenabled"} {
			if _, ok := rc.requestFor(p, ev.ID); !ok {
				t.Errorf("%s did not get the replay", p)
			}
		}
	})
}

// TestEndpointCacheVersions: a cached copy serves events of its version or earlier without a
// query, a later event gets a copy read after it, a missing survey is cached like any other,
// and reload always reads afresh.
func TestEndpointCacheVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		c := newEndpointCache(db, h.keys, time.Hour, time.Now)
		version := func() int64 {
			t.Helper()
			var v int64
			if err := db.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		get := func(survey string, need int64) *surveyEndpoints {
			t.Helper()
			se, err := c.get(ctx, survey, need)
			if err != nil {
				t.Fatal(err)
			}
			return se
		}
		survey := h.addSurvey("")
		first := get(survey, version())
		if !first.found || len(first.endpoints) != 0 || first.version != version() {
			t.Fatalf("first load: %+v", first)
		}
		if again := get(survey, first.version); again != first {
			t.Error("an event of the cached version made a query")
		}
		ep := h.addEndpoint(survey, "https://example.org/hook")
		if old := get(survey, first.version); old != first {
			t.Error("an event accepted before the change made a query")
		}
		later := get(survey, version())
		if later == first || later.byID(ep.ID) == nil || later.version != version() {
			t.Fatalf("an event accepted after the change got %+v", later)
		}

		missing := get("no-such-survey", version())
		if missing.found || len(missing.endpoints) != 0 {
			t.Fatalf("missing survey: %+v", missing)
		}
		if again := get("no-such-survey", version()); again != missing {
			t.Error("a missing survey is read again for every event")
		}

		fresh, err := c.reload(ctx, survey)
		if err != nil {
			t.Fatal(err)
		}
		if fresh == later || fresh.byID(ep.ID) == nil {
			t.Errorf("reload returned the cached copy")
		}

		// A version the store has not reached (a database restored from a backup) is met by
		// a load started after the call, and the event is dispatched with it.
		ahead, err := c.get(ctx, survey, version()+1000)
		if err != nil || ahead.byID(ep.ID) == nil {
			t.Fatalf("event ahead of the store: %+v, %v", ahead, err)
		}
	})
}

// Many events of one survey arriving together, each after a change, share loads and each gets
// a copy at least as new as its version.
func TestEndpointCacheConcurrentEvents(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	h := newHarness(t, db)
	ctx := context.Background()
	c := newEndpointCache(db, h.keys, time.Hour, time.Now)
	survey := h.addSurvey("")
	var wg sync.WaitGroup
	for round := range 20 {
		ep := h.addEndpoint(survey, fmt.Sprintf("https://example.org/%d", round))
		var v int64
		if err := db.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				se, err := c.get(ctx, survey, v)
				if err != nil {
					t.Error(err)
					return
				}
				if se.version < v || se.byID(ep.ID) == nil {
					t.Errorf("round %d: copy at version %d without the endpoint, event at %d", round, se.version, v)
				}
			}()
		}
	}
	wg.Wait()
}

// TestFanOutAfterSurveyRecreated: a survey deleted and created again under the same id does not
// inherit its predecessor's endpoints from a dispatcher's copy, and events of a survey that is
// gone go nowhere.
func TestFanOutAfterSurveyRecreated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newPathReceiver(t)
		survey := h.addSurvey("")
		h.addEndpoint(survey, rc.URL+"/old")
		cfg := h.config("0s")
		cfg.CacheTTL = time.Hour
		tweak, done := messagesDone()
		h.start(cfg, tweak)
		ctx := context.Background()
		ev := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, ev.ID)
		if _, ok := rc.requestFor("/old", ev.ID); !ok {
			t.Fatal("the first survey's endpoint did not get its event")
		}

		if _, err := db.Exec(ctx, "DELETE FROM surveys WHERE id = $1", survey); err != nil {
			t.Fatal(err)
		}
		gone := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, gone.ID)
		now := store.Micros(time.Now())
		if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, 'again', $2, $2)", survey, now); err != nil {
			t.Fatal(err)
		}
		again := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, again.ID)
		h.addEndpoint(survey, rc.URL+"/new")
		last := h.publish(ctx, survey, events.TypeSessionSubmitted)
		awaitDone(t, done, last.ID)

		for _, id := range []string{gone.ID, again.ID, last.ID} {
			if _, ok := rc.requestFor("/old", id); ok {
				t.Errorf("event %s reached the deleted survey's endpoint", id)
			}
		}
		if n := len(h.deliveries("event_id IN ($1, $2)", gone.ID, again.ID)); n != 0 {
			t.Errorf("%d deliveries of events of a survey without endpoints", n)
		}
		if _, ok := rc.requestFor("/new", last.ID); !ok {
			t.Error("the new survey's endpoint did not get its event")
		}
	})
}

func TestWebhooksVersionHeader(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		header string
		want   int64
	}{
		{"", 0}, // published before versions existed: any copy will do
		{"42", 42},
		{"x", math.MaxInt64}, // unreadable: read every change made so far
		{"-1", -1},           // below any copy's version: any copy will do
		{"99999999999999999999", math.MaxInt64},
	} {
		h := nats.Header{}
		if c.header != "" {
			h.Set(events.HeaderWebhooksVersion, c.header)
		}
		if got := webhooksVersion(h); got != c.want {
			t.Errorf("header %q: version %d, want %d", c.header, got, c.want)
		}
	}
}
