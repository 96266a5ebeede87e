package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/drivertest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func newPurger(t *testing.T, db *store.DB, holder string, reg prometheus.Registerer) *retention.Purger {
	t.Helper()
	p, err := retention.New(retention.Config{DB: db, Retention: 24 * time.Hour, BatchSize: 2, Pause: time.Millisecond,
		Holder: holder, Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func count(t *testing.T, db *store.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// A purge deletes the events, deliveries and attempts past retention, in several batches,
// and keeps what is inside it, pending deliveries however old (with their events and
// attempts), and events never published; its metrics count what went.
func TestPurge(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		old := now.Add(-30 * 24 * time.Hour)
		for i := 0; i < 5; i++ { // expired: 5 events, 5 deliveries with 2 attempts each
			ev := fmt.Sprintf("e_old_%d", i)
			drivertest.SeedEvent(t, db, ev, old, old)
			drivertest.SeedDelivery(t, db, "d_old_"+ev, ev, []string{"succeeded", "failed", "skipped"}[i%3], old, 2)
		}
		drivertest.SeedEvent(t, db, "e_orphan", old, old) // no endpoint: no delivery
		drivertest.SeedEvent(t, db, "e_ancient_pending", old.AddDate(-1, 0, 0), old.AddDate(-1, 0, 0))
		drivertest.SeedDelivery(t, db, "d_ancient_pending", "e_ancient_pending", "pending", old.AddDate(-1, 0, 0), 9)
		drivertest.SeedEvent(t, db, "e_unpublished", old, time.Time{})
		drivertest.SeedEvent(t, db, "e_new", now.Add(-time.Hour), now.Add(-time.Hour))
		drivertest.SeedDelivery(t, db, "d_new", "e_new", "succeeded", now.Add(-time.Hour), 1)
		// Tombstones: a survey deleted 40 days ago (past the horizon: pruned), one deleted an
		// hour ago (kept: a delivery id of its lifetime is purged by the tombstone alone).
		for _, sv := range []struct {
			id       string
			since, d time.Time
		}{{"s_gone_long_ago", old.AddDate(0, 0, -20), old.AddDate(0, 0, -10)}, {"s_gone_lately", now.Add(-48 * time.Hour), now.Add(-time.Hour)}} {
			if _, err := db.Driver.Deliveries().DeleteSurvey(ctx, sv.id, sv.since, sv.d); err != nil {
				t.Fatal(err)
			}
		}

		reg := prometheus.NewRegistry()
		res, err := newPurger(t, db, "a", reg).PurgeOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped || res.Deliveries != 5 || res.Attempts != 10 || res.Events != 6 || res.Tombstones != 1 || res.Batches < 4 {
			t.Fatalf("purge %+v, want 5 deliveries, 10 attempts, 6 events and 1 tombstone in several batches", res)
		}
		if n := count(t, db, "SELECT count(*) FROM delivery_tombstones WHERE survey_id = 's_gone_lately'"); n != 1 || count(t, db, "SELECT count(*) FROM delivery_tombstones") != 1 {
			t.Errorf("tombstones left: want only the recent survey's")
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries"); n != 2 {
			t.Errorf("%d deliveries left, want the pending one and the new one", n)
		}
		if n := count(t, db, "SELECT count(*) FROM delivery_attempts"); n != 10 {
			t.Errorf("%d attempts left, want 9 (pending) + 1 (new)", n)
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries WHERE id IN ('d_ancient_pending', 'd_new')"); n != 2 {
			t.Errorf("kept deliveries: %d of 2", n)
		}
		if n := count(t, db, "SELECT count(*) FROM events WHERE id IN ('e_ancient_pending', 'e_unpublished', 'e_new')"); n != 3 {
			t.Errorf("kept events: %d of 3", n)
		}
		if n := count(t, db, "SELECT count(*) FROM events"); n != 3 {
			t.Errorf("%d events left, want 3", n)
		}
		purged := gaugeValues(t, reg, "dispatch24_retention_purged_rows_total")
		for table, want := range map[string]float64{"deliveries": 5, "delivery_attempts": 10, "events": 6, "delivery_tombstones": 1} {
			if got := purged[table]; got != want {
				t.Errorf("purged_rows_total{table=%s} = %v, want %v", table, got, want)
			}
		}
		// The oldest finished delivery left is an hour old; the oldest published event is the
		// one its pending delivery keeps.
		ages := gaugeValues(t, reg, "dispatch24_retention_oldest_age_seconds")
		for table, want := range map[string]float64{"deliveries": 3600, "events": now.Sub(old.AddDate(-1, 0, 0)).Seconds()} {
			if a := ages[table]; a < want-1 || a > want+100 {
				t.Errorf("oldest age of %s: %v s, want about %v", table, a, want)
			}
		}
		if v := gaugeValues(t, reg, "dispatch24_retention_last_success_timestamp_seconds")[""]; v < float64(now.Unix()) {
			t.Errorf("last success %v, want at least %d", v, now.Unix())
		}
		again, err := newPurger(t, db, "b", nil).PurgeOnce(ctx)
		if err != nil || again.Rows() != 0 {
			t.Fatalf("second purge: %+v, %v", again, err)
		}
	})
}

// gaugeValues reads metric name's values by their table label ("" without one).
func gaugeValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" {
					label = l.GetValue()
				}
			}
			switch {
			case m.Counter != nil:
				out[label] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[label] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// Two purgers at once: the one holding the lease purges, the other skips; once the lease is
// released the other may purge.
func TestOnePurgerAtATime(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		old := time.Now().Add(-40 * 24 * time.Hour).UTC()
		for i := 0; i < 6; i++ {
			drivertest.SeedDelivery(t, db, fmt.Sprintf("d_%d", i), "e", "succeeded", old.Add(time.Duration(i)*time.Second), 1)
		}
		a, b := newPurger(t, db, "a", nil), newPurger(t, db, "b", nil)
		inBatch, goOn := make(chan struct{}), make(chan struct{})
		var once sync.Once
		a.SetAfterBatch(func() {
			once.Do(func() {
				close(inBatch)
				<-goOn
			})
		})
		done := make(chan retention.Result, 1)
		go func() {
			res, err := a.PurgeOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		<-inBatch // a holds the lease, between two batches
		res, err := b.PurgeOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Skipped || res.Rows() != 0 {
			t.Fatalf("b purged while a held the lease: %+v", res)
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries"); n != 4 {
			t.Fatalf("%d deliveries left after a's first batch of 2, want 4", n)
		}
		close(goOn)
		resA := <-done
		if resA.Skipped || resA.Deliveries != 6 {
			t.Fatalf("a: %+v, want all 6 deliveries", resA)
		}
		// a released the lease: b takes it at once.
		drivertest.SeedDelivery(t, db, "d_late", "e", "failed", old, 0)
		res, err = b.PurgeOnce(ctx)
		if err != nil || res.Skipped || res.Deliveries != 1 {
			t.Fatalf("b after a: %+v, %v", res, err)
		}
	})
}

