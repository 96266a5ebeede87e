package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	endpoints "github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// startRelay runs the outbox relay, as cmd/api does: the operational events the engine
// writes reach JetStream only through it.
func (h *harness) startRelay() (stop func()) {
	h.t.Helper()
	r, err := outbox.New(outbox.Config{DB: h.db, JS: h.js, Logger: h.logger, SweepInterval: 20 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			h.t.Error("the relay did not stop within 30s")
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// operationalRequests returns the requests rc got carrying events of eventType, each checked
// against ep's secret, with their envelopes.
func operationalRequests(t *testing.T, rc *receiver, ep testEndpoint, eventType string) []events.Event {
	t.Helper()
	var out []events.Event
	v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{ep.Secret}})
	for _, r := range rc.requests() {
		var ev events.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		if ev.Type != eventType {
			continue
		}
		if _, err := v.Verify(r.Header, r.Body); err != nil {
			t.Errorf("%s delivery does not verify: %v", eventType, err)
		}
		if r.Header.Get("webhook-id") != ev.ID {
			t.Errorf("webhook-id %q, envelope id %q", r.Header.Get("webhook-id"), ev.ID)
		}
		out = append(out, ev)
	}
	return out
}

// storedOperational counts the events table's rows of eventType in survey.
func (h *harness) storedOperational(survey, eventType string) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE survey_id = $1 AND type = $2",
		survey, eventType).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// settled reports whether every delivery of survey has a final status.
func (h *harness) settled(survey string) bool {
	var n int
	if err := h.db.QueryRow(context.Background(), "SELECT count(*) FROM deliveries WHERE survey_id = $1 AND status = 'pending'",
		survey).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	var unpublished int
	if err := h.db.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE survey_id = $1 AND published_at IS NULL",
		survey).Scan(&unpublished); err != nil {
		h.t.Fatal(err)
	}
	return n == 0 && unpublished == 0
}

func disabledData(t *testing.T, ev events.Event) events.WebhookDisabledData {
	t.Helper()
	var d events.WebhookDisabledData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("data %s: %v", ev.Data, err)
	}
	return d
}

// TestGoneReportsWebhookDisabled: a 410 disables the endpoint and exactly one webhook.disabled
// reaches the sibling that subscribes to it, signed like any event, with the reason; not the
// disabled endpoint (though it subscribes too), and not a sibling that does not subscribe.
func TestGoneReportsWebhookDisabled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		gone := newReceiver(t, always(http.StatusGone))
		watcher := newReceiver(t, nil)
		other := newReceiver(t, nil)
		survey := h.addSurvey("")
		goneEp := h.addEndpoint(survey, gone.url(), events.TypeSessionSubmitted, events.TypeWebhookDisabled)
		watchEp := h.addEndpoint(survey, watcher.url(), events.TypeWebhookDisabled)
		otherEp := h.addEndpoint(survey, other.url(), events.TypeSessionSubmitted)
		h.startRelay()
		h.start(h.config("0s,50ms,50ms"))

		sub := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the webhook.disabled delivery", func() bool {
			return len(operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)) == 1
		})
		waitFor(t, "the submission's two deliveries to be recorded", func() bool {
			return len(h.deliveries("event_id = $1 AND status <> 'pending'", sub.ID)) == 2
		})

		got := operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)
		if len(got) != 1 {
			t.Fatalf("watcher got %d webhook.disabled, want 1", len(got))
		}
		ev := got[0]
		// The receiver answers before the attempt is recorded.
		waitFor(t, "the webhook.disabled delivery to be recorded", func() bool {
			return len(h.deliveries("event_id = $1 AND status = 'succeeded'", ev.ID)) > 0 && h.settled(survey)
		})
		if ev.SurveyID != survey || ev.Timestamp.IsZero() || !strings.HasPrefix(ev.ID, "evt_") {
			t.Errorf("envelope %+v", ev)
		}
		if d := disabledData(t, ev); d.WebhookID != goneEp.ID || d.Reason != store.GoneReason {
			t.Errorf("data %+v, want webhookId %s and reason %q", d, goneEp.ID, store.GoneReason)
		}
		if n := gone.count(); n != 1 {
			t.Errorf("the disabled endpoint got %d requests, want only the submission", n)
		}
		if ds := h.deliveries("event_id = $1", ev.ID); len(ds) != 1 || ds[0].WebhookID != watchEp.ID {
			t.Errorf("deliveries of the webhook.disabled event: %+v, want one, to %s", ds, watchEp.ID)
		}
		if n := other.count(); n != 1 {
			t.Errorf("the unsubscribed sibling %s got %d requests, want only the submission", otherEp.ID, n)
		}
		if n := h.storedOperational(survey, events.TypeWebhookDisabled); n != 1 {
			t.Errorf("%d webhook.disabled events stored, want 1", n)
		}
		// Counted just after the commit, which the relay's publish may overtake.
		waitFor(t, "the operational events metric", func() bool {
			return counterValue(t, h.metrics.OperationalEvents, events.TypeWebhookDisabled) == 1
		})
	})
}

