// Command dispatcher runs Dispatch24's delivery workers in the production shape: it joins the
// shared JetStream consumer on an external NATS cluster (NATS_URL), records deliveries in
// PostgreSQL (DATABASE_URL), and serves /healthz, /readyz and /metrics on HTTP_ADDR. Run as
// many replicas as the load needs; they share the consumer and the retry queue in the store.
//
// Embedded mode (no NATS_URL) has no place for a separate dispatcher: there the api runs the
// workers in its own process.
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
	"syscall"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/dispatch"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(app.ExitCode("dispatch24-dispatcher", run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// run starts the workers and the health and metrics listener and blocks until ctx ends; tests
// call it with HTTP_ADDR=127.0.0.1:0 and read the bound address from the "listening" log line.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_ = stdout
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

	client, err := webhook.NewClient(webhook.ClientConfig{
		Timeout:   cfg.WebhookTimeout,
		AllowNets: cfg.AllowNets,
		UserAgent: "Dispatch24/" + app.Version,
	})
	if err != nil {
		return err
	}
	defer client.Close()
	d, err := dispatch.NewFromEnv(env, client)
	if err != nil {
		return err
	}

	rt := httpapi.NewRouter(nil, logger)
	httpapi.RegisterHealth(rt, env.ReadyChecks()...)
	rt.HandleHTTP("GET /metrics", httpapi.Public, metrics.Handler())
	handler := httpapi.Middleware(httpapi.MiddlewareConfig{
		Logger:     logger,
		Metrics:    metrics,
		Tracer:     tracing.Provider.Tracer("dispatch24/dispatcher"),
		Propagator: tracing.Propagator,
	}, rt)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "HTTP_ADDR", Msg: fmt.Sprintf("cannot listen: %v", err)}
	}
	logger.Info("listening", "addr", ln.Addr().String(), "startup", time.Since(started).Round(time.Millisecond))

	err = app.RunAll(ctx,
		app.Component{Name: "http", Run: func(ctx context.Context) error {
			return httpapi.Serve(ctx, ln, handler, logger, cfg.ShutdownTimeout)
		}},
		app.Component{Name: "dispatcher", Run: d.Run},
	)
	logger.Info("stopped", "err", err)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
