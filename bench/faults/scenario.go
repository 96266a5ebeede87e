package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// scenario is one fault under steady load.
type scenario struct {
	name  string
	nodes int // nats-server nodes: 1, or 3 clustered with the stream at R3
	// fault injects the fault while the load runs and returns when the system is whole
	// again, with the moment that happened (the fault's end, from which recovery counts).
	fault func(ctx context.Context, w *world, f *faultLog) error
}

// faultLog is what a fault records for its scenario's report and checks.
type faultLog struct {
	start, end time.Time
	notes      []string
	// When set, submissions must be accepted between acceptFrom and acceptTo: the api must
	// take submissions into its outbox while NATS is down.
	acceptFrom, acceptTo time.Time
}

func (f *faultLog) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

var scenarios = []scenario{
	{name: "dispatcher-kill9", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		f.start = time.Now()
		if err := w.dispatchers[0].kill9(); err != nil {
			return err
		}
		sleep(ctx, w.o.procDown)
		err := w.dispatchers[0].restart(time.Minute)
		f.end = time.Now()
		return err
	}},
	{name: "api-kill9", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		f.start = time.Now()
		if err := w.api.kill9(); err != nil {
			return err
		}
		sleep(ctx, w.o.procDown)
		err := w.api.restart(time.Minute)
		f.end = time.Now()
		return err
	}},
	{name: "api-kill9-nats-down", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		f.start = time.Now()
		if err := w.nats.stopAll(false); err != nil {
			return err
		}
		sleep(ctx, w.o.procDown)
		if err := w.api.kill9(); err != nil {
			return err
		}
		f.acceptFrom = time.Now()
		sleep(ctx, w.o.procDown)
		if err := w.api.start(); err != nil {
			return err
		}
		if err := w.api.waitReady(time.Until(f.start.Add(w.o.natsDown))); err != nil {
			f.note("api not ready while NATS is down: %v", err)
		} else {
			f.note("api ready %.1fs after its kill, NATS still down", time.Since(f.start).Seconds()-w.o.procDown.Seconds())
		}
		sleep(ctx, time.Until(f.start.Add(w.o.natsDown)))
		f.acceptTo = time.Now()
		if err := w.nats.startAll(); err != nil {
			return err
		}
		err := w.api.waitReady(time.Minute)
		f.end = time.Now()
		return err
	}},
	{name: "nats-sigterm", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		return natsOutage(ctx, w, f, false)
	}},
	{name: "nats-kill9", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		return natsOutage(ctx, w, f, true)
	}},
	{name: "stream-leader-kill9", nodes: 3, fault: func(ctx context.Context, w *world, f *faultLog) error {
		leader, err := w.nats.leader(ctx, 3)
		if err != nil {
			return err
		}
		f.start = time.Now()
		if err := w.nats.nodes[leader].kill9(); err != nil {
			return err
		}
		next, err := w.nats.leader(ctx, 3)
		if err != nil {
			return fmt.Errorf("after killing leader %s: %w", w.nats.names[leader], err)
		}
		// The fault is the leaderless time; the killed node comes back later, under load.
		f.end = time.Now()
		f.note("leader %s killed; %s leads %.1fs later", w.nats.names[leader], w.nats.names[next], time.Since(f.start).Seconds())
		sleep(ctx, w.o.nodeDown)
		if err := w.nats.nodes[leader].restart(30 * time.Second); err != nil {
			return err
		}
		f.note("%s back after %.0fs", w.nats.names[leader], w.o.nodeDown.Seconds())
		return nil
	}},
	{name: "receiver-refuses", nodes: 1, fault: func(ctx context.Context, w *world, f *faultLog) error {
		f.start = time.Now()
		w.recv.refuse()
		sleep(ctx, w.o.refuseFor)
		err := w.recv.accept()
		f.end = time.Now()
		return err
	}},
}