// TestThresholdReportsWebhookDisabled: crossing the failure threshold reports the disabling
// with the threshold's reason.
func TestThresholdReportsWebhookDisabled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		dead := newReceiver(t, always(http.StatusInternalServerError))
		watcher := newReceiver(t, nil)
		survey := h.addSurvey("")
		deadEp := h.addEndpoint(survey, dead.url())
		watchEp := h.addEndpoint(survey, watcher.url(), events.TypeWebhookDisabled)
		h.startRelay()
		cfg := h.config("0s,30ms,30ms,30ms,30ms,30ms")
		cfg.DisableAfterFailures = 3
		cfg.DisableAfter = time.Millisecond
		h.start(cfg)

		h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the webhook.disabled delivery", func() bool {
			return len(operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)) == 1
		})
		waitFor(t, "every delivery to settle", func() bool { return h.settled(survey) })
		got := operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)
		if len(got) != 1 {
			t.Fatalf("watcher got %d webhook.disabled, want 1", len(got))
		}
		d := disabledData(t, got[0])
		if st := h.webhookState(deadEp.ID); d.WebhookID != deadEp.ID || d.Reason != st.DisabledReason ||
			!strings.Contains(d.Reason, "consecutive failed attempts") {
			t.Errorf("data %+v, endpoint %+v", d, st)
		}
	})
}

// TestManualDisableReportsWebhookDisabled: disabling through internal/endpoint (the PATCH and
// the console) writes the event in the disabling's transaction; a second PATCH disabling
// the disabled endpoint writes none.
func TestManualDisableReportsWebhookDisabled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, nil)
		watcher := newReceiver(t, nil)
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, rc.url(), events.TypeWebhookDisabled)
		watchEp := h.addEndpoint(survey, watcher.url(), events.TypeWebhookDisabled)
		h.startRelay()
		h.start(h.config("0s"))

		es := endpoints.NewStore(db, h.keys)
		yes := true
		for i := range 2 {
			_, _, evID, err := es.Update(context.Background(), survey, ep.ID, endpoints.Patch{Disabled: &yes}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if (evID != "") != (i == 0) {
				t.Errorf("PATCH %d wrote event %q", i+1, evID)
			}
		}
		waitFor(t, "the webhook.disabled delivery", func() bool {
			return len(operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)) == 1
		})
		waitFor(t, "every delivery to settle", func() bool { return h.settled(survey) })
		got := operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)
		if d := disabledData(t, got[0]); len(got) != 1 || d.WebhookID != ep.ID || d.Reason != endpoints.ReasonManual {
			t.Errorf("got %d events, data %+v", len(got), d)
		}
		if n := rc.count(); n != 0 {
			t.Errorf("the disabled endpoint got %d requests", n)
		}
	})
}

