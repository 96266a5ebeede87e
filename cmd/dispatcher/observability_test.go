package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/deployments/observability"
)

// apiOnlyMetrics are used by the dashboard or the rules and served by the api alone.
var apiOnlyMetrics = []string{"dispatch24_signin_rejections_total"}

// TestObservabilityMetricsServed: every metric the Grafana dashboard and the Prometheus rules
// in deployments/observability use, except the api's own (apiOnlyMetrics), is on the real
// dispatcher's /metrics once it has delivered: the dashboard's delivery, queue and NATS panels
// read the dispatchers too.
func TestObservabilityMetricsServed(t *testing.T) {
	used, err := observability.UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range apiOnlyMetrics {
		if len(used[name]) == 0 {
			t.Errorf("apiOnlyMetrics lists %s, which neither the dashboard nor the rules use", name)
		}
	}
	w := newWorld(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenvFrom(w.env()), io.Discard, &logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})
	addr := waitListening(t, logs.String)
	w.publish(t, 1)
	waitFor(t, 30*time.Second, "the delivery", func() bool { return w.rc.distinct() == 1 })

	// The delivery's final status is counted just after the receiver answered, and the HTTP
	// series after the first scrape: poll.
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if missing = observability.Missing(used, string(b), slices.Concat(apiOnlyMetrics, observability.AfterFirstPurge)...); len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range missing {
		t.Errorf("%s (used by %v) is not on the dispatcher's /metrics", name, used[name])
	}
}
