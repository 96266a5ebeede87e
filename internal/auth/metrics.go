package auth

import "github.com/prometheus/client_golang/prometheus"

// Reasons a sign-in is refused, the values of dispatch24_signin_rejections_total's reason
// label. The set is fixed: every refusal maps to one of them, whatever the request held.
const (
	// RejectBadCredentials: unknown account, wrong password, disabled account, unknown or
	// malformed token (401 invalid_credentials).
	RejectBadCredentials = "bad_credentials"
	// RejectRateLimited: too many failures for the account key or the client address (429).
	RejectRateLimited = "rate_limited"
	// RejectBusy: the process's password hashing bound is full (503 busy).
	RejectBusy = "busy"
)

// Metrics are the auth service's Prometheus series.
type Metrics struct {
	// SignInRejections counts refused sign-ins by reason (RejectBadCredentials,
	// RejectRateLimited, RejectBusy).
	SignInRejections *prometheus.CounterVec
}

// NewMetrics registers the auth series on reg (the process's telemetry.Metrics.Registry).
// Every reason starts at zero, so dashboards and alerts see the series before the first
// refusal.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SignInRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch24_signin_rejections_total",
			Help: "Refused sign-ins by reason: bad_credentials (401), rate_limited (429), busy (503).",
		}, []string{"reason"}),
	}
	for _, r := range []string{RejectBadCredentials, RejectRateLimited, RejectBusy} {
		m.SignInRejections.WithLabelValues(r)
	}
	reg.MustRegister(m.SignInRejections)
	return m
}

func (m *Metrics) rejected(reason string) { m.SignInRejections.WithLabelValues(reason).Inc() }
