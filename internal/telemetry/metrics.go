// Package telemetry sets up what every process reports about itself: Prometheus metrics on a
// registry of its own, OpenTelemetry tracing configured from the standard OTEL_* variables,
// and a slog handler that stamps trace ids on log lines.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every Prometheus series of a process. Ids never become labels: labels are
// outcomes, types, routes and status codes.
type Metrics struct {
	Registry *prometheus.Registry

	// HTTPRequests counts API requests by route pattern ("unmatched" for none), method (a
	// standard one, or "other") and status code: no label is taken from a request as it is.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration is the API's request latency by route pattern.
	HTTPDuration *prometheus.HistogramVec
	// EventsPublished counts events acknowledged by JetStream, by event type.
	EventsPublished *prometheus.CounterVec
	// PublishErrors counts failed publishes to JetStream (the outbox keeps the event).
	PublishErrors prometheus.Counter
	// Submissions counts accepted submissions (not idempotent repeats).
	Submissions prometheus.Counter
	// Deliveries counts deliveries reaching a final status: succeeded, failed, skipped.
	Deliveries *prometheus.CounterVec
	// Attempts counts delivery attempts by outcome: delivered, http_error, timeout,
	// connection_error, blocked_address, redirect …
	Attempts *prometheus.CounterVec
	// AttemptDuration is the latency of delivery attempts.
	AttemptDuration prometheus.Histogram
	// EndpointsDisabled counts endpoints disabled automatically.
	EndpointsDisabled prometheus.Counter
	// OperationalEvents counts operational events written to the outbox (pkg/events:
	// webhook.disabled, delivery.exhausted), by type, in the process that wrote them.
	OperationalEvents *prometheus.CounterVec
	// RetryClaimDuration is the latency of the retry scheduler's claims of due deliveries.
	RetryClaimDuration prometheus.Histogram
	// RetryClaimsSlow counts claims slower than the dispatcher's threshold (1 s; see
	// internal/dispatch), which should stay at zero whatever the backlog.
	RetryClaimsSlow prometheus.Counter
}

// NewMetrics registers the process's series, with the Go runtime and process collectors, on
// a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Registry: reg,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_http_requests_total", Help: "API requests by route, method and status code.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dispatch24_http_request_duration_seconds", Help: "API request latency by route.", Buckets: latency,
		}, []string{"route"}),
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_events_published_total", Help: "Events acknowledged by JetStream, by type.",
		}, []string{"type"}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch24_publish_errors_total", Help: "Failed publishes to JetStream; the outbox retries them.",
		}),
		Submissions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch24_submissions_total", Help: "Accepted survey submissions.",
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_deliveries_total", Help: "Deliveries reaching a final status: succeeded, failed, skipped.",
		}, []string{"status"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_delivery_attempts_total", Help: "Delivery attempts by outcome.",
		}, []string{"outcome"}),
		AttemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dispatch24_delivery_attempt_duration_seconds", Help: "Latency of delivery attempts.", Buckets: latency,
		}),
		EndpointsDisabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch24_endpoints_disabled_total", Help: "Webhook endpoints disabled after repeated failures.",
		}),
		OperationalEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_operational_events_total", Help: "Operational events written (webhook.disabled, delivery.exhausted), by type.",
		}, []string{"type"}),
		RetryClaimDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dispatch24_retry_claim_duration_seconds", Help: "Latency of the retry scheduler's claims of due deliveries.",
			Buckets: latency,
		}),
		RetryClaimsSlow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch24_retry_claims_slow_total", Help: "Retry scheduler claims that took over a second.",
		}),
	}
	reg.MustRegister(m.HTTPRequests, m.HTTPDuration, m.EventsPublished, m.PublishErrors, m.Submissions,
		m.Deliveries, m.Attempts, m.AttemptDuration, m.EndpointsDisabled, m.OperationalEvents, m.RetryClaimDuration, m.RetryClaimsSlow)
	return m
}

// ErrNoValue is returned by a probe that has no value to report now (the consumer's lag while
// NATS is away): the series is left out of that scrape without a log line.
var ErrNoValue = errors.New("no value")

// Probe registers a gauge read at scrape time, for values that live elsewhere (outbox
// backlog, pending retries, consumer lag). A probe that fails or takes over two seconds is
// left out of that scrape and logged, unless it failed with ErrNoValue.
func (m *Metrics) Probe(name, help string, logger *slog.Logger, fn func(ctx context.Context) (float64, error)) {
	m.Registry.MustRegister(&probe{desc: prometheus.NewDesc(name, help, nil, nil), fn: fn, logger: logger})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

type probe struct {
	desc   *prometheus.Desc
	fn     func(ctx context.Context) (float64, error)
	logger *slog.Logger
}

func (p *probe) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *probe) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	v, err := p.fn(ctx)
	if errors.Is(err, ErrNoValue) {
		return
	}
	if err != nil {
		p.logger.Warn("metric probe failed", "metric", p.desc.String(), "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, v)
}
