package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
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
	Func func(ctx context.Context) error
}

// RegisterHealth adds GET /healthz (200 while the process runs) and GET /readyz (200 only
// when every check passes within two seconds, else 503 naming the failed checks).
func RegisterHealth(rt *Router, checks ...Check) {
	rt.Handle("GET /healthz", Public, func(w http.ResponseWriter, r *http.Request) error {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	rt.Handle("GET /readyz", Public, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		result := map[string]string{}
		failed := false
		for _, c := range checks {
			if err := c.Func(ctx); err != nil {
				result[c.Name] = "unavailable"
				failed = true
				rt.logger.WarnContext(ctx, "readiness check failed", "check", c.Name, "err", err)
				continue
			}
			result[c.Name] = "ok"
		}
		if failed {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": result})
			return nil
		}
		WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": result})
		return nil
	})
}