// TestExhaustedReportsDeliveryExhausted: a delivery whose short schedule runs out makes one
// delivery.exhausted with its fields, for a subscribed sibling only; the failing endpoint,
// subscribed too, does not get it.
func TestExhaustedReportsDeliveryExhausted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		dead := newReceiver(t, always(http.StatusInternalServerError))
		watcher := newReceiver(t, nil)
		survey := h.addSurvey("")
		deadEp := h.addEndpoint(survey, dead.url(), events.TypeSessionSubmitted, events.TypeDeliveryExhausted)
		watchEp := h.addEndpoint(survey, watcher.url(), events.TypeDeliveryExhausted)
		h.startRelay()
		h.start(h.config("0s,30ms,30ms"))

		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the delivery.exhausted delivery", func() bool {
			return len(operationalRequests(t, watcher, watchEp, events.TypeDeliveryExhausted)) == 1
		})
		waitFor(t, "every delivery to settle", func() bool { return h.settled(survey) })
		got := operationalRequests(t, watcher, watchEp, events.TypeDeliveryExhausted)
		if len(got) != 1 {
			t.Fatalf("watcher got %d delivery.exhausted, want 1", len(got))
		}
		var d events.DeliveryExhaustedData
		if err := json.Unmarshal(got[0].Data, &d); err != nil {
			t.Fatal(err)
		}
		want := events.DeliveryExhaustedData{WebhookID: deadEp.ID, DeliveryID: delivery.DeliveryID(ev.ID, deadEp.ID), EventID: ev.ID,
			Attempts: 3, LastError: string(webhook.CodeHTTPStatus)}
		if d != want {
			t.Errorf("data %+v, want %+v", d, want)
		}
		if n := dead.count(); n != 3 {
			t.Errorf("the failing endpoint got %d requests, want the 3 attempts of the submission", n)
		}
		if n := h.storedOperational(survey, events.TypeDeliveryExhausted); n != 1 {
			t.Errorf("%d delivery.exhausted events stored, want 1", n)
		}
		// Counted just after the commit, which the relay's publish may overtake.
		waitFor(t, "the operational events metric", func() bool {
			return counterValue(t, h.metrics.OperationalEvents, events.TypeDeliveryExhausted) == 1
		})
	})
}

// TestExhaustedReportsDoNotLoop: two failing endpoints subscribed to delivery.exhausted each
// get the report of the other's failure once; those deliveries fail too and report nothing.
func TestExhaustedReportsDoNotLoop(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		a := newReceiver(t, always(http.StatusInternalServerError))
		b := newReceiver(t, always(http.StatusInternalServerError))
		survey := h.addSurvey("")
		epA := h.addEndpoint(survey, a.url(), events.TypeSessionSubmitted, events.TypeDeliveryExhausted)
		epB := h.addEndpoint(survey, b.url(), events.TypeSessionSubmitted, events.TypeDeliveryExhausted)
		h.startRelay()
		h.start(h.config("0s,20ms"))

		h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "both reports to fail", func() bool {
			return len(h.deliveries("survey_id = $1 AND status = 'failed'", survey)) == 4 && h.settled(survey)
		})
		// A loop would go on from here: give it the time of several rounds.
		time.Sleep(500 * time.Millisecond)
		if n := h.storedOperational(survey, events.TypeDeliveryExhausted); n != 2 {
			t.Errorf("%d delivery.exhausted events, want 2 (one per failed submission delivery)", n)
		}
		if n := len(h.deliveries("survey_id = $1", survey)); n != 4 {
			t.Errorf("%d deliveries, want 4", n)
		}
		for _, c := range []struct {
			rc    *receiver
			ep    testEndpoint
			about string
		}{{a, epA, epB.ID}, {b, epB, epA.ID}} {
			got := operationalRequests(t, c.rc, c.ep, events.TypeDeliveryExhausted)
			if len(got) != 2 { // two attempts of the one report
				t.Errorf("%s got %d delivery.exhausted requests, want 2 attempts of one", c.ep.ID, len(got))
			}
			for _, ev := range got {
				if events.AboutWebhook(ev.Type, mustMarshal(t, ev)) != c.about {
					t.Errorf("%s got a report about %s", c.ep.ID, ev.Data)
				}
			}
		}
	})
}

