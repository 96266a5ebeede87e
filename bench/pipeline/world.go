package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/dispatch24/dispatch24/bench/internal/benchapi"
	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/submission"
	"github.com/dispatch24/dispatch24/internal/survey"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

const (
	adminEmail    = "bench-admin@example.org"
	webhookTTL    = 15 * time.Second // WEBHOOK_TIMEOUT's default
	surveyID      = "bench-pipeline"
	tokenIssuer   = "intake24"
	jwtSecretSize = 48
)

// world is one run's system: a fresh PostgreSQL schema, an embedded NATS server, the API
// in this process, the receiver, and the survey, respondents and endpoints made through
// the API.
type world struct {
	o      options
	stderr io.Writer
	tmp    string

	dbURL      string // with the schema's search_path, for the dispatcher process
	appName    string
	db         *store.DB
	ns         *embeddednats.Server
	nc         *nats.Conn
	js         jetstream.JetStream
	consumer   jetstream.Consumer
	tokenKey   string
	secrets    *secret.Keyring // seals the stored secrets; secretsKey is its key, for subprocesses
	secretsKey string
	metrics    *telemetry.Metrics
	tracing    *telemetry.Tracing
	logger     *slog.Logger
	whClient   *webhook.Client
	allowNets  []*net.IPNet

	apiURL  string
	stopAPI func()
	apiPid  int // with -api process

	apiMetricsURL, dispMetricsURL string
	spans                         *spanLog // in-process: the product's spans, for the stage breakdown // /metrics of the processes ("" in-process)

	pg          *pgCPU
	recv        *receiver
	respondents []string // access tokens
	webhookIDs  []string
	epSecrets   []string // the endpoints' whsec_ secrets, for the bare loop
	jwtSecret   string

	mu      sync.Mutex
	closers []func()
}

func newWorld(ctx context.Context, o options, stderr io.Writer) (w *world, err error) {
	w = &world{o: o, stderr: stderr}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.tmp, err = os.MkdirTemp("", "pipeline-bench-"); err != nil {
		return w, err
	}
	w.onClose(func() { os.RemoveAll(w.tmp) })
	if err := w.openStore(ctx); err != nil {
		return w, err
	}
	if o.purgeRows > 0 {
		if err := w.seedExpired(ctx, o.purgeRows); err != nil {
			return w, err
		}
	}
	w.pg = w.startPGCPU(ctx)
	w.onClose(w.pg.stop)
	if err := w.openNATS(ctx); err != nil {
		return w, err
	}
	if err := w.startAPI(ctx); err != nil {
		return w, err
	}
	if w.recv, err = startReceiver(o.endpoints, o.verify, o.verifyEvery); err != nil {
		return w, err
	}
	w.onClose(w.recv.close)
	if err := w.setup(ctx); err != nil {
		return w, fmt.Errorf("setting up through the API: %w", err)
	}
	return w, nil
}

func (w *world) onClose(f func()) {
	w.mu.Lock()
	w.closers = append(w.closers, f)
	w.mu.Unlock()
}

