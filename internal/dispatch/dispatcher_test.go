package dispatch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const jwtSecret = "survey-jwt-secret-for-tests-0123456789"

// TestDeliversSignedEvent checks one delivery end to end: the receiver gets the exact body,
// verifiable with pkg/webhook's Verifier and by an independent computation, with both
// signatures during a rotation, the JWT bound to the body, and the trace carried over.
func TestDeliversSignedEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, nil)
		survey := h.addSurvey(jwtSecret)
		ep := h.addEndpoint(survey, rc.url())
		previous := webhook.NewSecret()
		until := store.Micros(time.Now().Add(24 * time.Hour))
		if _, err := db.Exec(context.Background(),
			"UPDATE webhooks SET previous_secret = $1, previous_secret_until = $2 WHERE id = $3",
			h.keys.Seal(secret.WebhookSecret(ep.ID), previous), until, ep.ID); err != nil {
			t.Fatal(err)
		}
		other := h.addEndpoint(survey, rc.url(), events.TypeSessionStarted) // not subscribed to submitted
		h.start(h.config("0s"))

		ctx, span := h.tp.Tracer("test").Start(context.Background(), "submit")
		ev := h.publish(ctx, survey, events.TypeSessionSubmitted)
		span.End()

		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the delivery to succeed", func() bool {
			ds := h.deliveries("id = $1", id)
			return len(ds) == 1 && ds[0].Status == StatusSucceeded
		})
		reqs := rc.requests()
		if len(reqs) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(reqs))
		}
		req := reqs[0]
		want, _ := ev.Marshal()
		if !bytes.Equal(req.Body, want) {
			t.Errorf("body = %s, want the published envelope %s", req.Body, want)
		}

		// pkg/webhook's Verifier, with either secret alone.
		for _, secret := range []string{ep.Secret, previous} {
			v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{secret}, JWTSecret: jwtSecret, Audience: ep.URL})
			got, err := v.Verify(req.Header, req.Body)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.ID != ev.ID || got.Claims.Subject != ev.Username || got.Claims.SurveyID != survey ||
				got.Claims.SessionID != ev.SessionID || got.Claims.UserID != ev.UserID ||
				got.Claims.SubmissionID != ev.SubmissionID || got.Claims.Type != ev.Type {
				t.Errorf("verified %+v, claims %+v do not match the event %+v", got, got.Claims, ev)
			}
		}

		// An independent check: HMAC-SHA256 over id.timestamp.body with each secret, and the
		// JWT verified by hand.
		if got := req.Header.Get("webhook-id"); got != ev.ID {
			t.Errorf("webhook-id = %q, want %q", got, ev.ID)
		}
		ts := req.Header.Get("webhook-timestamp")
		sigs := strings.Fields(req.Header.Get("webhook-signature"))
		if len(sigs) != 2 {
			t.Fatalf("webhook-signature has %d signatures during a rotation, want 2", len(sigs))
		}
		for i, secret := range []string{ep.Secret, previous} {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			mac := hmac.New(sha256.New, key)
			fmt.Fprintf(mac, "%s.%s.%s", ev.ID, ts, req.Body)
			if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); sigs[i] != want {
				t.Errorf("signature %d = %s, want %s", i, sigs[i], want)
			}
		}
		claims := verifyJWTByHand(t, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "), []byte(jwtSecret))
		sum := sha256.Sum256(req.Body)
		if claims["bodySha256"] != base64.RawURLEncoding.EncodeToString(sum[:]) || claims["aud"] != ep.URL ||
			claims["iss"] != "intake24" || claims["sub"] != ev.Username {
			t.Errorf("JWT claims %v do not bind the body, URL, issuer and username", claims)
		}

		// The trace: traceparent continues the submission's trace, through "dispatch process"
		// and "dispatch attempt" spans.
		traceID := span.SpanContext().TraceID().String()
		if tp := req.Header.Get("traceparent"); !strings.Contains(tp, traceID) {
			t.Errorf("traceparent %q does not continue trace %s", tp, traceID)
		}
		waitFor(t, "the dispatch spans", func() bool {
			names := map[string]bool{}
			for _, s := range h.spans.Ended() {
				if s.SpanContext().TraceID() == span.SpanContext().TraceID() {
					names[s.Name()] = true
				}
			}
			return names["dispatch process"] && names["dispatch attempt"]
		})

		d := h.delivery(id)
		if d.Attempts != 1 || d.NextAttemptAt != nil || d.LastError != "" || d.LastStatusCode == nil || *d.LastStatusCode != 204 {
			t.Errorf("delivery = %+v, want 1 attempt, 204, no next attempt", d)
		}
		as := h.attempts(id)
		if len(as) != 1 || as[0].N != 1 || as[0].Error != "" || as[0].StatusCode == nil || *as[0].StatusCode != 204 {
			t.Errorf("attempt log = %+v, want one delivered attempt", as)
		}
		if n := len(h.deliveries("webhook_id = $1", other.ID)); n != 0 {
			t.Errorf("the endpoint not subscribed to the type got %d deliveries", n)
		}
		waitFor(t, "the metrics", func() bool {
			return counterValue(t, h.metrics.Attempts, "delivered") == 1 && counterValue(t, h.metrics.Deliveries, StatusSucceeded) == 1
		})
	})
}

