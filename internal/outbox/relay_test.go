package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

var prop = propagation.TraceContext{}

type bundle struct {
	db      *store.DB
	nats    *outboxtest.NATS
	metrics *telemetry.Metrics
	tp      *sdktrace.TracerProvider
}

func setup(t *testing.T, db *store.DB) *bundle {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &bundle{db: db, nats: outboxtest.Start(t), metrics: telemetry.NewMetrics(), tp: tp}
}

func (b *bundle) config(mod func(*outbox.Config)) outbox.Config {
	cfg := outbox.Config{
		DB:             b.db,
		JS:             b.nats.JS,
		Metrics:        b.metrics,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		TracerProvider: b.tp,
		Propagator:     prop,
		SweepInterval:  50 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		AckTimeout:     2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

// start runs a relay until the returned stop is called (or the test ends).
func (b *bundle) start(t *testing.T, cfg outbox.Config) (*outbox.Relay, func()) {
	t.Helper()
	r, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// entries builds n submitted events of survey s1, each carrying the trace context of a span
// of its own.
func (b *bundle) entries(t *testing.T, n int) []outbox.Entry {
	t.Helper()
	out := make([]outbox.Entry, n)
	for i := range out {
		ctx, span := b.tp.Tracer("test").Start(context.Background(), "request")
		span.End()
		ev := events.Event{
			ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: "s1",
			UserID: "u1", SubmissionID: fmt.Sprintf("sub_%d", i), Data: []byte(`{"recall":{"n":` + fmt.Sprint(i) + `}}`),
		}
		payload, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = outbox.Entry{SurveyID: "s1", CreatedAt: ev.Timestamp, Message: events.Message{
			ID: ev.ID, Type: ev.Type, Subject: events.Subject("s1", ev.Type), Payload: payload,
			Trace: events.TraceHeaders(ctx, prop),
		}}
	}
	return out
}

// commit stores entries through the relay in one transaction and notifies it.
func commit(t *testing.T, db *store.DB, r *outbox.Relay, entries []outbox.Entry) {
	t.Helper()
	err := db.Driver.InTx(context.Background(), func(tx store.Executor) error { return r.Add(context.Background(), tx, entries) })
	if err != nil {
		t.Fatal(err)
	}
	r.Notify(entries)
}

func unpublished(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE published_at IS NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStream asserts that the stream holds each entry exactly once, byte for byte.
func checkStream(t *testing.T, msgs []*jetstream.RawStreamMsg, entries []outbox.Entry) {
	t.Helper()
	want := map[string]outbox.Entry{}
	for _, e := range entries {
		want[e.Message.ID] = e
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		e, ok := want[id]
		if !ok {
			t.Errorf("unexpected message %q in the stream", id)
			continue
		}
		if seen[id] {
			t.Errorf("event %s is in the stream twice", id)
		}
		seen[id] = true
		if !bytes.Equal(m.Data, e.Message.Payload) {
			t.Errorf("event %s: stream payload differs from the stored envelope", id)
		}
		if m.Subject != e.Message.Subject || m.Header.Get(events.HeaderEventType) != e.Message.Type {
			t.Errorf("event %s: subject %q type %q", id, m.Subject, m.Header.Get(events.HeaderEventType))
		}
	}
	if len(seen) != len(want) {
		t.Errorf("stream holds %d of %d events", len(seen), len(want))
	}
}

func TestRelayFastPath(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		r, _ := b.start(t, b.config(nil))
		entries := b.entries(t, 20)
		for i := 0; i < len(entries); i += 5 {
			commit(t, db, r, entries[i:i+5])
		}
		msgs := b.nats.WaitMessages(t, len(entries))
		checkStream(t, msgs, entries)
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })

		// The publish continues the trace of the request that stored the event.
		for _, m := range msgs {
			got := trace.SpanContextFromContext(prop.Extract(context.Background(), events.HeaderCarrier(m.Header)))
			var stored map[string]string
			for _, e := range entries {
				if e.Message.ID == m.Header.Get(jetstream.MsgIDHeader) {
					stored = e.Message.Trace
				}
			}
			want := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.MapCarrier(stored)))
			if !got.IsValid() || got.TraceID() != want.TraceID() || got.SpanID() == want.SpanID() {
				t.Fatalf("message trace %v, request trace %v: want the same trace, a child span", got, want)
			}
		}
		var attempts, unset int
		if err := db.QueryRow(context.Background(),
			"SELECT count(*) FROM events WHERE publish_attempts <> 1 OR claimed_until IS NOT NULL").Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE last_error IS NOT NULL").Scan(&unset); err != nil {
			t.Fatal(err)
		}
		if attempts != 0 || unset != 0 {
			t.Fatalf("%d rows with attempts≠1 or a lease left, %d with an error", attempts, unset)
		}
	})
}

// With NATS down, events stay in the outbox; once NATS is back (same port and store) each
// reaches the stream exactly once.
func TestRelayNATSOutage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		r, _ := b.start(t, b.config(nil))
		before := b.entries(t, 5)
		commit(t, db, r, before)
		b.nats.WaitMessages(t, len(before))

		b.nats.Stop()
		waitFor(t, "the client to notice", func() bool { return !b.nats.NC.IsConnected() })
		during := b.entries(t, 30)
		for i := 0; i < len(during); i += 3 {
			commit(t, db, r, during[i:i+3])
		}
		b.nats.Restart()

		all := append(before, during...)
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })
		checkStream(t, b.nats.Messages(t), all)
	})
}

// A relay stopped mid-flight loses nothing: what it published is marked or republished
// (and deduplicated), what it had not published is taken by the next relay.
func TestRelayStoppedMidFlight(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		short := func(c *outbox.Config) { c.FastLease = 200 * time.Millisecond; c.Lease = 200 * time.Millisecond }
		r1, stop1 := b.start(t, b.config(short))
		entries := b.entries(t, 300)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(entries); i += 10 {
				commit(t, db, r1, entries[i:i+10])
			}
		}()
		time.Sleep(5 * time.Millisecond) // somewhere in the middle; any point must do
		stop1()
		wg.Wait()

		b.start(t, b.config(short))
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })
		checkStream(t, b.nats.Messages(t), entries)
	})
}

// Rows a crashed relay left claimed are swept once their lease has expired, and rows
// never announced to any fast path are swept too.
func TestRelaySweepsAbandonedRows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		entries := b.entries(t, 40)
		if err := db.Driver.InTx(ctx, func(tx store.Executor) error {
			if err := outbox.Insert(ctx, tx, time.Now().Add(-time.Minute), entries[:20]); err != nil {
				return err
			}
			return outbox.Insert(ctx, tx, time.Time{}, entries[20:])
		}); err != nil {
			t.Fatal(err)
		}
		b.start(t, b.config(nil))
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })
		checkStream(t, b.nats.Messages(t), entries)
	})
}

// Several relays sweeping one backlog claim disjoint rows: every event is published once.
func TestRelayReplicasShareBacklog(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		entries := b.entries(t, 1200)
		if err := db.Driver.InTx(ctx, func(tx store.Executor) error { return outbox.Insert(ctx, tx, time.Time{}, entries) }); err != nil {
			t.Fatal(err)
		}
		small := func(c *outbox.Config) { c.BatchSize = 25 }
		for i := 0; i < 3; i++ {
			b.start(t, b.config(small))
		}
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })
		checkStream(t, b.nats.Messages(t), entries)
		var twice int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM events WHERE publish_attempts <> 1").Scan(&twice); err != nil {
			t.Fatal(err)
		}
		if twice != 0 {
			t.Fatalf("%d events were published more than once", twice)
		}
	})
}