func natsOutage(ctx context.Context, w *world, f *faultLog, kill bool) error {
	f.start = time.Now()
	if err := w.nats.stopAll(kill); err != nil {
		return err
	}
	sleep(ctx, w.o.natsDown)
	err := w.nats.startAll()
	f.end = time.Now()
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// result is one scenario's exact counts and verdict.
type result struct {
	name         string
	accepted     int // 201s
	delivered    int // distinct event ids at the receiver
	lost         int // accepted, never delivered
	duplicates   int // receipts beyond the first per event id
	clientErrors int // non-201 answers and transport errors at the load generator
	overdue      int // most deliveries seen pending past their schedule (+ slack)
	oldest       time.Duration
	pendingEnd   int           // pending deliveries at the end
	recovery     time.Duration // fault end → every submission accepted by then delivered
	drained      bool
	drainAfter   time.Duration // load end → all delivered and nothing pending
	crashes      int           // processes that exited on their own (and were restarted)
	notes        []string
	failures     []string
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// runScenario builds a world, runs the load with the fault in it, waits for the backlog to
// drain, and counts.
func runScenario(ctx context.Context, o options, bins binaries, tmp string, s scenario) (r *result) {
	r = &result{name: s.name}
	w, err := newWorld(ctx, o, bins, s.nodes, tmp)
	if err != nil {
		r.fail("setting up: %v", err)
		if w != nil {
			r.notes = append(r.notes, w.logTails()...)
		}
		return r
	}
	defer w.close()

	// The store is sampled throughout for deliveries pending past their schedule.
	var (
		sampleMu sync.Mutex
		worst    storeCounts
	)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampleCtx.Err() == nil {
			if c, err := w.storeCounts(sampleCtx, o.slack); err == nil {
				sampleMu.Lock()
				if c.overdue > worst.overdue {
					worst.overdue = c.overdue
				}
				worst.oldestOverdue = max(worst.oldestOverdue, c.oldestOverdue)
				sampleMu.Unlock()
			}
			sleep(sampleCtx, time.Second)
		}
	}()
	defer func() { stopSampling(); <-sampled }()

	l := startLoad(w.apiURL, w.tokens, o.rate, o.clients)
	sleep(ctx, o.warm)
	f := &faultLog{}
	if err := s.fault(ctx, w, f); err != nil {
		r.fail("fault: %v", err)
	}
	if f.end.IsZero() { // the fault failed part way
		f.end = time.Now()
	}
	sleep(ctx, o.after)
	l.stop()
	loadEnd := time.Now()
	acc, clientErrors := l.snapshot()
	ids := make([]string, len(acc))
	for i, a := range acc {
		ids[i] = a.id
	}

	// Drain: every accepted submission at the receiver, no delivery pending, every event
	// published, and a delivery recorded for every stored submission (the one webhook takes
	// every submission): an attempt that reached the receiver from a dispatcher killed before
	// it wrote the result is recorded only when its message comes back after AckWait.
	var last storeCounts
	for deadline := loadEnd.Add(o.drainBound); ; {
		c, err := w.storeCounts(ctx, o.slack)
		if err == nil {
			last = c
			if w.recv.delivered(ids) == len(ids) && c.pending == 0 && c.unpublished == 0 &&
				c.deliveriesInStore >= c.submissions {
				r.drained, r.drainAfter = true, time.Since(loadEnd)
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	// A moment more for late duplicates of redelivered messages to show.
	sleep(ctx, o.settle)
	if c, err := w.storeCounts(ctx, o.slack); err == nil {
		last = c
	}
	stopSampling()
	<-sampled

	rc := w.recv.counts()
	r.accepted, r.clientErrors = len(acc), clientErrors
	r.delivered, r.duplicates = rc.distinct, rc.duplicates
	r.pendingEnd = last.pending
	sampleMu.Lock()
	r.overdue, r.oldest = max(worst.overdue, last.overdue), max(worst.oldestOverdue, last.oldestOverdue)
	sampleMu.Unlock()
	for _, p := range w.allProcs() {
		if n, last := p.crashInfo(); n > 0 {
			r.crashes += n
			r.notes = append(r.notes, fmt.Sprintf("%s exited on its own %d times and was restarted (last: %s)", p.name, n, truncate(last, 200)))
		}
	}
	var lostIDs []string
	acceptedDuring, acceptedInWindow := 0, 0
	for _, a := range acc {
		first, ok := rc.firstSeen[a.id]
		if !ok {
			r.lost++
			if len(lostIDs) < 5 {
				lostIDs = append(lostIDs, a.id)
			}
			continue
		}
		if !a.done.After(f.end) {
			r.recovery = max(r.recovery, first.Sub(f.end))
		}
		if a.sent.After(f.start) && a.done.Before(f.end) {
			acceptedDuring++
		}
		if a.sent.After(f.acceptFrom) && a.done.Before(f.acceptTo) {
			acceptedInWindow++
		}
	}
	r.notes = append(r.notes, f.notes...)
	r.notes = append(r.notes, fmt.Sprintf("fault %.1fs; %d accepted during it; store: %d submissions, %d deliveries (%d succeeded, %d failed, %d pending), %d attempts, %d events unpublished",
		f.end.Sub(f.start).Seconds(), acceptedDuring, last.submissions, last.deliveriesInStore, last.succeeded, last.failed, last.pending, last.attemptRows, last.unpublished))
	if clientErrors > 0 {
		r.notes = append(r.notes, "client errors: "+l.errorKinds()+"(first: "+truncate(l.firstErr, 160)+")")
	}
	if extra := rc.distinct - (len(acc) - r.lost); extra > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d delivered events whose submission the client saw fail (committed before the answer was lost)", extra))
	}

	if len(acc) == 0 {
		r.fail("nothing was accepted")
	}
	if inStore, err := w.acceptedInStore(ctx, ids); err != nil {
		r.fail("%v", err)
	} else if inStore != len(ids) {
		r.fail("%d accepted submissions are not in the store", len(ids)-inStore)
	}
	if r.lost > 0 {
		r.fail("%d accepted submissions never delivered (e.g. %s)", r.lost, strings.Join(lostIDs, ", "))
	}
	if !r.drained {
		r.fail("stalled: %s after the load, %d of %d delivered, %d deliveries pending, %d events unpublished, %d of %d submissions with a delivery recorded",
			o.drainBound, w.recv.delivered(ids), len(ids), last.pending, last.unpublished, last.deliveriesInStore, last.submissions)
	} else if last.deliveriesInStore < last.submissions {
		r.fail("%d stored submissions have no delivery recorded", last.submissions-last.deliveriesInStore)
	}
	if r.overdue > 0 {
		r.fail("up to %d deliveries pending more than %s past their schedule (oldest %.0fs past)", r.overdue, o.slack, r.oldest.Seconds())
	}
	if n := w.recv.rejected.Load(); n > 0 {
		r.fail("%d deliveries failed verification: %s", n, *w.recv.firstFail.Load())
	}
	if !f.acceptFrom.IsZero() && acceptedInWindow == 0 {
		r.fail("the restarted api accepted no submission while NATS was down (%.1fs after its kill until NATS came back)", f.acceptTo.Sub(f.acceptFrom).Seconds())
	}
	if len(r.failures) > 0 {
		r.notes = append(r.notes, w.logTails()...)
	}
	return r
}

func (w *world) allProcs() []*proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*proc(nil), w.procs...)
}

// logTails are the last lines of every process's log that warn or fail, for a report.
func (w *world) logTails() []string {
	var out []string
	for _, p := range w.allProcs() {
		var keep []string
		for _, line := range strings.Split(p.logTail(400), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "====") ||
				strings.Contains(line, "[ERR]") || strings.Contains(line, "[FTL]") || strings.Contains(line, "panic") {
				keep = append(keep, "    "+truncate(line, 300))
			}
		}
		if len(keep) > 12 {
			keep = append(keep[:4], append([]string{"    …"}, keep[len(keep)-8:]...)...)
		}
		if len(keep) > 0 {
			out = append(out, p.name+" log ("+p.logPath+"):\n"+strings.Join(keep, "\n"))
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// writeTable prints the results as a table, then each scenario's notes and failures.
func writeTable(b *strings.Builder, rs []*result) {
	fmt.Fprintf(b, "%-22s %8s %9s %5s %5s %8s %8s %9s %8s %7s  %s\n",
		"scenario", "accepted", "delivered", "lost", "dups", "clierrs", "overdue", "recovery", "drain", "crashes", "verdict")
	for _, r := range rs {
		verdict := "ok"
		if len(r.failures) > 0 {
			verdict = "FAIL"
		}
		drain := "stall"
		if r.drained {
			drain = fmt.Sprintf("%.1fs", r.drainAfter.Seconds())
		}
		recovery := "—"
		if r.lost == 0 && r.drained {
			recovery = fmt.Sprintf("%.1fs", r.recovery.Seconds())
		}
		fmt.Fprintf(b, "%-22s %8d %9d %5d %5d %8d %8d %9s %8s %7d  %s\n",
			r.name, r.accepted, r.delivered, r.lost, r.duplicates, r.clientErrors, r.overdue, recovery, drain, r.crashes, verdict)
	}
	for _, r := range rs {
		if len(r.notes)+len(r.failures) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s:\n", r.name)
		for _, f := range r.failures {
			fmt.Fprintf(b, "  FAIL: %s\n", f)
		}
		for _, n := range r.notes {
			fmt.Fprintf(b, "  %s\n", n)
		}
	}
}

// names lists the scenarios' names, sorted.
func names() []string {
	var ns []string
	for _, s := range scenarios {
		ns = append(ns, s.name)
	}
	sort.Strings(ns)
	return ns
}
