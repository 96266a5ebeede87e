// Command dispatcher runs Dispatch24's delivery workers in the production shape: it joins the
// shared JetStream consumer on an external NATS cluster (NATS_URL), records deliveries in
// PostgreSQL (DATABASE_URL), and serves /healthz, /readyz and /metrics on HTTP_ADDR. Run as
// many replicas as the load needs; they share the consumer and the retry queue in the store.
//
// Embedded mode (no NATS_URL) has no place for a separate dispatcher: there the api runs the
// workers in its own process.
//
// The same binary carries the operators' commands (internal/opscli), which talk to the API
// with a personal access token and need none of the workers' configuration:
//
//	dispatcher deliveries list [--survey S] [--status failed] [--since 24h] [--json] …
//	dispatcher deliveries show ID
//	dispatcher replay --delivery ID
//	dispatcher replay --survey S --webhook W --status failed --since T --until T [--dry-run]
//	dispatcher help
//
// With no command (or flags first) it runs the workers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/opscli"
	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/survey"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// exitCode reports err on stderr and returns the exit status: 0 for success and help, 2 for
// bad command lines and configuration (a usage error's message and usage are already out),
// 1 for anything else, such as an error the API answered.
func exitCode(err error, stderr io.Writer) int {
	if errors.Is(err, opscli.ErrUsage) {
		return 2
	}
	return app.ExitCode("dispatch24-dispatcher", err, stderr)
}

// run runs the command args name: an ops command, help, or with none (or flags first) the
// workers.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		return runWorkers(ctx, args, getenv, stderr)
	}
	switch args[0] {
	case "deliveries", "replay", "webhooks":
		return opscli.Run(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if err := opscli.Run(ctx, args, getenv, stdout, stderr); err != nil || len(args) > 1 {
			return err
		}
		workersUsage(stdout)
		return nil
	}
	fmt.Fprintf(stderr, "dispatcher: unknown command %q\n\n", args[0])
	opscli.Usage(stderr)
	fmt.Fprintln(stderr, "\nWith no command, dispatcher runs the delivery workers; see 'dispatcher help'.")
	return opscli.ErrUsage
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// apiOnly are the variables only cmd/api reads; the dispatcher accepts and ignores them.
var apiOnly = map[string]bool{
	"DATA_DIR": true, "DISPATCH_IN_PROCESS": true, "PUBLIC_URL": true, "SURVEY_APP_URL": true,
	"TOKEN_SECRET": true, "ACCESS_TOKEN_TTL": true, "REFRESH_TOKEN_TTL": true,
	"ADMIN_EMAIL": true, "ADMIN_PASSWORD": true,
}

// workersUsage lists the workers' configuration: every variable is also a flag.
func workersUsage(w io.Writer) {
	fmt.Fprint(w, "\nWith no command, dispatcher runs the delivery workers:\n  dispatcher [flags]\n\n"+
		"Each setting is an environment variable or a flag of the same name in kebab case\n"+
		"(NATS_URL or -nats-url). NATS_URL, DATABASE_URL and SECRETS_KEY are required: the\n"+
		"dispatcher joins the api's NATS cluster and PostgreSQL store (with neither, the api runs\n"+
		"the workers itself). HTTP_ADDR serves /healthz, /readyz and /metrics. The ops commands\n"+
		"need none of them.\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range config.VarsFor("dispatcher") {
		if apiOnly[v.Name] {
			continue
		}
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Usage)
	}
	_ = tw.Flush()
}

// runWorkers starts the workers and the health and metrics listener and blocks until ctx
// ends; tests call it with HTTP_ADDR=127.0.0.1:0 and read the bound address from the
// "listening" log line.
func runWorkers(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	started := time.Now()
	cfg, err := config.Load("dispatcher", args, getenv, runtime.NumCPU(), stderr)
	if err != nil {
		return err
	}
	if cfg.Embedded {
		return &config.Error{Var: "NATS_URL", Msg: "required: the dispatcher joins an external NATS cluster (with no NATS_URL the api runs the workers itself)"}
	}
	if cfg.EmbeddedStore() {
		return &config.Error{Var: "DATABASE_URL", Msg: "required: dispatchers share a PostgreSQL store with the api"}
	}
	// The listen address first: a taken port fails in a moment, before migrating and connecting.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "HTTP_ADDR", Msg: fmt.Sprintf("cannot listen: %v", err)}
	}
	defer ln.Close()
	logger := slog.New(telemetry.LogHandler(cfg.NewLogger(stderr).Handler()))
	logger.Info("starting dispatch24 dispatcher", "version", app.Version, "config", cfg)

	tracing, err := telemetry.SetupTracing(ctx, "dispatch24-dispatcher", app.Version, getenv)
	if err != nil {
		return err
	}
	defer tracing.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit
	metrics := telemetry.NewMetrics()

	env, err := app.Open(ctx, cfg, logger, metrics)
	if err != nil {
		return err
	}
	defer env.Close()
	// Checks SECRETS_KEY against the store before any delivery, sealing what needs it.
	if err := env.SealSecrets(ctx, endpoint.NewStore(env.DB, env.Secrets), survey.NewStore(env.DB, env.Secrets)); err != nil {
		return err
	}

	client, err := webhook.NewClient(webhook.ClientConfig{
		Timeout:   cfg.WebhookTimeout,
		AllowNets: cfg.AllowNets,
		UserAgent: "Dispatch24/" + app.Version,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	d, err := app.NewDispatcher(env, client)
	if err != nil {
		return err
	}

	// The retention purge runs in every api and dispatcher; a lease in the store lets one of
	// them purge at a time.
	purger, err := retention.New(retention.Config{DB: env.DB, Retention: cfg.Retention, Registerer: metrics.Registry,
		Logger: logger.With("component", "retention")})
	if err != nil {
		return err
	}

	rt := httpapi.NewRouter(nil, logger)
	// Not ready without NATS: consuming is the dispatcher's job.
	httpapi.RegisterHealth(rt, env.ReadyChecks(true)...)
	rt.HandleHTTP("GET /metrics", httpapi.Public, metrics.Handler())
	handler := httpapi.Middleware(httpapi.MiddlewareConfig{
		Logger:     logger,
		Metrics:    metrics,
		Tracer:     tracing.Provider.Tracer("dispatch24/dispatcher"),
		Propagator: tracing.Propagator,
	}, rt)

	logger.Info("listening", "addr", ln.Addr().String(), "startup", time.Since(started).Round(time.Millisecond))

	err = app.RunAll(ctx,
		app.Component{Name: "http", Run: func(ctx context.Context) error {
			return httpapi.Serve(ctx, ln, handler, logger, cfg.ShutdownTimeout)
		}},
		app.Component{Name: "nats", Run: env.Link.Run},
		app.Component{Name: "dispatcher", Run: d.Run},
		app.Component{Name: "retention", Run: purger.Run},
	)
	logger.Info("stopped", "err", err)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
