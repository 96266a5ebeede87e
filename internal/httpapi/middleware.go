package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/telemetry"
)

type requestIDKey struct{}

// RequestID returns the request's id (taken from X-Request-Id or generated).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	Logger     *slog.Logger
	Metrics    *telemetry.Metrics            // nil: no metrics
	Tracer     trace.Tracer                  // nil: no spans
	Propagator propagation.TextMapPropagator // nil: incoming trace context is ignored
}

// Middleware wraps h with what every request gets: a request id, a server span continuing
// the caller's trace, panic recovery, an access log line and metrics. Routes are logged and
// counted by pattern, never by raw path: some paths carry tokens.
func Middleware(cfg MiddlewareConfig, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		var span trace.Span
		if cfg.Tracer != nil {
			if cfg.Propagator != nil {
				ctx = cfg.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
			}
			ctx, span = cfg.Tracer.Start(ctx, "HTTP "+MethodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer))
		}
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				cfg.Logger.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, r, cfg.Logger, fmt.Errorf("panic: %v", v))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			if span != nil {
				span.SetName(route)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
				if serverFault(status) {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}
			if cfg.Metrics != nil {
				cfg.Metrics.HTTPRequests.WithLabelValues(route, MethodLabel(r.Method), strconv.Itoa(status)).Inc()
				cfg.Metrics.HTTPDuration.WithLabelValues(route).Observe(elapsed.Seconds())
			}
			level := slog.LevelInfo
			// A 503 from /readyz is the probe's answer, not a server error (RegisterHealth logs
			// the failing check itself, once per run of failures).
			if serverFault(status) && route != readyzRoute {
				level = slog.LevelError
			}
			cfg.Logger.LogAttrs(ctx, level, "request",
				slog.String("route", route),
				slog.Int("status", status),
				slog.Duration("duration", elapsed),
				slog.Int64("bytes", rec.bytes),
				slog.String("request_id", id),
				slog.String("client", ClientIP(r)))
		}()
		h.ServeHTTP(rec, r)
	})
}

// serverFault reports whether a status is the server's failure, logged at ERROR: a 5xx but
// 501, which answers a method the client invented (a flood of them is no flood of errors).
func serverFault(status int) bool {
	return status >= 500 && status != http.StatusNotImplemented
}

// MethodLabel is the method as a metric label: a standard method as it is, any other one
// "other", so no request can mint a series of its own.
func MethodLabel(method string) string {
	if StandardMethod(method) {
		return method
	}
	return "other"
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

var b32 = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "req_" + b32.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