// close runs the closers in reverse order.
func (w *world) close() {
	w.mu.Lock()
	cs := w.closers
	w.closers = nil
	w.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// openStore creates a fresh schema, as storetest.PostgresURL does for tests, and opens the
// store on it (which applies the migrations).
func (w *world) openStore(ctx context.Context) error {
	base := storetest.DatabaseURL()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "pipeline_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("PostgreSQL at TEST_DATABASE_URL (%s): %w", redactURL(base), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	w.onClose(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			fmt.Fprintf(w.stderr, "dropping schema %s: %v\n", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(w.stderr, "dropping schema %s: %v\n", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	// application_name tells this run's backends apart, for their CPU time.
	w.appName = schema
	w.dbURL = base + sep + "search_path=" + schema + "&application_name=" + schema
	if w.db, err = postgres.Open(ctx, w.dbURL); err != nil {
		return err
	}
	w.onClose(w.db.Close)
	return nil
}

func redactURL(s string) string {
	if i := strings.Index(s, "@"); i > 0 {
		if j := strings.Index(s, "://"); j > 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
	}
	return s
}

// openNATS starts the embedded server (listening on a loopback port when a dispatcher
// process must reach it) and ensures the topology as app.Open does.
func (w *world) openNATS(ctx context.Context) error {
	cfg := embeddednats.Config{StoreDir: filepath.Join(w.tmp, "nats")}
	if w.o.dispatcher == "process" || w.o.api == "process" {
		cfg.Port = -1
	}
	var err error
	if w.ns, err = embeddednats.Start(cfg); err != nil {
		return err
	}
	w.onClose(w.ns.Shutdown)
	if w.nc, err = w.ns.Connect(); err != nil {
		return err
	}
	w.onClose(w.nc.Close)
	if w.js, err = jetstream.New(w.nc); err != nil {
		return err
	}
	if _, err := events.EnsureStream(ctx, w.js, events.StreamConfig{}); err != nil {
		return err
	}
	// The same consumer configuration app.Open ensures, so a dispatcher process agrees.
	w.consumer, err = events.EnsureConsumer(ctx, w.js, events.ConsumerConfig{AckWait: 2*webhookTTL + 30*time.Second})
	return err
}

// startAPI wires the API as cmd/api's newModules does, minus the deliveries API, the
// replayer and the ops console (not on this path), and serves it on 127.0.0.1.
func (w *world) startAPI(ctx context.Context) error {
	var err error
	// Production's logging: info level (a line per request), formatted and thrown away here;
	// warnings and errors go to stderr.
	w.logger = slog.New(telemetry.LogHandler(teeHandler{
		quiet: slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}),
		loud:  slog.NewTextHandler(w.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	}))
	w.metrics = telemetry.NewMetrics()
	// As a production process without OTEL_* has: an SDK tracer provider with no exporter.
	if w.tracing, err = telemetry.SetupTracing(ctx, "dispatch24-api", app.Version, func(string) string { return "" }); err != nil {
		return err
	}
	w.onClose(func() { _ = w.tracing.Shutdown(context.Background()) })
	if tp, ok := w.tracing.Provider.(*sdktrace.TracerProvider); ok {
		w.spans = &spanLog{}
		tp.RegisterSpanProcessor(w.spans)
	}
	var tok [24]byte
	_, _ = rand.Read(tok[:])
	w.tokenKey = hex.EncodeToString(tok[:])
	key := secret.GenerateKey()
	w.secretsKey = secret.EncodeKey(key)
	if w.secrets, err = secret.NewKeyring(key); err != nil {
		return err
	}
	if w.allowNets, err = config.ParseNets("127.0.0.0/8"); err != nil {
		return err
	}
	if w.whClient, err = webhook.NewClient(webhook.ClientConfig{Timeout: webhookTTL, AllowNets: w.allowNets, UserAgent: "Dispatch24/" + app.Version}); err != nil {
		return err
	}
	w.onClose(w.whClient.Close)
	if w.o.api == "process" {
		return w.startAPIProcess(ctx)
	}

	relay, err := outbox.New(outbox.Config{DB: w.db, JS: w.js, Metrics: w.metrics, Logger: w.logger})
	if err != nil {
		return err
	}
	intake, err := submission.New(submission.Config{DB: w.db, Outbox: relay, Metrics: w.metrics, Logger: w.logger})
	if err != nil {
		return err
	}
	surveys, err := survey.New(survey.Config{DB: w.db, Secrets: w.secrets, SurveyAppURL: "http://127.0.0.1/survey", Logger: w.logger})
	if err != nil {
		return err
	}
	authService, err := auth.New(w.db, auth.Config{Respondents: surveys.Store(), Secret: []byte(w.tokenKey), Issuer: tokenIssuer, AccessTTL: time.Hour, RefreshTTL: 2 * time.Hour}, w.logger)
	if err != nil {
		return err
	}
	if err := authService.EnsureAdmin(ctx, auth.FirstAdmin{Email: adminEmail, Password: w.tokenKey, PublicURL: "http://127.0.0.1"}, io.Discard); err != nil {
		return err
	}
	endpoints, err := endpoint.NewService(endpoint.Config{DB: w.db, Secrets: w.secrets, Surveys: surveys.Store(), Client: w.whClient, AllowNets: w.allowNets, Issuer: tokenIssuer, Logger: w.logger})
	if err != nil {
		return err
	}

	rt := httpapi.NewRouter(authService, w.logger)
	httpapi.RegisterHealth(rt)
	for _, reg := range []func(*httpapi.Router){intake.Register, authService.Register, endpoints.Register, surveys.Register} {
		reg(rt)
	}
	handler := httpapi.Middleware(httpapi.MiddlewareConfig{Logger: w.logger, Metrics: w.metrics,
		Tracer: w.tracing.Provider.Tracer("dispatch24/api"), Propagator: w.tracing.Propagator}, rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	w.apiURL = "http://" + ln.Addr().String()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, c := range []app.Component{
		{Name: "http", Run: func(ctx context.Context) error { return httpapi.Serve(ctx, ln, handler, w.logger, 5*time.Second) }},
		{Name: "outbox-relay", Run: relay.Run},
		{Name: "auth-prune", Run: authService.Run},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(w.stderr, "%s stopped: %v\n", c.Name, err)
			}
		}()
	}
	w.stopAPI = func() { stop(); wg.Wait() }
	w.onClose(w.stopAPI)
	return nil
}

