package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// storeDue stores n events of the survey in the archive and a pending delivery of each to
// the endpoint, one attempt made and the next due now: a backlog of retries.
func (h *harness) storeDue(surveyID string, ep testEndpoint, n int) {
	h.t.Helper()
	ctx := context.Background()
	now := store.Micros(time.Now())
	for range n {
		ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: surveyID,
			SessionID: randomID("ses_"), UserID: randomID("usr_"), Username: "respondent-1", SubmissionID: randomID("sub_"),
			Data: json.RawMessage(`{"recall":{}}`)}
		body, err := ev.Marshal()
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.db.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, created_at, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, ev.ID, ev.Type, surveyID, events.Subject(surveyID, ev.Type), body, now); err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status,
			attempts, last_error, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', 1, 'connection_error', $7, $7, $7)`,
			delivery.DeliveryID(ev.ID, ep.ID), ev.ID, ep.ID, surveyID, ev.Type, ep.URL, now); err != nil {
			h.t.Fatal(err)
		}
	}
}

// TestRetrySchedulerClaimsAsRoomFrees: with a backlog of due retries on two slow endpoints,
// the scheduler claims again whenever attempts finish, not at the next poll (an hour away
// here). Before, a claim that found the endpoints' slots still busy sent the scheduler to
// sleep for PollInterval with the backlog still due.
func TestRetrySchedulerClaimsAsRoomFrees(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int {
			time.Sleep(150 * time.Millisecond)
			return http.StatusOK
		})
		survey := h.addSurvey("")
		const n = 16
		var eps []testEndpoint
		for range 2 {
			ep := h.addEndpoint(survey, rc.url())
			h.storeDue(survey, ep, n)
			eps = append(eps, ep)
		}
		cfg := h.config("0s,1h")
		cfg.Concurrency, cfg.EndpointConcurrency, cfg.BatchSize = 4, 2, 4
		cfg.PollInterval = time.Hour
		h.start(cfg)
		waitFor(t, "the backlog to be delivered", func() bool {
			return len(h.deliveries("status = 'succeeded'")) == 2*n
		})
		if got := rc.count(); got != 2*n {
			t.Errorf("receiver got %d requests, want %d", got, 2*n)
		}
		for _, ep := range eps {
			for _, d := range h.deliveries("webhook_id = $1", ep.ID) {
				if d.Attempts != 2 {
					t.Errorf("delivery %s: %d attempts, want 2", d.ID, d.Attempts)
				}
			}
		}
	})
}

// TestRetrySchedulerFullBatchClaimsAgain: a batch smaller than the room left makes the
// scheduler claim again at once until the backlog is claimed, with no poll in between.
func TestRetrySchedulerFullBatchClaimsAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, storetest.Postgres(t))
	rc := newReceiver(t, always(http.StatusOK))
	survey := h.addSurvey("")
	const n = 40
	for range 4 {
		h.storeDue(survey, h.addEndpoint(survey, rc.url()), n)
	}
	cfg := h.config("0s,1h")
	cfg.Concurrency, cfg.EndpointConcurrency, cfg.BatchSize = 64, 16, 5
	cfg.PollInterval = time.Hour
	h.start(cfg)
	waitFor(t, "the backlog to be delivered", func() bool {
		return len(h.deliveries("status = 'succeeded'")) == 4*n
	})
	if got := rc.count(); got != 4*n {
		t.Errorf("receiver got %d requests, want %d", got, 4*n)
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSlowClaimsCountedAndLoggedOnce: with the threshold at zero every claim is slow; each is
// counted in dispatch24_retry_claims_slow_total and timed in the histogram, and a storm of
// them makes one warning line, not one per claim.
func TestSlowClaimsCountedAndLoggedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		var logs syncBuffer
		cfg := h.config("0s")
		cfg.PollInterval = 5 * time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		h.start(cfg, func(d *Dispatcher) { d.sched.slowAfter = 0 })
		waitFor(t, "ten slow claims", func() bool { return plainCounter(t, h.metrics.RetryClaimsSlow) >= 10 })
		var m dto.Metric
		if err := h.metrics.RetryClaimDuration.Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetHistogram().GetSampleCount(); n < 10 {
			t.Errorf("claim duration histogram has %d samples, want at least 10", n)
		}
		if n := strings.Count(logs.String(), "retry claims are slow"); n != 1 {
			t.Errorf("%d slow-claim warnings for %v slow claims, want 1:\n%s", n, plainCounter(t, h.metrics.RetryClaimsSlow), logs.String())
		}
	})
}
