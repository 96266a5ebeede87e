package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/retention"
)

// The retention purge under load (-purge N): N expired deliveries, each with one attempt
// row, are stored before the run in a survey of their own (so the run's exact checks, which
// count the bench survey's rows, are untouched); -purge-after into the load, the retention
// purger runs once, as every api and dispatcher runs it (internal/retention, its defaults),
// on the same store and connection pool as the API. Latencies from the due time to the
// receipt are then split by when each submission was due: before the purge, while it ran,
// after it ended, so the with/without comparison is one run on one machine in one sitting.

// purgeRetention is the purger's RETENTION in the run: the seeded rows' last activity is
// older, the run's own deliveries are far newer.
const purgeRetention = time.Hour

// seedStep is the spacing of the seeded deliveries' last activity (10 ms: a million span
// about 2.8 hours, all before the cutoff).
const seedStep = 10 * time.Millisecond

// seedChunk is the rows one seeding statement inserts.
const seedChunk = 200_000

// seedExpired stores n finished deliveries whose last activity is past purgeRetention, with
// one attempt row each (a 204 with a 300-byte body, the README's sizing), then vacuums and
// analyzes the two tables and checkpoints, as autovacuum and time would have done to rows
// that are months old, so that the purge's window does not pay for the load's hint bits or
// dirty pages.
func (w *world) seedExpired(ctx context.Context, n int) error {
	start := time.Now()
	// The newest seeded row is ten minutes past the cutoff.
	base := time.Now().Add(-purgeRetention - 10*time.Minute - time.Duration(n)*seedStep)
	body := strings.Repeat("ok ", 100)
	for from := 0; from < n; from += seedChunk {
		to := min(from+seedChunk, n)
		if _, err := w.db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
				last_status_code, last_error, created_at, updated_at)
			SELECT 'dlv_expired_' || g, 'evt_expired_' || g, 'wh_expired', 'bench-expired', 'session.submitted',
				'http://127.0.0.1:1/hook', CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
				CASE WHEN g % 20 = 0 THEN 500 ELSE 204 END, CASE WHEN g % 20 = 0 THEN 'http_500' ELSE '' END,
				$1::bigint + g * $2::bigint - 50000, $1::bigint + g * $2::bigint
			FROM generate_series($3::bigint, $4::bigint) g`, base.UnixMicro(), seedStep.Microseconds(), from, to-1); err != nil {
			return fmt.Errorf("seeding expired deliveries: %w", err)
		}
		if _, err := w.db.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, error, response_body)
			SELECT 'dlv_expired_' || g, 1, $1::bigint + g * $2::bigint - 50000, 42,
				CASE WHEN g % 20 = 0 THEN 500 ELSE 204 END, CASE WHEN g % 20 = 0 THEN 'http_500' ELSE '' END, $5
			FROM generate_series($3::bigint, $4::bigint) g`, base.UnixMicro(), seedStep.Microseconds(), from, to-1, body); err != nil {
			return fmt.Errorf("seeding expired attempts: %w", err)
		}
	}
	for _, q := range []string{"VACUUM (ANALYZE) deliveries, delivery_attempts", "CHECKPOINT"} {
		if _, err := w.db.Exec(ctx, q); err != nil {
			return fmt.Errorf("after seeding: %s: %w", q, err)
		}
	}
	fmt.Fprintf(w.stderr, "seeded %d expired deliveries and %d attempts in %s\n", n, n, time.Since(start).Round(time.Millisecond))
	return nil
}

// purgeRun is the purge as the load saw it.
type purgeRun struct {
	loadStart, start, end time.Time
	// on are the windows the purger ran in (one without -purge-window).
	on  [][2]time.Time
	res retention.Result
	err error
	// left counts the seeded deliveries still stored after the purge (a batch cut off by a
	// window's end may have committed without being counted in res).
	left int
	// Machine CPU over the load before the purge and until it ended.
	cpuBefore, cpuDuring cpuSample
}

// startPurge runs the purger -purge-after after loadStart, on the API's store, until it has
// purged everything: in one go, or with -purge-window in windows of that length separated by
// pauses as long, so that the latencies with and without it interleave and the machine's
// other work (a shared machine) falls on both alike. wait returns what it did once it has
// ended.
func (w *world) startPurge(ctx context.Context, loadStart time.Time) (wait func() *purgeRun, err error) {
	p, err := retention.New(retention.Config{DB: w.db, Retention: purgeRetention, Logger: w.logger.With("component", "retention"),
		Holder: "bench-pipeline"})
	if err != nil {
		return nil, err
	}
	run := &purgeRun{loadStart: loadStart}
	done := make(chan struct{})
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			run.err = ctx.Err()
			return false
		case <-time.After(d):
			return true
		}
	}
	go func() {
		defer close(done)
		b0, t0 := machineCPU()
		if !sleep(time.Until(loadStart.Add(w.o.purgeAfter))) {
			return
		}
		b1, t1 := machineCPU()
		run.cpuBefore = cpuSample{busy: b1 - b0, total: t1 - t0}
		run.start = time.Now()
		defer func() {
			run.end = time.Now()
			b2, t2 := machineCPU()
			run.cpuDuring = cpuSample{busy: b2 - b1, total: t2 - t1}
			if err := w.db.QueryRow(context.WithoutCancel(ctx), "SELECT count(*) FROM deliveries WHERE survey_id = 'bench-expired'").Scan(&run.left); err != nil && run.err == nil {
				run.err = err
			}
		}()
		for {
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if w.o.purgeWindow > 0 {
				wctx, cancel = context.WithTimeout(ctx, w.o.purgeWindow)
			}
			t := time.Now()
			res, err := p.PurgeOnce(wctx)
			run.on = append(run.on, [2]time.Time{t, time.Now()})
			cancel()
			run.res.Deliveries += res.Deliveries
			run.res.Attempts += res.Attempts
			run.res.Events += res.Events
			run.res.Batches += res.Batches
			run.res.Took += res.Took
			run.res.Reclaim += res.Reclaim
			switch {
			case err == nil:
				return // everything purged
			case ctx.Err() != nil || wctx.Err() == nil:
				run.err = err
				return
			}
			if !sleep(w.o.purgeWindow) {
				return
			}
		}
	}()
	return func() *purgeRun { <-done; return run }, nil
}

