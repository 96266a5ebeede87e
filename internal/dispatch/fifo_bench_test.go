package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// BenchmarkFIFO measures a FIFO endpoint's throughput on PostgreSQL against its bound: one
// event at a time, each needs at least the receiver's round trip and one commit (its result),
// so no lane goes faster than 1/(rtt + commit). The commit time is measured in the same run
// (a one-row UPDATE in its own transaction, the median of 50) and the bound printed beside
// the figure.
//
//	go test ./internal/dispatch -run '^$' -bench BenchmarkFIFO -benchtime 300x
func BenchmarkFIFO(b *testing.B) {
	for _, rtt := range []time.Duration{time.Millisecond, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%s", rtt), func(b *testing.B) {
			db := storetest.Postgres(b)
			h := newHarness(b, db)
			survey := h.addSurvey("")
			var got atomic.Int64
			rc := newReceiver(b, func(int, http.ResponseWriter, *http.Request) int {
				time.Sleep(rtt)
				got.Add(1)
				return http.StatusNoContent
			})
			ep := h.addEndpoint(survey, rc.url())
			if _, err := db.Exec(context.Background(), "UPDATE webhooks SET ordering = 'fifo' WHERE id = $1", ep.ID); err != nil {
				b.Fatal(err)
			}
			commit := measureCommit(b, db, ep.ID)
			for range b.N {
				h.publish(context.Background(), survey, events.TypeSessionSubmitted)
			}
			cfg := h.config("0s,1s")
			cfg.PollInterval = time.Second // the lane must not rely on polling
			b.ResetTimer()
			start := time.Now()
			h.start(cfg)
			for got.Load() < int64(b.N) {
				time.Sleep(200 * time.Microsecond)
			}
			took := time.Since(start)
			b.StopTimer()
			bound := 1 / (rtt + commit).Seconds()
			b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
			b.ReportMetric(bound, "bound_events/s")
			b.ReportMetric(float64(commit.Microseconds())/1000, "commit_ms")
			var m dto.Metric
			if err := h.metrics.RetryClaimDuration.Write(&m); err == nil && m.GetHistogram().GetSampleCount() > 0 {
				hg := m.GetHistogram()
				b.ReportMetric(1000*hg.GetSampleSum()/float64(hg.GetSampleCount()), "claim_ms")
				b.ReportMetric(float64(hg.GetSampleCount())/float64(b.N), "claims/event")
			}
		})
	}
}

// measureCommit is the median time of a one-row update committed on its own.
func measureCommit(b *testing.B, db *store.DB, webhookID string) time.Duration {
	b.Helper()
	ctx := context.Background()
	var ds []time.Duration
	for range 50 {
		start := time.Now()
		if _, err := db.Exec(ctx, "UPDATE webhooks SET consecutive_failures = consecutive_failures WHERE id = $1", webhookID); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	for i := range ds {
		for j := i + 1; j < len(ds); j++ {
			if ds[j] < ds[i] {
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
	}
	return ds[len(ds)/2]
}