// startAPIProcess runs the cmd/api binary on the same schema and the embedded NATS server's
// loopback listener, with the production defaults (DISPATCH_IN_PROCESS is false with
// NATS_URL set: delivery is the dispatcher's), the harness's admin and WEBHOOK_ALLOW_NETS for
// the receiver.
func (w *world) startAPIProcess(ctx context.Context) error {
	p, err := w.launch(ctx, "api", "github.com/dispatch24/dispatch24/cmd/api", w.o.apiBin, []string{
		"DATABASE_URL=" + w.dbURL,
		"NATS_URL=" + w.ns.ClientURL(),
		"TOKEN_SECRET=" + w.tokenKey,
		"SECRETS_KEY=" + w.secretsKey,
		"TOKEN_ISSUER=" + tokenIssuer,
		"ADMIN_EMAIL=" + adminEmail,
		"ADMIN_PASSWORD=" + w.tokenKey,
		"WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=info",
		"DATA_DIR=" + filepath.Join(w.tmp, "api-data"),
	})
	if err != nil {
		return err
	}
	w.apiPid = p.pid
	w.apiURL = "http://" + p.addr
	w.apiMetricsURL = w.apiURL + "/metrics"
	w.stopAPI = func() { _ = p.stop() }
	return nil
}

// teeHandler formats records at the quiet handler's level and also passes warnings and
// worse to the loud one.
type teeHandler struct{ quiet, loud slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.quiet.Enabled(ctx, l) || t.loud.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if t.quiet.Enabled(ctx, r.Level) {
		_ = t.quiet.Handle(ctx, r)
	}
	if t.loud.Enabled(ctx, r.Level) {
		return t.loud.Handle(ctx, r.Clone())
	}
	return nil
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.quiet.WithAttrs(as), t.loud.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.quiet.WithGroup(name), t.loud.WithGroup(name)}
}

// setup makes the survey, the respondents and the endpoints through the API, as an admin
// would, and signs every respondent in with its URL authentication token.
func (w *world) setup(ctx context.Context) error {
	c := &apiClient{Base: w.apiURL, HTTP: &http.Client{Timeout: time.Minute}}
	var signin struct{ RefreshToken string }
	if err := c.Do(ctx, "POST", "/api/signin", "", map[string]string{"email": adminEmail, "password": w.tokenKey}, 200, &signin); err != nil {
		return err
	}
	admin, err := c.Access(ctx, signin.RefreshToken)
	if err != nil {
		return err
	}
	var sec [jwtSecretSize / 2]byte
	_, _ = rand.Read(sec[:])
	w.jwtSecret = hex.EncodeToString(sec[:])
	if err := c.Do(ctx, "POST", "/api/admin/surveys", admin, map[string]any{
		"id": surveyID, "name": "Pipeline benchmark", "jwtSecret": w.jwtSecret,
		"redirect": map[string]string{"url": "https://example.org/done?u={identifier}", "identifier": "username"},
	}, 201, nil); err != nil {
		return err
	}

	var csvBody bytes.Buffer
	csvBody.WriteString("username,name\n")
	for i := range w.o.respondents {
		fmt.Fprintf(&csvBody, "r%05d,Respondent %d\n", i, i)
	}
	if err := c.DoRaw(ctx, "POST", "/api/admin/surveys/"+surveyID+"/respondents/import", admin, "text/csv", csvBody.Bytes(), 200, nil); err != nil {
		return err
	}
	var export []byte
	if err := c.DoRaw(ctx, "GET", "/api/admin/surveys/"+surveyID+"/respondents/export", admin, "", nil, 200, &export); err != nil {
		return err
	}
	rows, err := csv.NewReader(bytes.NewReader(export)).ReadAll()
	if err != nil || len(rows) < 1 {
		return fmt.Errorf("reading the respondents export: %v", err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "authToken" {
			col = i
		}
	}
	if col < 0 || len(rows)-1 != w.o.respondents {
		return fmt.Errorf("the export has %d respondents (want %d) and header %v", len(rows)-1, w.o.respondents, rows[0])
	}
	for _, row := range rows[1:] {
		var rt struct{ RefreshToken string }
		if err := c.Do(ctx, "POST", "/api/signin/token/"+row[col], "", nil, 200, &rt); err != nil {
			return err
		}
		at, err := c.Access(ctx, rt.RefreshToken)
		if err != nil {
			return err
		}
		w.respondents = append(w.respondents, at)
	}

	for k := range w.o.endpoints {
		var ep struct{ ID, Secret string }
		url := w.recv.url(k)
		if err := c.Do(ctx, "POST", "/api/admin/surveys/"+surveyID+"/webhooks", admin,
			map[string]any{"url": url, "events": []string{events.TypeSessionSubmitted}, "description": "bench receiver " + strconv.Itoa(k)}, 201, &ep); err != nil {
			return err
		}
		if err := w.recv.setSecret(k, ep.Secret, w.jwtSecret, tokenIssuer, url); err != nil {
			return err
		}
		w.webhookIDs = append(w.webhookIDs, ep.ID)
		w.epSecrets = append(w.epSecrets, ep.Secret)
	}
	return nil
}

// apiClient is the harnesses' shared client of the API.
type apiClient = benchapi.Client