// The first purge switches a new SQLite database to incremental auto-vacuum, though nothing
// has expired yet.
func TestFirstPurgePreparesSQLite(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	mode := func() int {
		var m int
		if err := db.QueryRow(context.Background(), "PRAGMA auto_vacuum").Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := mode(); m == 2 {
		t.Fatal("the database is incremental before any purge: the test proves nothing")
	}
	res, err := newPurger(t, db, "a", nil).PurgeOnce(context.Background())
	if err != nil || res.Rows() != 0 {
		t.Fatalf("purge %+v, %v", res, err)
	}
	if m := mode(); m != 2 {
		t.Fatalf("auto_vacuum %d after the first purge, want 2 (incremental)", m)
	}
}

// With RETENTION=0 Run purges nothing and returns when its context ends.
func TestRetentionOff(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	drivertest.SeedDelivery(t, db, "d", "e", "succeeded", time.Unix(0, 0), 1)
	p, err := retention.New(retention.Config{DB: db, FirstDelay: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count(*) FROM deliveries"); n != 1 {
		t.Fatalf("RETENTION=0 purged: %d deliveries left", n)
	}
}

// Run purges in the background, every interval.
func TestRun(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	old := time.Now().Add(-48 * time.Hour)
	drivertest.SeedDelivery(t, db, "d_1", "e", "succeeded", old, 1)
	p, err := retention.New(retention.Config{DB: db, Retention: time.Hour, FirstDelay: time.Millisecond, Interval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for count(t, db, "SELECT count(*) FROM deliveries") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("the first purge")
	drivertest.SeedDelivery(t, db, "d_2", "e", "failed", old, 2)
	wait("a later purge")
}
