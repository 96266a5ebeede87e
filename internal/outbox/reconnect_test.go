package outbox_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/outbox/outboxtest"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	return strings.Count(l.String(), s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (b *bundle) metricsPublishErrors() float64 {
	mfs, _ := b.metrics.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "dispatch24_publish_errors_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// A long outage grows the sweep's backoff (MaxBackoff is a minute here); the reconnect must
// end it at once, and failures during the outage must not hold the sweep back afterwards.
// The bound asserted (10s) is generous on purpose: the figure is logged, and
// BenchmarkDrainAfterReconnect measures it.
func TestRelayDrainsAfterReconnect(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("holds NATS down for 20s")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		// Small batches: the backlog takes several sweeps, so a backoff between two of them
		// would show.
		r, _ := b.start(t, b.config(func(c *outbox.Config) {
			c.SweepInterval = time.Second
			c.MaxBackoff = time.Minute
			c.BatchSize = 16
		}))
		b.nats.Stop()
		waitFor(t, "the client to notice", func() bool { return !b.nats.NC.IsConnected() })
		during := b.entries(t, 100)
		for i := 0; i < len(during); i += 5 {
			commit(t, db, r, during[i:i+5])
		}
		time.Sleep(20 * time.Second) // the sweep's backoff grows to several seconds
		b.nats.Restart()
		waitFor(t, "the reconnect", b.nats.NC.IsConnected)
		reconnected := time.Now()
		deadline := reconnected.Add(10 * time.Second)
		for unpublished(t, db) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events still in the outbox 10s after the reconnect", unpublished(t, db), len(during))
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("outbox of %d events drained %s after the reconnect", len(during), time.Since(reconnected).Round(time.Millisecond))
		checkStream(t, b.nats.Messages(t), during)
	})
}

// A failing JetStream (here: the stream is gone, as in a failover) fails every publish; the
// relay logs the first failure, not one line per batch, and one line when it recovers.
func TestRelayAggregatesPublishFailureLogs(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		var logs lockedBuffer
		r, _ := b.start(t, b.config(func(c *outbox.Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}))
		ctx := context.Background()
		if err := b.nats.JS.DeleteStream(ctx, events.StreamName); err != nil {
			t.Fatal(err)
		}
		entries := b.entries(t, 60)
		for i := 0; i < len(entries); i += 2 {
			commit(t, db, r, entries[i:i+2])
			time.Sleep(5 * time.Millisecond) // each its own batch, as under steady load
		}
		waitFor(t, "publishes to fail", func() bool { return b.metricsPublishErrors() >= 30 })
		if _, err := events.EnsureStream(ctx, b.nats.JS, events.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "events marked published", func() bool { return unpublished(t, db) == 0 })
		checkStream(t, b.nats.Messages(t), entries)
		failed := logs.count(`msg="publishing events failed; they stay in the outbox"`)
		recovered := logs.count(`msg="publishing events recovered"`)
		if failed != 1 || recovered != 1 {
			t.Fatalf("%d failure lines and %d recovery lines for %.0f failed publishes, want 1 and 1:\n%s",
				failed, recovered, b.metricsPublishErrors(), logs.String())
		}
	})
}

// BenchmarkDrainAfterReconnect measures how long after NATS comes back (the client's
// reconnect) the outbox is empty again: each iteration stops NATS, stores events through the
// relay (the fast path gives them to the sweep), keeps NATS down for 3s, starts it again on
// the same port and store, and times reconnect → last event marked published. BENCH_STORE
// picks sqlite (default) or postgres.
//
//	go test -run '^$' -bench DrainAfterReconnect -benchtime 5x ./internal/outbox/
func BenchmarkDrainAfterReconnect(b *testing.B) {
	var db *store.DB
	if os.Getenv("BENCH_STORE") == "postgres" {
		db = storetest.Postgres(b)
	} else {
		db = storetest.SQLite(b)
	}
	nats := outboxtest.Start(b)
	r, err := outbox.New(outbox.Config{DB: db, JS: nats.JS, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	const perOutage = 500
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nats.Stop()
		for nats.NC.IsConnected() {
			time.Sleep(time.Millisecond)
		}
		entries := make([]outbox.Entry, perOutage)
		for j := range entries {
			ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: "s1", Data: []byte(`{}`)}
			payload, err := ev.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			entries[j] = outbox.Entry{SurveyID: "s1", CreatedAt: ev.Timestamp, Message: events.Message{
				ID: ev.ID, Type: ev.Type, Subject: events.Subject("s1", ev.Type), Payload: payload}}
		}
		for j := 0; j < perOutage; j += 10 {
			batch := entries[j : j+10]
			if err := db.Driver.InTx(ctx, func(tx store.Executor) error { return r.Add(ctx, tx, batch) }); err != nil {
				b.Fatal(err)
			}
			r.Notify(batch)
		}
		time.Sleep(3 * time.Second)
		nats.Restart()
		for !nats.NC.IsConnected() {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		start := time.Now()
		for {
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM events WHERE published_at IS NULL").Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-drain")
}
