package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// Config configures a Service.
type Config struct {
	// DB is the store. Required.
	DB *store.DB
	// Secrets seals webhook secrets in the store and opens them and survey jwtSecrets
	// (SECRETS_KEY). Required.
	Secrets *secret.Keyring
	// Surveys opens the survey jwtSecret that signs test sends: the surveys' owner,
	// internal/survey's *survey.Store, sealing with the same keyring. Required.
	Surveys SurveySecrets
	// Client sends test deliveries; share the process's one Client. Required.
	Client *webhook.Client
	// AllowNets are the networks exempt from the non-public address rule at registration
	// (WEBHOOK_ALLOW_NETS). Default none.
	AllowNets []*net.IPNet
	// Resolver looks up webhook hosts at registration. Default net.DefaultResolver.
	Resolver webhook.Resolver
	// Issuer is the iss of the Authorization JWT of test sends (TOKEN_ISSUER). Default
	// "intake24".
	Issuer string
	// RotationGrace is how long a rotated-out secret keeps signing. Default 24h.
	RotationGrace time.Duration
	// Propagator injects the trace context into test sends. Default the global propagator.
	Propagator propagation.TextMapPropagator
	// Logger receives test-send outcomes. Default slog.Default().
	Logger *slog.Logger
	// NowFunc returns the current time. Default time.Now.
	NowFunc func() time.Time
	// Metrics receives OperationalEvents (a PATCH that disables an endpoint). Default a
	// registry of its own, which nothing serves.
	Metrics *telemetry.Metrics
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = webhook.DefaultIssuer
	}
	if c.RotationGrace == 0 {
		c.RotationGrace = DefaultRotationGrace
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = telemetry.NewMetrics()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.DB == nil:
		return errors.New("a store is required")
	case c.Secrets == nil:
		return errors.New("a secrets keyring is required")
	case c.Surveys == nil:
		return errors.New("the surveys' store is required")
	case c.Client == nil:
		return errors.New("a webhook client is required")
	case c.RotationGrace < 0:
		return errors.New("rotation grace must not be negative")
	}
	return nil
}

// Service administers webhook endpoints and makes test sends.
type Service struct {
	cfg   Config
	store *Store
	tests testSendRecorder
}

// testSendRecorder stores a test send's event, delivery and attempt (internal/delivery, the
// owner of deliveries, which writes the event through the outbox).
type testSendRecorder interface {
	RecordTestSend(ctx context.Context, ev store.Event, d *delivery.Delivery, attempt delivery.Attempt) error
}

// NewService returns a Service for cfg, with defaults applied.
func NewService(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("endpoint service: %w", err)
	}
	return &Service{cfg: cfg, store: NewStore(cfg.DB, cfg.Secrets), tests: delivery.NewStore(cfg.DB)}, nil
}

// Store returns the service's queries, for other views of the same endpoints (the console).
func (s *Service) Store() *Store { return s.store }

// ValidateURL applies the registration rules to a webhook URL (see webhook.ValidateURL).
func (s *Service) ValidateURL(ctx context.Context, rawURL string) error {
	return webhook.ValidateURL(ctx, rawURL, s.cfg.AllowNets, s.cfg.Resolver)
}

// TestOutcome is the outcome of a test send.
type TestOutcome struct {
	DeliveryID string
	EventID    string
	Result     webhook.Result
}

// SendTest delivers a fresh webhook.test event to e now, signed with its secrets and the
// survey's jwtSecret, and records the event, the delivery and its attempt. The endpoint's
// failure counters are left alone: a test is not part of its delivery record.
func (s *Service) SendTest(ctx context.Context, e *Endpoint) (*TestOutcome, error) {
	jwtSecret, err := s.cfg.Surveys.JWTSecret(ctx, e.SurveyID)
	if err != nil {
		return nil, err
	}
	now := s.cfg.NowFunc()
	ev := events.Event{
		ID:        events.NewID(),
		Type:      events.TypeWebhookTest,
		Timestamp: now,
		SurveyID:  e.SurveyID,
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	trace := events.TraceHeaders(ctx, s.cfg.Propagator)
	header := http.Header{}
	for k, v := range trace {
		header.Set(k, v)
	}
	req := &webhook.Request{
		URL:       e.URL,
		MessageID: ev.ID,
		EventType: ev.Type,
		Body:      body,
		Secrets:   e.SigningSecrets(now),
		Issuer:    s.cfg.Issuer,
		SurveyID:  e.SurveyID,
		Header:    header,
	}
	if jwtSecret != "" {
		req.JWTKey = []byte(jwtSecret)
	}
	res := s.cfg.Client.Send(ctx, req)
	if res.Code == webhook.CodeCanceled {
		return nil, fmt.Errorf("test send: %w", context.Cause(ctx))
	}
	out := &TestOutcome{DeliveryID: delivery.DeliveryID(ev.ID, e.ID), EventID: ev.ID, Result: res}
	started := res.StartedAt
	if started.IsZero() {
		started = now
	}
	d := &delivery.Delivery{
		ID: out.DeliveryID, EventID: ev.ID, WebhookID: e.ID, SurveyID: e.SurveyID, Type: ev.Type, URL: e.URL,
		Status: delivery.StatusFailed, Attempts: 1, LastStatusCode: res.StatusCode, LastError: string(res.Code),
		CreatedAt: started, UpdatedAt: s.cfg.NowFunc(),
	}
	if res.Delivered {
		d.Status, d.LastError = delivery.StatusSucceeded, ""
	}
	attempt := delivery.Attempt{
		DeliveryID: out.DeliveryID, N: 1, StartedAt: started, Duration: res.Duration, StatusCode: res.StatusCode,
		Error: delivery.AttemptError(&res), ResponseBody: delivery.ResponseBodyText(res.ResponseBody),
	}
	record := store.Event{
		ID: ev.ID, Type: ev.Type, SurveyID: e.SurveyID, Subject: events.Subject(e.SurveyID, ev.Type),
		Payload: body, Trace: trace, CreatedAt: started,
	}
	// The attempt happened; record it even if the caller has gone meanwhile.
	if err := s.tests.RecordTestSend(context.WithoutCancel(ctx), record, d, attempt); err != nil {
		return nil, err
	}
	s.cfg.Logger.InfoContext(ctx, "webhook test sent", "webhook_id", e.ID, "survey_id", e.SurveyID,
		"delivery_id", out.DeliveryID, "delivered", res.Delivered, "status_code", res.StatusCode,
		"error", string(res.Code), "detail", res.Detail(), "duration", res.Duration)
	return out, nil
}