// purgeWarmup is left out of the before-the-purge latencies: the first seconds of a run warm
// up connection pools and JetStream's consumer.
const purgeWarmup = 5 * time.Second

// reportPurge prints the purge's pace and the due → receipt latencies of the submissions due
// before, during (in its windows and between them) and after it.
func reportPurge(out io.Writer, w *world, r *result) {
	p := r.purge
	if p == nil {
		return
	}
	if p.err != nil {
		fmt.Fprintf(out, "purge: FAILED: %v\n", p.err)
		return
	}
	rows := p.res.Deliveries + p.res.Attempts
	deleting := p.res.Took - p.res.Reclaim
	fmt.Fprintf(out, "purge: %d deliveries + %d attempts = %d rows in %s running (%d windows over %s) = %.0f rows/s as run; its deletes (%d batches and the pauses after them, at least as long) %s = %.0f rows/s, then VACUUM %s; started %s into the load; %d seeded deliveries left\n",
		p.res.Deliveries, p.res.Attempts, rows, p.res.Took.Round(time.Millisecond), len(p.on), p.end.Sub(p.start).Round(time.Millisecond),
		perSec(rows, p.res.Took), p.res.Batches, deleting.Round(time.Millisecond), perSec(rows, deleting), p.res.Reclaim.Round(time.Millisecond),
		p.start.Sub(p.loadStart).Round(time.Millisecond), p.left)
	inWindow := func(t time.Time) bool {
		for _, o := range p.on {
			if !t.Before(o[0]) && t.Before(o[1]) {
				return true
			}
		}
		return false
	}
	var before, on, off, after []time.Duration
	for _, ep := range w.recv.eps {
		ep.mu.Lock()
		for _, s := range r.load.accepted {
			at, ok := ep.firstSeen[s.id]
			if !ok {
				continue
			}
			d, due := at.Sub(s.from()), s.from()
			switch {
			case due.Before(p.loadStart.Add(purgeWarmup)):
			case due.Before(p.start):
				before = append(before, d)
			case !due.Before(p.end):
				after = append(after, d)
			case inWindow(due):
				on = append(on, d)
			default:
				off = append(off, d)
			}
		}
		ep.mu.Unlock()
	}
	without := slices.Concat(before, off, after)
	for _, l := range [][]time.Duration{before, on, off, after, without} {
		slices.Sort(l)
	}
	line := func(name string, l []time.Duration, busy string) {
		fmt.Fprintf(out, "  due → receipt %-38s p50 %-9s p99 %-9s max %-9s (n=%d)%s\n", name, pct(l, 50), pct(l, 99), pct(l, 100), len(l), busy)
	}
	fmt.Fprintf(out, "latency by when the submission was due (the first %s left out):\n", purgeWarmup)
	line("before the purge", before, fmt.Sprintf("; machine %.0f%% busy", busyPct(p.cpuBefore)))
	line("while the purger ran", on, fmt.Sprintf("; machine %.0f%% busy from the purge's start to its end", busyPct(p.cpuDuring)))
	if len(p.on) > 1 {
		line("between its windows", off, "")
	}
	line("after the purge", after, "")
	line("without the purge (all but while it ran)", without, "")
	ratio := func(a, b []time.Duration) float64 { return float64(pct(a, 99)) / float64(max(pct(b, 99), 1)) }
	verdict := func(x float64) string {
		if x > 1.2 {
			return "NOT within"
		}
		return "within"
	}
	if len(on) > 0 && len(without) > 0 {
		x := ratio(on, without)
		fmt.Fprintf(out, "purge's effect on p99: %.2f× against all the rest (%s the 20%% goal)", x, verdict(x))
		if len(off) > 0 {
			y := ratio(on, off)
			fmt.Fprintf(out, "; %.2f× against the windows between (interleaved, the fairer on a shared machine: %s)", y, verdict(y))
		}
		fmt.Fprintln(out)
	}
	if p.end.After(r.load.lastDone) {
		fmt.Fprintf(out, "note: the purge outlasted the load by %s; raise -events to cover it\n", p.end.Sub(r.load.lastDone).Round(time.Second))
	}
}
