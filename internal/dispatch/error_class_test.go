package dispatch

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// TestClassOf pins the decision table of the package doc's "Error classes".
func TestClassOf(t *testing.T) {
	t.Parallel()
	answer := func(status int) webhook.Result {
		return webhook.Result{StatusCode: status, Code: webhook.CodeHTTPStatus, Gone: status == 410}
	}
	for _, tc := range []struct {
		name string
		res  webhook.Result
		want errorClass
	}{
		{"400", answer(400), classRetry},
		{"401", answer(401), classRetry},
		{"403", answer(403), classRetry},
		{"404", answer(404), classRetry},
		{"405", answer(405), classRetry},
		{"408", answer(408), classRetry},
		{"422", answer(422), classRetry},
		{"429", answer(429), classRetry},
		{"500", answer(500), classRetry},
		{"501", answer(501), classRetry},
		{"503 with Retry-After", webhook.Result{StatusCode: 503, Code: webhook.CodeHTTPStatus, RetryAfter: time.Minute}, classRetry},
		{"413", answer(413), classFailNow},
		{"415", answer(415), classFailNow},
		{"413 with Retry-After", webhook.Result{StatusCode: 413, Code: webhook.CodeHTTPStatus, RetryAfter: time.Minute}, classRetry},
		{"410", answer(410), classDisable},
		{"redirect", webhook.Result{StatusCode: 308, Code: webhook.CodeRedirect}, classRetry},
		{"timeout", webhook.Result{Code: webhook.CodeTimeout}, classRetry},
		{"connection", webhook.Result{Code: webhook.CodeConnection}, classRetry},
		{"dns", webhook.Result{Code: webhook.CodeDNS}, classRetry},
		{"tls", webhook.Result{Code: webhook.CodeTLS}, classRetry},
		{"blocked address", webhook.Result{Code: webhook.CodeBlockedAddress}, classRetry},
		{"invalid request", webhook.Result{Code: webhook.CodeInvalidRequest}, classFailNow},
	} {
		if got := classOf(&tc.res); got != tc.want {
			t.Errorf("%s: class %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestNotRetriedKeepsCode: the attempt log error keeps its code before the first ":" when
// it says why no retry follows, with and without a reason.
func TestNotRetriedKeepsCode(t *testing.T) {
	t.Parallel()
	bare := webhook.Result{Code: webhook.CodeInvalidRequest}
	if got := notRetried(delivery.AttemptError(&bare), &bare, classFailNow); !strings.HasPrefix(got, "invalid_request: not retried") {
		t.Errorf("bare code: %q", got)
	}
	res := webhook.Result{Code: webhook.CodeHTTPStatus, StatusCode: 413, Reason: "HTTP 413 Request Entity Too Large"}
	want := "http_error: HTTP 413 Request Entity Too Large; not retried: "
	if got := notRetried(delivery.AttemptError(&res), &res, classFailNow); !strings.HasPrefix(got, want) {
		t.Errorf("with reason: %q, want prefix %q", got, want)
	}
	retry := webhook.Result{Code: webhook.CodeHTTPStatus, StatusCode: 404, Reason: "HTTP 404 Not Found"}
	if got := notRetried(delivery.AttemptError(&retry), &retry, classRetry); got != "http_error: HTTP 404 Not Found" {
		t.Errorf("retried attempt: %q", got)
	}
}

// TestErrorClassesEndToEnd sends one event per class to a real receiver on 127.0.0.1 and checks
// what the engine did: retried through the schedule, failed after one attempt with the
// attempt log saying why, or failed and disabled the endpoint.
func TestErrorClassesEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			status int // what the receiver answers
			// url builds the endpoint's URL from the receiver's; nil uses it as is.
			url       func(string) string
			class     errorClass
			lastError string
			// why is in the attempt log error of an attempt that ends the delivery at once.
			why string
		}{
			{name: "400", status: http.StatusBadRequest, class: classRetry, lastError: "http_error"},
			{name: "401", status: 401, class: classRetry, lastError: "http_error"},
			{name: "403", status: 403, class: classRetry, lastError: "http_error"},
			{name: "404", status: 404, class: classRetry, lastError: "http_error"},
			{name: "405", status: 405, class: classRetry, lastError: "http_error"},
			{name: "422", status: 422, class: classRetry, lastError: "http_error"},
			{name: "500", status: 500, class: classRetry, lastError: "http_error"},
			{name: "413", status: 413, class: classFailNow, lastError: "http_error",
				why: "http_error: HTTP 413 Request Entity Too Large; not retried: the receiver refuses this body"},
			{name: "415", status: 415, class: classFailNow, lastError: "http_error",
				why: "http_error: HTTP 415 Unsupported Media Type; not retried: the receiver refuses this body"},
			{name: "invalid request", status: 200, class: classFailNow, lastError: "invalid_request",
				url: func(u string) string { return strings.Replace(u, "http://", "http://user:pw@", 1) },
				why: "invalid_request: credentials in the URL are not allowed; not retried: the request cannot be built"},
			{name: "410", status: 410, class: classDisable, lastError: "http_error",
				why: "http_error: HTTP 410 Gone; not retried: the receiver answered 410 Gone, the endpoint is disabled"},
		} {
			h := newHarness(t, db)
			rc := newReceiver(t, always(tc.status))
			survey := h.addSurvey("")
			url := rc.url()
			if tc.url != nil {
				url = tc.url(url)
			}
			ep := h.addEndpoint(survey, url)
			stop := h.start(h.config("0s,20ms,20ms"))
			ev := h.publish(context.Background(), survey, events.TypeSessionSubmitted)
			id := delivery.DeliveryID(ev.ID, ep.ID)
			waitFor(t, tc.name+": the delivery to fail", func() bool {
				ds := h.deliveries("id = $1", id)
				return len(ds) == 1 && ds[0].Status == StatusFailed
			})
			stop()

			d := h.delivery(id)
			as := h.attempts(id)
			st := h.webhookState(ep.ID)
			wantAttempts, wantRequests := 3, 3
			if tc.class != classRetry {
				wantAttempts, wantRequests = 1, 1
			}
			if tc.lastError == "invalid_request" {
				wantRequests = 0
			}
			if d.Attempts != wantAttempts || len(as) != wantAttempts || d.LastError != tc.lastError || d.NextAttemptAt != nil {
				t.Errorf("%s: delivery %+v with %d logged attempts; want %d attempts, lastError %q",
					tc.name, d, len(as), wantAttempts, tc.lastError)
			}
			if n := rc.count(); n != wantRequests {
				t.Errorf("%s: receiver got %d requests, want %d", tc.name, n, wantRequests)
			}
			for _, a := range as {
				if tc.why == "" && strings.Contains(a.Error, "not retried") {
					t.Errorf("%s: attempt %d error %q says not retried", tc.name, a.N, a.Error)
				}
			}
			if tc.why != "" && len(as) == 1 && !strings.HasPrefix(as[0].Error, tc.why) {
				t.Errorf("%s: attempt error %q, want it to start with %q", tc.name, as[0].Error, tc.why)
			}
			if st.Disabled != (tc.class == classDisable) {
				t.Errorf("%s: endpoint disabled = %v, want %v", tc.name, st.Disabled, tc.class == classDisable)
			}
			// Every failed attempt counts towards the endpoint's automatic disabling.
			if tc.class != classDisable && st.ConsecutiveFailures != wantAttempts {
				t.Errorf("%s: consecutive failures = %d, want %d", tc.name, st.ConsecutiveFailures, wantAttempts)
			}
		}
	})
}