// verifyJWTByHand checks an HS256 JWT without any JWT library and returns its claims.
func verifyJWTByHand(t *testing.T, token string, key []byte) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatal("JWT signature does not verify")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// TestRetriesUntilDelivered: a receiver failing the first two times gets the event on the
// third attempt with the same webhook-id; the attempt log has three rows.
func TestRetriesUntilDelivered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
			if n <= 2 {
				w.Write([]byte("not yet\x00\xff")) //nolint:errcheck // a NUL and bad UTF-8 must not break the log
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, rc.url())
		h.start(h.config("0s,50ms,100ms,100ms"))

		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the delivery to succeed", func() bool {
			ds := h.deliveries("id = $1", id)
			return len(ds) == 1 && ds[0].Status == StatusSucceeded
		})
		reqs := rc.requests()
		if len(reqs) != 3 {
			t.Fatalf("receiver got %d requests, want 3", len(reqs))
		}
		for i, r := range reqs {
			if got := r.Header.Get("webhook-id"); got != ev.ID {
				t.Errorf("request %d: webhook-id %q, want %q", i+1, got, ev.ID)
			}
			if r.Header.Get("Authorization") != "" {
				t.Errorf("request %d: Authorization sent for a survey without a jwtSecret", i+1)
			}
			v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{ep.Secret}})
			if _, err := v.Verify(r.Header, r.Body); err != nil {
				t.Errorf("request %d: %v", i+1, err)
			}
		}
		d := h.delivery(id)
		if d.Attempts != 3 || d.NextAttemptAt != nil || d.LeaseUntil != nil {
			t.Errorf("delivery = %+v, want 3 attempts, no next attempt, no lease", d)
		}
		as := h.attempts(id)
		if len(as) != 3 {
			t.Fatalf("attempt log has %d rows, want 3", len(as))
		}
		for i, a := range as {
			wantCode, wantErr := int64(500), "http_error: HTTP 500 Internal Server Error"
			if i == 2 {
				wantCode, wantErr = 200, ""
			}
			if a.N != i+1 || a.StatusCode == nil || *a.StatusCode != wantCode || a.Error != wantErr {
				t.Errorf("attempt %d = %+v, want n %d, %d, error %q", i+1, a, i+1, wantCode, wantErr)
			}
		}
		if !strings.HasPrefix(as[0].ResponseBody, "not yet") {
			t.Errorf("response body %q not kept", as[0].ResponseBody)
		}
		st := h.webhookState(ep.ID)
		if st.ConsecutiveFailures != 0 || st.FirstFailureAt != nil {
			t.Errorf("endpoint failure counters %+v not reset by the success", st)
		}
	})
}

