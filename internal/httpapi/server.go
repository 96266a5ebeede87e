package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// Serve runs an HTTP server on ln until ctx ends, then shuts it down gracefully, waiting up to
// shutdownTimeout for requests in flight. Timeouts protect against slow clients.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// Check is one readiness check: nil when the dependency answers.
type Check struct {
	Name string
	// Func is nil when the dependency answers. A failure shows as "unavailable" in the body,
	// or as the word its error's State method returns, if it has one (fixed words only: the
	// body is public).
	Func func(ctx context.Context) error
	// Optional checks are reported in the body but do not make the process unready: it can do
	// its job without that dependency for a while (the api accepts into the outbox while NATS
	// is away).
	Optional bool
}

const readyzRoute = "GET /readyz"

// RegisterHealth adds GET /healthz (200 while the process runs) and GET /readyz: 200 when
// every required check passes within two seconds, else 503; the body names each check's
// state, and its status is "ok", "degraded" (an optional check failed) or "unavailable".
func RegisterHealth(rt *Router, checks ...Check) {
	rt.Handle("GET /healthz", Public, func(w http.ResponseWriter, r *http.Request) error {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	// A probe runs every few seconds: a failing check is logged when it starts failing, then
	// once a minute while it goes on, and when it recovers.
	logs := make([]*telemetry.FailureLog, len(checks))
	for i, c := range checks {
		logs[i] = &telemetry.FailureLog{Logger: rt.logger.With("check", c.Name), Msg: "readiness check failed", Interval: time.Minute,
			RecoveredMsg: "readiness check passes again"}
		if c.Optional {
			logs[i].Msg = "optional readiness check failed; still ready"
		}
	}
	rt.Handle(readyzRoute, Public, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		result := map[string]string{}
		failed, degraded := false, false
		for i, c := range checks {
			err := c.Func(ctx)
			if err == nil {
				result[c.Name] = "ok"
				logs[i].Recover(ctx)
				continue
			}
			logs[i].Fail(ctx, 1, err)
			result[c.Name] = "unavailable"
			var st interface{ State() string }
			if errors.As(err, &st) {
				result[c.Name] = st.State()
			}
			if c.Optional {
				degraded = true
				continue
			}
			failed = true
		}
		switch {
		case failed:
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": result})
		case degraded:
			WriteJSON(w, http.StatusOK, map[string]any{"status": "degraded", "checks": result})
		default:
			WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": result})
		}
		return nil
	})
}
