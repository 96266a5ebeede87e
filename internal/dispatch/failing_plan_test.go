package dispatch

import (
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// TestPlanAsksForTheThresholdOnlyWhereItCanBeCrossed: a batch's failures ask the store to
// check the failure threshold (which makes the batch a transaction) only for endpoints that can
// have been failing for DisableAfter; a small DisableAfter, within the clocks' margin, always
// asks.
func TestPlanAsksForTheThresholdOnlyWhereItCanBeCrossed(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	failure := func(webhookID string, since time.Time) outcome {
		return outcome{d: store.Delivery{ID: "dlv_" + webhookID, WebhookID: webhookID, Status: StatusPending},
			effect: effectFailure, at: now, failing: true, failingSince: since}
	}
	for _, c := range []struct {
		name         string
		disableAfter time.Duration
		batch        []outcome
		want         []string // nil: no check asked
	}{
		{"fresh failures, 24h span", 24 * time.Hour,
			[]outcome{failure("fresh", now.Add(-time.Hour)), failure("justread", now)}, nil},
		{"failing for 25h", 24 * time.Hour,
			[]outcome{failure("old", now.Add(-25*time.Hour)), failure("fresh", now.Add(-time.Hour))}, []string{"old"}},
		{"unknown since (zero) is asked", 24 * time.Hour,
			[]outcome{failure("unknown", time.Time{})}, []string{"unknown"}},
		{"a span within the clocks' margin", 30 * time.Second,
			[]outcome{failure("fresh", now)}, []string{"fresh"}},
		{"no span", 0,
			[]outcome{failure("fresh", now)}, []string{"fresh"}},
	} {
		w := newResultWriter(resultWriterConfig{
			NowFunc:              func() time.Time { return now },
			Metrics:              telemetry.NewMetrics(),
			DisableAfterFailures: 100,
			DisableAfter:         c.disableAfter,
			BatchSize:            8,
		})
		r := w.plan(c.batch)
		var got []string
		if r.Failing != nil {
			got = r.Failing.WebhookIDs
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: threshold checked for %v, want %v", c.name, got, c.want)
		}
		if len(r.Counters) != len(c.batch) {
			t.Errorf("%s: %d counter updates, want %d: every failure is counted", c.name, len(r.Counters), len(c.batch))
		}
	}
}