// TestDeadEndpointFailsThenReplayDelivers: a delivery fails after the whole schedule; a replay
// row inserted the way the API does then delivers the event.
func TestDeadEndpointFailsThenReplayDelivers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, always(http.StatusBadGateway))
		survey := h.addSurvey(jwtSecret)
		ep := h.addEndpoint(survey, rc.url())
		h.start(h.config("0s,50ms,50ms"))

		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the delivery to fail", func() bool {
			ds := h.deliveries("id = $1", id)
			return len(ds) == 1 && ds[0].Status == StatusFailed
		})
		d := h.delivery(id)
		if d.Attempts != 3 || d.NextAttemptAt != nil || d.LastError != "http_error" || *d.LastStatusCode != 502 {
			t.Errorf("failed delivery = %+v", d)
		}
		if n := len(h.attempts(id)); n != 3 {
			t.Errorf("attempt log has %d rows, want 3", n)
		}

		rc.setRespond(always(http.StatusOK))
		replay := h.insertReplay(d)
		waitFor(t, "the replay to succeed", func() bool { return h.delivery(replay).Status == StatusSucceeded })
		r := h.delivery(replay)
		if r.Attempts != 1 || r.ReplayOf == nil || *r.ReplayOf != id {
			t.Errorf("replay = %+v", r)
		}
		reqs := rc.requests()
		last := reqs[len(reqs)-1]
		if len(reqs) != 4 || last.Header.Get("webhook-id") != ev.ID {
			t.Errorf("receiver got %d requests, the last with webhook-id %q; want 4, %q", len(reqs), last.Header.Get("webhook-id"), ev.ID)
		}
		v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{ep.Secret}, JWTSecret: jwtSecret, Audience: ep.URL})
		if _, err := v.Verify(last.Header, last.Body); err != nil {
			t.Errorf("replayed delivery does not verify: %v", err)
		}
		if h.delivery(id).Status != StatusFailed {
			t.Error("the replayed delivery changed status")
		}
		if got := counterValue(t, h.metrics.Deliveries, StatusFailed); got != 1 {
			t.Errorf("failed deliveries metric = %v, want 1", got)
		}
	})
}

// TestGoneDisablesEndpoint: 410 fails the delivery and disables the endpoint; the next event
// for it is skipped.
func TestGoneDisablesEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, always(http.StatusGone))
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, rc.url())
		h.start(h.config("0s,50ms,50ms"))

		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the delivery to fail", func() bool {
			ds := h.deliveries("id = $1", id)
			return len(ds) == 1 && ds[0].Status == StatusFailed
		})
		if d := h.delivery(id); d.Attempts != 1 || *d.LastStatusCode != 410 {
			t.Errorf("delivery = %+v, want one attempt answered 410", d)
		}
		st := h.webhookState(ep.ID)
		if !st.Disabled || !strings.Contains(st.DisabledReason, "410") || st.DisabledAt == nil {
			t.Errorf("endpoint = %+v, want disabled for 410", st)
		}
		// The engine stops sending to it at once; other dispatchers for every event accepted after
		// the disabling committed (it moved the webhooks version).
		waitFor(t, "the disabling to apply", func() bool { return plainCounter(t, h.metrics.EndpointsDisabled) == 1 })

		ev2 := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		id2 := delivery.DeliveryID(ev2.ID, ep.ID)
		waitFor(t, "the next delivery to be skipped", func() bool {
			ds := h.deliveries("id = $1", id2)
			return len(ds) == 1 && ds[0].Status == StatusSkipped
		})
		if d := h.delivery(id2); d.Attempts != 0 || d.LastError != CodeEndpointDisabled {
			t.Errorf("skipped delivery = %+v", d)
		}
		if n := rc.count(); n != 1 {
			t.Errorf("receiver got %d requests, want 1", n)
		}
	})
}

// TestSkippedForDisabledEndpoint: an endpoint disabled by an admin gets skipped deliveries,
// recorded but never sent.
func TestSkippedForDisabledEndpoint(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, nil)
		survey := h.addSurvey("")
		disabled := h.addEndpoint(survey, rc.url())
		enabled := h.addEndpoint(survey, rc.url())
		if _, err := db.Exec(context.Background(), "UPDATE webhooks SET disabled = TRUE, disabled_reason = 'by an admin' WHERE id = $1", disabled.ID); err != nil {
			t.Fatal(err)
		}
		h.start(h.config("0s"))
		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "both deliveries", func() bool {
			return len(h.deliveries("event_id = $1 AND status <> 'pending'", ev.ID)) == 2
		})
		if d := h.delivery(delivery.DeliveryID(ev.ID, disabled.ID)); d.Status != StatusSkipped || d.LastError != CodeEndpointDisabled || d.Attempts != 0 {
			t.Errorf("disabled endpoint's delivery = %+v, want skipped", d)
		}
		if d := h.delivery(delivery.DeliveryID(ev.ID, enabled.ID)); d.Status != StatusSucceeded {
			t.Errorf("enabled endpoint's delivery = %+v, want succeeded", d)
		}
		if n := rc.count(); n != 1 {
			t.Errorf("receiver got %d requests, want 1", n)
		}
		waitFor(t, "the skipped metric", func() bool { return counterValue(t, h.metrics.Deliveries, StatusSkipped) == 1 })
	})
}

