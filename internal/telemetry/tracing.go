package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the process's tracer provider and propagator.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// Exporting reports whether spans leave the process (an OTLP endpoint is configured).
	Exporting bool

	shutdown func(context.Context) error
}

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// SetupTracing builds the tracer provider from the standard OTEL_* variables. Spans always
// get ids (so trace context reaches NATS headers, receivers and logs); they are exported over
// OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set and OTEL_TRACES_EXPORTER is not "none". The sampler follows OTEL_TRACES_SAMPLER.
// serviceName and version are defaults of the resource: OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override them. The SDK reads these OTEL_* variables from the
// process environment, not from getenv. It also installs the provider and the W3C propagator as the OpenTelemetry globals, once, from
// main.
func SetupTracing(ctx context.Context, serviceName, version string, getenv func(string) string) (*Tracing, error) {
	// Our defaults first, then the standard variables (OTEL_RESOURCE_ATTRIBUTES, and
	// OTEL_SERVICE_NAME over both): later detectors win, so the operator's settings override
	// ours as every OpenTelemetry SDK documents. A malformed OTEL_RESOURCE_ATTRIBUTES gives a
	// partial resource, used as it is (the SDK's own default does the same).
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	if res == nil {
		res = resource.Default()
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") &&
		getenv("OTEL_TRACES_EXPORTER") != "none"
	if exporting {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	_ = os.Getenv // the SDK itself reads OTEL_* from the process environment
	return &Tracing{Provider: tp, Propagator: prop, Exporting: exporting, shutdown: tp.Shutdown}, nil
}

// LogHandler wraps h so that records logged with a context carrying a span get trace_id and
// span_id attributes.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.Handler.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{t.Handler.WithAttrs(attrs)}
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.Handler.WithGroup(name)}
}