func mustMarshal(t *testing.T, ev events.Event) []byte {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOperationalEventsSurviveALostPublish: the dispatcher that disabled the endpoint stops
// before any relay runs; the event waits in the outbox and is delivered once a relay and
// another dispatcher start.
func TestOperationalEventsSurviveALostPublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		gone := newReceiver(t, always(http.StatusGone))
		watcher := newReceiver(t, nil)
		survey := h.addSurvey("")
		goneEp := h.addEndpoint(survey, gone.url())
		watchEp := h.addEndpoint(survey, watcher.url(), events.TypeWebhookDisabled)
		stop := h.start(h.config("0s"))
		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the 410 to be recorded", func() bool {
			ds := h.deliveries("id = $1", delivery.DeliveryID(ev.ID, goneEp.ID))
			return len(ds) == 1 && ds[0].Status == StatusFailed
		})
		stop()
		if n := h.storedOperational(survey, events.TypeWebhookDisabled); n != 1 {
			t.Fatalf("%d webhook.disabled in the outbox after the commit, want 1", n)
		}
		if watcher.count() != 0 {
			t.Fatal("delivered without a relay")
		}

		h.startRelay()
		h.start(h.config("0s"))
		waitFor(t, "the webhook.disabled delivery", func() bool {
			return len(operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)) == 1
		})
		if d := disabledData(t, operationalRequests(t, watcher, watchEp, events.TypeWebhookDisabled)[0]); d.WebhookID != goneEp.ID {
			t.Errorf("data %+v", d)
		}
	})
}

// TestOperationalEventAboutAFIFOEndpointKeepsItsLane: a FIFO endpoint that subscribes to
// delivery.exhausted never gets the report of its own failure, but records it skipped, so its
// lane does not wait FIFOGapWait for a delivery row that would never come.
func TestOperationalEventAboutAFIFOEndpointKeepsItsLane(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		// The first request is refused for good (415: fail now); the rest are delivered.
		rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
			if n == 1 {
				return http.StatusUnsupportedMediaType
			}
			return http.StatusOK
		})
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, rc.url(), events.TypeSessionSubmitted, events.TypeDeliveryExhausted)
		h.setFIFO(ep)
		h.startRelay()
		cfg := h.config("0s,30ms")
		cfg.FIFOGapWait = 10 * time.Minute // far beyond waitFor's deadline
		h.start(cfg)

		first := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the first delivery to fail and its report to be stored", func() bool {
			ds := h.deliveries("id = $1", delivery.DeliveryID(first.ID, ep.ID))
			return len(ds) == 1 && ds[0].Status == StatusFailed && h.storedOperational(survey, events.TypeDeliveryExhausted) == 1
		})
		second := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the next event through the lane", func() bool {
			ds := h.deliveries("id = $1", delivery.DeliveryID(second.ID, ep.ID))
			return len(ds) == 1 && ds[0].Status == StatusSucceeded
		})
		about := h.deliveries("webhook_id = $1 AND type = $2", ep.ID, events.TypeDeliveryExhausted)
		if len(about) != 1 || about[0].Status != StatusSkipped || about[0].LastError != CodeAboutEndpoint {
			t.Fatalf("the report about the endpoint, for the endpoint: %+v, want one skipped %s", about, CodeAboutEndpoint)
		}
		if got := operationalRequests(t, rc, ep, events.TypeDeliveryExhausted); len(got) != 0 {
			t.Errorf("the endpoint got %d reports of its own failure", len(got))
		}
	})
}