// TestAutoDisable: consecutive failures past the threshold disable the endpoint; its due
// retries then fail and its new events are skipped. A success resets the counters.
func TestAutoDisable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		dead := newReceiver(t, always(http.StatusInternalServerError))
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, dead.url())
		cfg := h.config("0s,30ms,30ms,30ms,30ms,30ms")
		cfg.DisableAfterFailures = 3
		cfg.DisableAfter = time.Millisecond
		h.start(cfg)

		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the endpoint to be disabled", func() bool { return plainCounter(t, h.metrics.EndpointsDisabled) == 1 })
		st := h.webhookState(ep.ID)
		if st.ConsecutiveFailures < 3 || !strings.Contains(st.DisabledReason, "consecutive failed attempts") {
			t.Errorf("endpoint = %+v", st)
		}
		id := delivery.DeliveryID(ev.ID, ep.ID)
		waitFor(t, "the pending delivery to fail", func() bool { return h.delivery(id).Status == StatusFailed })
		if d := h.delivery(id); d.LastError != CodeEndpointDisabled || d.Attempts != 3 {
			t.Errorf("delivery = %+v, want failed after 3 attempts with endpoint_disabled", d)
		}
		if got := plainCounter(t, h.metrics.EndpointsDisabled); got != 1 {
			t.Errorf("EndpointsDisabled = %v, want 1", got)
		}
		ev2 := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "the next event to be skipped", func() bool {
			ds := h.deliveries("id = $1", delivery.DeliveryID(ev2.ID, ep.ID))
			return len(ds) == 1 && ds[0].Status == StatusSkipped
		})

		// A flaky endpoint under the threshold: its counters go up, then back to zero.
		flaky := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		survey2 := h.addSurvey("")
		ep2 := h.addEndpoint(survey2, flaky.url())
		ev3 := h.publish(context.Background(), survey2, events.TypeSessionSubmitted)
		waitFor(t, "the flaky endpoint's delivery", func() bool {
			ds := h.deliveries("id = $1", delivery.DeliveryID(ev3.ID, ep2.ID))
			return len(ds) == 1 && ds[0].Status == StatusSucceeded
		})
		if st := h.webhookState(ep2.ID); st.Disabled || st.ConsecutiveFailures != 0 || st.FirstFailureAt != nil {
			t.Errorf("flaky endpoint = %+v, want enabled with counters reset", st)
		}
	})
}

// TestRetryAfterHonoured: 429 and 503 with Retry-After push the next attempt at least that
// far, past a shorter schedule step.
func TestRetryAfterHonoured(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			h := newHarness(t, db)
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) int {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					return status
				}
				return http.StatusOK
			})
			survey := h.addSurvey("")
			ep := h.addEndpoint(survey, rc.url())
			stop := h.start(h.config("0s,10ms"))
			ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
			id := delivery.DeliveryID(ev.ID, ep.ID)
			waitFor(t, "the delivery to succeed", func() bool {
				ds := h.deliveries("id = $1", id)
				return len(ds) == 1 && ds[0].Status == StatusSucceeded
			})
			stop()
			as := h.attempts(id)
			if len(as) != 2 {
				t.Fatalf("%d: attempt log has %d rows, want 2", status, len(as))
			}
			if gap := time.Duration(as[1].StartedAt-as[0].StartedAt) * time.Microsecond; gap < time.Second {
				t.Errorf("%d: second attempt %v after the first, want at least Retry-After's 1s", status, gap)
			}
		}
	})
}

// TestRedirectNotFollowed: a 3xx is a failed attempt, and its target never hears of it.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.SQLite(t))
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) int {
		w.Header().Set("Location", target.url())
		return http.StatusTemporaryRedirect
	})
	survey := h.addSurvey("")
	ep := h.addEndpoint(survey, rc.url())
	h.start(h.config("0s"))
	ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
	id := delivery.DeliveryID(ev.ID, ep.ID)
	waitFor(t, "the delivery to fail", func() bool {
		ds := h.deliveries("id = $1", id)
		return len(ds) == 1 && ds[0].Status == StatusFailed
	})
	if d := h.delivery(id); d.LastError != "redirect" || *d.LastStatusCode != 307 {
		t.Errorf("delivery = %+v, want a redirect failure", d)
	}
	if n := target.count(); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

