package telemetry_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// otlpReceiver is a real OTLP/HTTP trace endpoint on 127.0.0.1 that keeps the resource
// attributes of every span batch it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	resources []map[string]string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.Error(w, "want POST /v1/traces", http.StatusNotFound)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var export coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &export); err != nil {
			t.Errorf("OTLP export request does not decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.GetResourceSpans() {
			attrs := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			r.resources = append(r.resources, attrs)
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) received() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.resources...)
}

// exportOneSpan sets tracing up for serviceName as main does, ends one span and shuts the
// provider down (which flushes the batch), and returns the resources the receiver got.
func exportOneSpan(t *testing.T, recv *otlpReceiver, serviceName string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	tr, err := telemetry.SetupTracing(ctx, serviceName, "v1.2.3", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting {
		t.Fatal("Exporting = false with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	_, span := tr.Provider.Tracer("test").Start(ctx, "one")
	span.End()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown (flushing to the receiver): %v", err)
	}
	got := recv.received()
	if len(got) == 0 {
		t.Fatal("the OTLP receiver got no spans")
	}
	return got
}

// The standard variables win over our defaults (issue 16 item 11): on main the exported
// resource still said service.name=dispatch24-api with OTEL_SERVICE_NAME=d24-acc.
func TestTracingResourceStandardVariablesWin(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "d24-acc")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=not-this-one,service.version=9.9.9,deployment.environment.name=acc")

	for _, res := range exportOneSpan(t, recv, "dispatch24-api") {
		want := map[string]string{
			"service.name":                "d24-acc", // OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES too
			"service.version":             "9.9.9",
			"deployment.environment.name": "acc",
			"telemetry.sdk.language":      "go",
		}
		for k, v := range want {
			if res[k] != v {
				t.Errorf("resource %s = %q, want %q (all: %v)", k, res[k], v, res)
			}
		}
	}
}

func TestTracingResourceDefaults(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")

	for _, res := range exportOneSpan(t, recv, "dispatch24-dispatcher") {
		if res["service.name"] != "dispatch24-dispatcher" || res["service.version"] != "v1.2.3" {
			t.Errorf("resource = %v, want service.name dispatch24-dispatcher and service.version v1.2.3", res)
		}
	}
}

// OTEL_RESOURCE_ATTRIBUTES alone also overrides service.name.
func TestTracingResourceAttributesServiceName(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")

	for _, res := range exportOneSpan(t, recv, "dispatch24-api") {
		if res["service.name"] != "from-attributes" || res["service.version"] != "v1.2.3" {
			t.Errorf("resource = %v, want service.name from-attributes and our service.version v1.2.3", res)
		}
	}
}
