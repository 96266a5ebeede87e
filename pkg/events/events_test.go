package events_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/pkg/events"
)

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := embeddednats.Start(embeddednats.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := events.CheckServerVersion(nc); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestTopologyIsIdempotent(t *testing.T) {
	t.Parallel()
	js := setup(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := events.EnsureStream(ctx, js, events.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
		if _, err := events.EnsureConsumer(ctx, js, events.ConsumerConfig{AckWait: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Duplicates != 2*time.Minute {
		t.Errorf("stream config %+v", info.Config)
	}
}

func TestPublishCarriesTraceAndDeduplicates(t *testing.T) {
	t.Parallel()
	js := setup(t)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	cons, err := events.EnsureConsumer(ctx, js, events.ConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	prop := propagation.TraceContext{}
	ctx, span := tp.Tracer("test").Start(ctx, "submission")
	defer span.End()

	ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(),
		SurveyID: "demo-survey", UserID: "u1", Username: "alice", Data: json.RawMessage(`{"x":1}`)}
	payload, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	msg := events.Message{ID: ev.ID, Type: ev.Type, Subject: events.Subject(ev.SurveyID, ev.Type), Payload: payload,
		Trace: events.TraceHeaders(ctx, prop)}
	pub := &events.Publisher{JS: js, Propagator: prop}
	for i := 0; i < 3; i++ { // the relay may publish an event more than once
		if err := pub.Publish(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 1 {
		t.Fatalf("want 1 message after duplicate publishes, got %d", len(got))
	}
	m := got[0]
	if m.Subject() != "dispatch24.events.demo-survey.survey.session.submitted" {
		t.Errorf("subject %s", m.Subject())
	}
	if m.Headers().Get(events.HeaderEventType) != events.TypeSessionSubmitted {
		t.Errorf("type header %v", m.Headers())
	}
	rctx := events.Extract(context.Background(), prop, nats.Header(m.Headers()))
	if got, want := trace.SpanContextFromContext(rctx).TraceID(), span.SpanContext().TraceID(); got != want {
		t.Errorf("trace id %s, want %s", got, want)
	}
	var back events.Event
	if err := json.Unmarshal(m.Data(), &back); err != nil || back.ID != ev.ID || string(back.Data) != `{"x":1}` {
		t.Errorf("payload %s (%v)", m.Data(), err)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
}

func TestNewIDIsOrderedAndUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := events.NewID()
		if !strings.HasPrefix(id, "evt_") || seen[id] || id <= prev && i > 0 && id[:16] < prev[:16] {
			t.Fatalf("id %s after %s", id, prev)
		}
		seen[id] = true
		prev = id
	}
}