// TestBlockedAddress: without WEBHOOK_ALLOW_NETS a receiver on 127.0.0.1 is refused at
// connection time.
func TestBlockedAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.SQLite(t))
	rc := newReceiver(t, nil)
	survey := h.addSurvey("")
	ep := h.addEndpoint(survey, rc.url())
	cfg := h.config("0s")
	cfg.Client = h.client(false, 2*time.Second)
	h.start(cfg)
	ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
	id := delivery.DeliveryID(ev.ID, ep.ID)
	waitFor(t, "the delivery to fail", func() bool {
		ds := h.deliveries("id = $1", id)
		return len(ds) == 1 && ds[0].Status == StatusFailed
	})
	d := h.delivery(id)
	as := h.attempts(id)
	if d.LastError != "blocked_address" || len(as) != 1 || as[0].Error != "blocked_address" || as[0].StatusCode != nil {
		t.Errorf("delivery = %+v, attempts %+v; want one blocked_address attempt without a status", d, as)
	}
	if n := rc.count(); n != 0 {
		t.Errorf("receiver got %d requests", n)
	}
}

// TestSlowEndpointDoesNotDelayFast: an endpoint that hangs holds at most its own slots; the
// fast endpoint's events are all delivered while the slow one's attempts still hang, and the
// slow one's parked deliveries complete once it answers again.
func TestSlowEndpointDoesNotDelayFast(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.Postgres(t))
	release := make(chan struct{})
	var slowInFlight, slowMax atomic.Int32
	slow := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) int {
		n := slowInFlight.Add(1)
		defer slowInFlight.Add(-1)
		for {
			m := slowMax.Load()
			if n <= m || slowMax.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	fast := newReceiver(t, nil)
	slowSurvey, fastSurvey := h.addSurvey(""), h.addSurvey("")
	slowEp := h.addEndpoint(slowSurvey, slow.url())
	h.addEndpoint(fastSurvey, fast.url())
	cfg := h.config("0s,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms")
	cfg.Concurrency = 8
	cfg.EndpointConcurrency = 2
	cfg.Client = h.client(true, 10*time.Second)
	cfg.AttemptTimeout = 10 * time.Second
	cfg.Lease = 20 * time.Second
	h.start(cfg)

	for range 20 {
		h.publish(context.Background(), slowSurvey, events.TypeSessionSubmitted)
	}
	for range 50 {
		h.publish(context.Background(), fastSurvey, events.TypeSessionSubmitted)
	}
	waitFor(t, "every fast delivery", func() bool { return fast.count() >= 50 })
	select {
	case <-release:
		t.Fatal("released early")
	default:
	}
	if n := slowMax.Load(); n > 2 {
		t.Errorf("slow endpoint had %d attempts in flight, want at most EndpointConcurrency 2", n)
	}
	parked := h.deliveries("webhook_id = $1 AND status = 'pending' AND attempts = 0", slowEp.ID)
	if len(parked) == 0 {
		t.Error("no slow deliveries were parked")
	}
	close(release)
	waitFor(t, "every slow delivery", func() bool {
		return len(h.deliveries("webhook_id = $1 AND status = 'succeeded'", slowEp.ID)) == 20
	})
}

// TestRetriesSurviveRestart: retries are rows in the store, so a dispatcher stopped with
// pending deliveries leaves them to the next one.
func TestRetriesSurviveRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		failFirst := map[string]bool{}
		rc := newReceiver(t, nil)
		rc.setRespond(func(_ int, _ http.ResponseWriter, r *http.Request) int {
			id := r.Header.Get("webhook-id")
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if !failFirst[id] {
				failFirst[id] = true
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		survey := h.addSurvey("")
		ep := h.addEndpoint(survey, rc.url())
		cfg := h.config("0s,4s")
		stop := h.start(cfg)
		for range 5 {
			h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		}
		waitFor(t, "five pending retries", func() bool {
			return len(h.deliveries("webhook_id = $1 AND status = 'pending' AND attempts = 1", ep.ID)) == 5
		})
		stop()
		if n := len(h.deliveries("webhook_id = $1 AND status = 'pending'", ep.ID)); n != 5 {
			t.Fatalf("%d pending deliveries after the stop, want 5", n)
		}

		cfg2 := h.config("0s,4s")
		cfg2.Metrics = nil
		h.start(cfg2)
		waitFor(t, "the retries to succeed", func() bool {
			return len(h.deliveries("webhook_id = $1 AND status = 'succeeded' AND attempts = 2", ep.ID)) == 5
		})
		if n := rc.count(); n != 10 {
			t.Errorf("receiver got %d requests, want 10", n)
		}
	})
}

// TestRedeliveredMessageNotResent: a message redelivered after its deliveries were recorded
// (a dispatcher died between its commit and its ack) sends nothing again, whether the
// delivery succeeded or waits for a retry.
func TestRedeliveredMessageNotResent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db, func(o *harnessOptions) { o.ackWait = 2 * time.Second })
		ok := newReceiver(t, nil)
		failing := newReceiver(t, always(http.StatusInternalServerError))
		survey := h.addSurvey("")
		h.addEndpoint(survey, ok.url())
		h.addEndpoint(survey, failing.url())
		var redeliveries atomic.Int32
		h.start(h.config("0s,1h"), withAcker(watchAcks{skip: true, done: func(msg jetstream.Msg) {
			if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
				redeliveries.Add(1)
			}
		}}))
		ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
		waitFor(t, "two redeliveries handled", func() bool { return redeliveries.Load() >= 2 })
		if n, m := ok.count(), failing.count(); n != 1 || m != 1 {
			t.Errorf("receivers got %d and %d requests, want 1 each", n, m)
		}
		ds := h.deliveries("event_id = $1", ev.ID)
		if len(ds) != 2 {
			t.Fatalf("%d deliveries, want 2", len(ds))
		}
	})
}

