// Command api is Dispatch24's HTTP API: sign-in and tokens, survey and respondent
// administration, the survey app's routes, webhook endpoints, deliveries and replays, health
// and metrics. With no configuration it is a whole single-node system: embedded NATS,
// embedded SQLite and in-process delivery workers, all under DATA_DIR.
//
// One operator's command shares the binary and the configuration:
//
//	api reset-password --email E [--stdin]
//
// sets a new password for a global account in the configured store (see resetPassword).
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
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/console"
	"github.com/dispatch24/dispatch24/internal/gctune"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/openapi"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(app.ExitCode("dispatch24-api", runWithStdin(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr), os.Stderr))
}

// run runs the command args name (reset-password) or, with none (or flags first), starts the
// API and blocks until ctx ends; tests call it with HTTP_ADDR=127.0.0.1:0 and read the bound
// address from the "listening" log line. It has every binary's run signature
// (runtest.RunFunc): standard input is empty.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWithStdin(ctx, args, getenv, strings.NewReader(""), stdout, stderr)
}

// runWithStdin is run with standard input, which `reset-password --stdin` reads.
func runWithStdin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset-password" {
		return resetPassword(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: unknown command %q (the commands: reset-password; with none, or flags, the api runs)", app.ErrUsage, args[0])
	}
	return serve(ctx, args, getenv, stdout, stderr)
}

// serve starts the API and blocks until ctx ends.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	started := time.Now()
	cfg, err := config.Load("api", args, getenv, runtime.NumCPU(), stderr)
	if err != nil {
		return err
	}
	logger := slog.New(telemetry.LogHandler(cfg.NewLogger(stderr).Handler()))
	logger.Info("starting dispatch24 api", "version", app.Version, "config", cfg)
	// A higher GC target than Go's default unless GOGC is set (see internal/gctune).
	if gogc, applied := gctune.Apply(getenv); applied {
		logger.Debug("garbage collector target set", "gogc", gogc)
	}

	tracing, err := telemetry.SetupTracing(ctx, "dispatch24-api", app.Version, getenv)
	if err != nil {
		return err
	}
	defer tracing.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck // best effort at exit
	metrics := telemetry.NewMetrics()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return &config.Error{Var: "HTTP_ADDR", Msg: fmt.Sprintf("cannot listen: %v", err)}
	}
	defer ln.Close()
	cfg.Bound(ln.Addr().String())

	env, err := app.Open(ctx, cfg, logger, metrics)
	if err != nil {
		return err
	}
	defer env.Close()

	mods, err := newModules(ctx, env, stdout)
	if err != nil {
		return err
	}

	rt, err := newRouter(cfg, env, mods, logger)
	if err != nil {
		return err
	}
	handler := httpapi.ClientAddress(cfg.TrustedProxies, httpapi.Middleware(httpapi.MiddlewareConfig{
		Logger:     logger,
		Metrics:    metrics,
		Tracer:     tracing.Provider.Tracer("dispatch24/api"),
		Propagator: tracing.Propagator,
	}, rt))

	logger.Info("listening", "addr", ln.Addr().String(), "startup", time.Since(started).Round(time.Millisecond))

	comps := []app.Component{{Name: "http", Run: func(ctx context.Context) error {
		return httpapi.Serve(ctx, ln, handler, logger, cfg.ShutdownTimeout)
	}}, {Name: "nats", Run: env.Link.Run}}
	comps = append(comps, mods.components...)
	err = app.RunAll(ctx, comps...)
	logger.Info("stopped", "err", err)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// newRouter registers every route the API serves, each with its access policy: health,
// metrics, the modules' routes and the console. Tests build the same table to walk it.
func newRouter(cfg *config.Config, env *app.Env, mods *modules, logger *slog.Logger) (*httpapi.Router, error) {
	rt := httpapi.NewRouter(mods.authenticator, logger)
	// Ready when the store answers: submissions go into the outbox whatever NATS does, and
	// /readyz reports NATS in its body.
	httpapi.RegisterHealth(rt, env.ReadyChecks(false)...)
	rt.HandleHTTP("GET /metrics", httpapi.Public, env.Metrics.Handler())
	apiDoc, err := openapi.Handler()
	if err != nil {
		return nil, err
	}
	rt.HandleHTTP("GET "+openapi.Path, httpapi.Public, apiDoc)
	mods.register(rt)
	ops, err := console.New(console.Config{API: rt, Logger: logger, SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://")})
	if err != nil {
		return nil, err
	}
	ops.Register(rt)
	return rt, nil
}
