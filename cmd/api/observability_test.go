package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/deployments/observability"
	"github.com/dispatch24/dispatch24/internal/runtest"
)

// scrapeMissing fetches url's /metrics and returns the metrics of used it lacks.
func scrapeMissing(t *testing.T, url string, used map[string][]string) []string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return observability.Missing(used, string(b), observability.AfterFirstPurge...)
}

// TestObservabilityMetricsServed: every metric the Grafana dashboard and the Prometheus rules
// in deployments/observability use is on the real api's /metrics once it has done the work
// they watch: a delivery (embedded mode runs the workers in the api) and a refused sign-in.
// A renamed or removed metric fails here instead of leaving a panel empty and an alert silent.
func TestObservabilityMetricsServed(t *testing.T) {
	t.Parallel()
	used, err := observability.UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	rc := newSubmissionReceiver(t)
	p := runtest.Start(t, run, fanoutEnv(t, nil))
	admin, respondent := fanoutSurvey(t, p.URL, "observed")
	addWebhook(t, p.URL, admin, "observed", rc.URL+"/hook")
	id := submit(t, p.URL, respondent, "observed")
	waitUntil(t, "the delivery", func() bool { return rc.has("/hook", id) })
	if code := apiCall(t, "POST", p.URL+"/api/signin", "", map[string]string{"email": fanoutAdmin, "password": "wrong"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("sign-in with a wrong password: %d", code)
	}

	// The delivery's final status is counted just after the receiver answered: poll.
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if missing = scrapeMissing(t, p.URL, used); len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range missing {
		t.Errorf("%s (used by %v) is not on the api's /metrics", name, used[name])
	}
}