// TestShutdownParksWaitingDeliveries: stopping with attempts in flight finishes them and
// records everything; nothing is lost and Run returns nil.
func TestShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.SQLite(t))
	var started atomic.Int32
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int {
		started.Add(1)
		time.Sleep(200 * time.Millisecond)
		return http.StatusOK
	})
	survey := h.addSurvey("")
	ep := h.addEndpoint(survey, rc.url())
	cfg := h.config("0s,50ms")
	cfg.EndpointConcurrency = 2
	stop := h.start(cfg)
	for range 10 {
		h.publish(context.Background(), survey, events.TypeSessionSubmitted)
	}
	waitFor(t, "attempts in flight", func() bool { return started.Load() >= 2 })
	stop()
	for _, d := range h.deliveries("webhook_id = $1", ep.ID) {
		if d.Status != StatusSucceeded && d.Status != StatusPending {
			t.Errorf("delivery %+v", d)
		}
		if d.LeaseUntil != nil {
			t.Errorf("delivery %s still leased after shutdown", d.ID)
		}
	}
	// Whatever was not recorded is still in the stream or the store: a second dispatcher
	// delivers all ten.
	h.start(h.config("0s,50ms"))
	waitFor(t, "all ten delivered", func() bool {
		return len(h.deliveries("webhook_id = $1 AND status = 'succeeded'", ep.ID)) == 10
	})
}

// TestDispatchersShareRetries: two dispatchers on one consumer and one PostgreSQL store claim
// due retries with leases (FOR UPDATE SKIP LOCKED), so every retry is attempted exactly once.
func TestDispatchersShareRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.Postgres(t))
	seen := map[string]int{}
	rc := newReceiver(t, nil)
	rc.setRespond(func(_ int, _ http.ResponseWriter, r *http.Request) int {
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		seen[id]++
		if seen[id] == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	survey := h.addSurvey("")
	ep := h.addEndpoint(survey, rc.url())
	const n = 60
	for range 2 {
		cfg := h.config("0s,300ms,1h")
		cfg.Metrics = nil
		cfg.PollInterval = 5 * time.Millisecond // poll hard, to race each other
		h.start(cfg)
	}
	for range n {
		h.publish(context.Background(), survey, events.TypeSessionSubmitted)
	}
	waitFor(t, "every retry to succeed", func() bool {
		return len(h.deliveries("webhook_id = $1 AND status = 'succeeded'", ep.ID)) == n
	})
	if got := rc.count(); got != 2*n {
		t.Errorf("receiver got %d requests, want %d: a retry was attempted twice", got, 2*n)
	}
	for _, d := range h.deliveries("webhook_id = $1", ep.ID) {
		if d.Attempts != 2 || len(h.attempts(d.ID)) != 2 {
			t.Errorf("delivery %s: %d attempts, %d logged; want 2", d.ID, d.Attempts, len(h.attempts(d.ID)))
		}
	}
}
