package dispatch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// harness is one test's world: a database, an embedded NATS server with the topology, a
// tracer that records spans, and helpers to add surveys and endpoints and to publish events
// the way the API's outbox does.
type harness struct {
	t        testing.TB
	db       *store.DB
	nc       *nats.Conn
	js       jetstream.JetStream
	consumer jetstream.Consumer
	metrics  *telemetry.Metrics
	spans    *tracetest.SpanRecorder
	tp       *sdktrace.TracerProvider
	prop     propagation.TextMapPropagator
	logger   *slog.Logger
	keys     *secret.Keyring // seals the secrets the harness stores, as the api does
}

type harnessOptions struct {
	ackWait time.Duration
}

func newHarness(t testing.TB, db *store.DB, opts ...func(*harnessOptions)) *harness {
	t.Helper()
	o := harnessOptions{ackWait: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	srv, err := embeddednats.Start(embeddednats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
	})
	return newHarnessOn(t, db, nc, o)
}

func newHarnessOn(t testing.TB, db *store.DB, nc *nats.Conn, o harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	consumer, err := events.EnsureConsumer(ctx, js, events.ConsumerConfig{AckWait: o.ackWait})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	level := slog.LevelWarn
	if os.Getenv("DISPATCH_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	keys, err := secret.NewKeyring(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		t: t, db: db, nc: nc, js: js, consumer: consumer, keys: keys,
		metrics: telemetry.NewMetrics(),
		spans:   rec,
		tp:      tp,
		prop:    propagation.TraceContext{},
		logger:  slog.New(telemetry.LogHandler(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// client returns a webhook client; allowLoopback exempts 127.0.0.0/8 from the address block.
func (h *harness) client(allowLoopback bool, timeout time.Duration) *webhook.Client {
	h.t.Helper()
	cfg := webhook.ClientConfig{Timeout: timeout}
	if allowLoopback {
		nets, _ := config.ParseNets("127.0.0.0/8")
		cfg.AllowNets = nets
	}
	c, err := webhook.NewClient(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

// config returns a Dispatcher configuration for tests: small, fast, and tolerant of a slow
// machine. Tests adjust it.
func (h *harness) config(schedule string) Config {
	h.t.Helper()
	sched, err := config.ParseSchedule(schedule)
	if err != nil {
		h.t.Fatal(err)
	}
	return Config{
		DB:                  h.db,
		Secrets:             h.keys,
		Consumer:            h.consumer,
		Client:              h.client(true, 2*time.Second),
		AttemptTimeout:      2 * time.Second,
		RetrySchedule:       sched,
		Concurrency:         16,
		EndpointConcurrency: 8,
		PollInterval:        20 * time.Millisecond,
		ParkDelay:           50 * time.Millisecond,
		SlowAfter:           100 * time.Millisecond,
		FlushInterval:       2 * time.Millisecond,
		Lease:               10 * time.Second,
		DrainTimeout:        5 * time.Second,
		Logger:              h.logger,
		Metrics:             h.metrics,
		TracerProvider:      h.tp,
		Propagator:          h.prop,
	}
}

// start runs a Dispatcher until the returned stop is called (or the test ends).
func (h *harness) start(cfg Config, tweak ...func(*Dispatcher)) (stop func()) {
	h.t.Helper()
	d, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range tweak {
		f(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				h.t.Error("Run did not return within 30s of its context ending")
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// watchAcks is an acker for tests: it acks as the engine does, or withholds the ack when
// skip (the message is redelivered after AckWait), then reports the message to done.
type watchAcks struct {
	skip bool
	done func(msg jetstream.Msg)
}

func (a watchAcks) ack(msg jetstream.Msg) {
	if !a.skip {
		jetStreamAcker{}.ack(msg)
	}
	if a.done != nil {
		a.done(msg)
	}
}

// withAcker is a start tweak that settles messages with a instead of acking them.
func withAcker(a acker) func(*Dispatcher) {
	return func(d *Dispatcher) { d.acks = a }
}

func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// addSurvey inserts a survey; jwtSecret "" leaves it NULL.
func (h *harness) addSurvey(jwtSecret string) string {
	h.t.Helper()
	id := randomID("survey-")
	var sealed any
	if jwtSecret != "" {
		sealed = h.keys.Seal(secret.SurveyJWTSecret(id), jwtSecret)
	}
	now := store.Micros(time.Now())
	if _, err := h.db.Exec(context.Background(),
		"INSERT INTO surveys (id, name, jwt_secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
		id, "Test survey", sealed, now); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// testEndpoint is a registered endpoint.
type testEndpoint struct {
	ID, SurveyID, URL, Secret string
}

// addEndpoint registers url for the survey, subscribed to types (default: submitted).
func (h *harness) addEndpoint(surveyID, url string, types ...string) testEndpoint {
	h.t.Helper()
	if len(types) == 0 {
		types = []string{events.TypeSessionSubmitted}
	}
	ep := testEndpoint{ID: randomID("wh_"), SurveyID: surveyID, URL: url, Secret: webhook.NewSecret()}
	now := store.Micros(time.Now())
	typeList := ""
	for i, t := range types {
		if i > 0 {
			typeList += ","
		}
		typeList += t
	}
	if _, err := h.db.Exec(context.Background(),
		`INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $6)`, ep.ID, surveyID, url, typeList, h.keys.Seal(secret.WebhookSecret(ep.ID), ep.Secret), now); err != nil {
		h.t.Fatal(err)
	}
	return ep
}

// publish stores an event like the outbox does (the archive retries read from) and publishes
// it to JetStream, continuing ctx's trace.
func (h *harness) publish(ctx context.Context, surveyID, eventType string) events.Event {
	h.t.Helper()
	return h.publishEvent(ctx, surveyID, eventType, events.NewID())
}

// publishEvent is publish with the event's id given.
func (h *harness) publishEvent(ctx context.Context, surveyID, eventType, id string) events.Event {
	h.t.Helper()
	ev := events.Event{
		ID:           id,
		Type:         eventType,
		Timestamp:    time.Now(),
		SurveyID:     surveyID,
		SessionID:    randomID("ses_"),
		UserID:       randomID("usr_"),
		Username:     "respondent-1",
		SubmissionID: randomID("sub_"),
	}
	if eventType == events.TypeSessionSubmitted {
		ev.Data = json.RawMessage(`{"id":"` + ev.SubmissionID + `","surveyId":"` + surveyID + `","recall":{"meals":[{"name":"Breakfast","foods":[{"code":"TOAST","portion":1.5}]}]}}`)
	}
	body, err := ev.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	trace := events.TraceHeaders(ctx, h.prop)
	headers, _ := json.Marshal(trace)
	now := store.Micros(time.Now())
	subject := events.Subject(surveyID, eventType)
	if _, err := h.db.Exec(context.Background(),
		`INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, ev.ID, eventType, surveyID, subject, body, headers, now); err != nil {
		h.t.Fatal(err)
	}
	// As the API does, the event carries the webhooks version read when it was accepted.
	var version int64
	if err := h.db.QueryRow(context.Background(), "SELECT version FROM webhooks_version").Scan(&version); err != nil {
		h.t.Fatal(err)
	}
	p := &events.Publisher{JS: h.js, Propagator: h.prop}
	if err := p.Publish(ctx, events.Message{ID: ev.ID, Type: eventType, Subject: subject, Payload: body,
		WebhooksVersion: version}); err != nil {
		h.t.Fatal(err)
	}
	return ev
}

// storedDelivery is a deliveries row as tests read it.
type storedDelivery struct {
	ID, EventID, WebhookID, Status, URL, LastError string
	Attempts                                       int
	LastStatusCode                                 *int64
	NextAttemptAt, LeaseUntil                      *int64
	ReplayOf                                       *string
}

func (h *harness) deliveries(where string, args ...any) []storedDelivery {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(),
		`SELECT id, event_id, webhook_id, status, url, last_error, attempts, last_status_code, next_attempt_at,
		        lease_until, replay_of
		 FROM deliveries WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []storedDelivery
	for rows.Next() {
		var d storedDelivery
		if err := rows.Scan(&d.ID, &d.EventID, &d.WebhookID, &d.Status, &d.URL, &d.LastError, &d.Attempts,
			&d.LastStatusCode, &d.NextAttemptAt, &d.LeaseUntil, &d.ReplayOf); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) delivery(id string) storedDelivery {
	h.t.Helper()
	ds := h.deliveries("id = $1", id)
	if len(ds) != 1 {
		h.t.Fatalf("delivery %s: %d rows", id, len(ds))
	}
	return ds[0]
}

type storedAttempt struct {
	N                     int
	StartedAt, DurationMs int64
	StatusCode            *int64
	Error, ResponseBody   string
}

func (h *harness) attempts(deliveryID string) []storedAttempt {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(),
		`SELECT n, started_at, duration_ms, status_code, error, response_body FROM delivery_attempts
		 WHERE delivery_id = $1 ORDER BY n`, deliveryID)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []storedAttempt
	for rows.Next() {
		var a storedAttempt
		if err := rows.Scan(&a.N, &a.StartedAt, &a.DurationMs, &a.StatusCode, &a.Error, &a.ResponseBody); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// webhookState reads an endpoint's engine-maintained columns.
type webhookState struct {
	Disabled            bool
	DisabledReason      string
	DisabledAt          *int64
	ConsecutiveFailures int
	FirstFailureAt      *int64
}

func (h *harness) webhookState(id string) webhookState {
	h.t.Helper()
	var s webhookState
	if err := h.db.QueryRow(context.Background(),
		`SELECT disabled, disabled_reason, disabled_at, consecutive_failures, first_failure_at FROM webhooks WHERE id = $1`, id).
		Scan(&s.Disabled, &s.DisabledReason, &s.DisabledAt, &s.ConsecutiveFailures, &s.FirstFailureAt); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue reads a counter of a vector.
func counterValue(t testing.TB, v *prometheus.CounterVec, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := v.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func plainCounter(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// request is one POST a receiver got.
type request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a webhook receiver on 127.0.0.1 whose answers a test scripts: respond gets the
// 1-based number of the request and returns the status (and may set headers).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	respond func(n int, w http.ResponseWriter, r *http.Request) int
}

func newReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, request{Header: r.Header.Clone(), Body: body, At: time.Now()})
	n := len(rc.got)
	respond := rc.respond
	rc.mu.Unlock()
	status := http.StatusNoContent
	bw := &bufferedWriter{ResponseWriter: w}
	if respond != nil {
		status = respond(n, bw, r)
	}
	w.WriteHeader(status)
	w.Write(bw.buf.Bytes()) //nolint:errcheck // the client may be gone
}

// bufferedWriter holds a scripted answer's body until its status is written.
type bufferedWriter struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

func (rc *receiver) url() string { return rc.URL + "/hook" }

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

func (rc *receiver) setRespond(f func(n int, w http.ResponseWriter, r *http.Request) int) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func always(status int) func(int, http.ResponseWriter, *http.Request) int {
	return func(int, http.ResponseWriter, *http.Request) int { return status }
}

// closedURL returns a URL on 127.0.0.1 where nothing listens: a dead endpoint.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// insertReplay inserts a replay of delivery old the way the API does: a new pending row with
// no attempts, due now.
func (h *harness) insertReplay(old storedDelivery) string {
	h.t.Helper()
	id := randomID("dlv_")
	now := store.Micros(time.Now())
	var surveyID, typ string
	if err := h.db.QueryRow(context.Background(), "SELECT survey_id, type FROM deliveries WHERE id = $1", old.ID).Scan(&surveyID, &typ); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.db.Exec(context.Background(),
		`INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, next_attempt_at,
		                         replay_of, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $7, $7)`,
		id, old.EventID, old.WebhookID, surveyID, typ, old.URL, now, old.ID); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func newVerifier(t testing.TB, cfg webhook.VerifierConfig) *webhook.Verifier {
	t.Helper()
	v, err := webhook.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
