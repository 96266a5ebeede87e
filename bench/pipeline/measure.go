package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"
)

// cpuSample is the CPU counters at one moment.
type cpuSample struct {
	self, api, dispatcher, postgres, pgAux time.Duration
	busy, total                            time.Duration
}

func (w *world) sampleCPU(d *runningDispatcher) cpuSample {
	s := cpuSample{self: selfCPU()}
	s.postgres, s.pgAux = w.pg.total()
	if d != nil && d.pid != 0 {
		s.dispatcher = procCPU(d.pid)
	}
	if w.apiPid != 0 {
		s.api = procCPU(w.apiPid)
	}
	s.busy, s.total = machineCPU()
	return s
}

func (a cpuSample) sub(b cpuSample) cpuSample {
	return cpuSample{self: a.self - b.self, api: a.api - b.api, dispatcher: a.dispatcher - b.dispatcher, postgres: a.postgres - b.postgres,
		pgAux: a.pgAux - b.pgAux, busy: a.busy - b.busy, total: a.total - b.total}
}

type result struct {
	load loadResult

	// Intake: first request sent → last 201 answered.
	intake time.Duration
	// outboxDrained: last 201 → no unpublished event left (backlog mode).
	outboxDrained time.Duration

	// Delivery window: steady: first request sent → every delivery recorded; backlog:
	// workers started → every delivery recorded.
	deliveryStart time.Time
	lastReceipt   time.Time
	allRecorded   time.Time

	disp *runningDispatcher

	purge      *purgeRun  // with -purge
	stages     bool       // the span log holds the run's spans
	bare       bareResult // backlog: the bare loop over the same events, after the drain
	bareCopied int

	cpu       cpuSample     // over the delivery window (steady: the whole run)
	cpuIntake cpuSample     // backlog: over the intake
	rss, peak int64         // dispatcher process
	lat       latencyResult // 201 → first receipt
	checked   checked
}

type latencyResult struct {
	// fromSend starts at the due time under a rate (open loop), else at the send time.
	fromResp, fromSend []time.Duration
	missing            int
}

func (w *world) startDispatcher(ctx context.Context) (*runningDispatcher, error) {
	if w.o.dispatcher == "process" {
		return w.startProcess(ctx)
	}
	return w.startInProcess(ctx)
}

func (w *world) measure(ctx context.Context) (*result, error) {
	res := &result{}
	n := w.o.events
	want := int64(n * w.o.endpoints)
	var err error
	switch w.o.mode {
	case "steady":
		if res.disp, err = w.startDispatcher(ctx); err != nil {
			return nil, err
		}
		c0 := w.sampleCPU(res.disp)
		stopProfile, err := w.startProfile()
		if err != nil {
			return nil, err
		}
		if w.spans != nil && w.o.dispatcher == "inproc" {
			w.spans.on.Store(true)
		}
		var waitPurge func() *purgeRun
		if w.o.purgeRows > 0 {
			if waitPurge, err = w.startPurge(ctx, time.Now()); err != nil {
				return nil, err
			}
		}
		res.load = submit(ctx, w.apiURL, w.respondents, n, w.o.clients, w.o.recallBytes, w.o.rate, w.stderr)
		res.intake = res.load.lastDone.Sub(res.load.firstSent)
		res.deliveryStart = res.load.firstSent
		want = int64(len(res.load.accepted) * w.o.endpoints)
		if err := w.waitDelivered(ctx, want, res); err != nil {
			return nil, err
		}
		if waitPurge != nil {
			res.purge = waitPurge()
		}
		stopProfile()
		res.cpu = w.sampleCPU(res.disp).sub(c0)
		if w.spans != nil && w.spans.on.Load() {
			// The last messages' process spans end with their ack, just after the rows are
			// counted.
			time.Sleep(200 * time.Millisecond)
			w.spans.on.Store(false)
			res.stages = true
		}
	case "backlog":
		c0 := w.sampleCPU(nil)
		res.load = submit(ctx, w.apiURL, w.respondents, n, w.o.clients, w.o.recallBytes, w.o.rate, w.stderr)
		res.intake = res.load.lastDone.Sub(res.load.firstSent)
		if err := w.waitOutbox(ctx); err != nil {
			return nil, err
		}
		res.outboxDrained = time.Since(res.load.lastDone)
		res.cpuIntake = w.sampleCPU(nil).sub(c0)
		info, err := w.consumer.Info(ctx)
		if err != nil {
			return nil, err
		}
		if int(info.NumPending) != len(res.load.accepted) {
			return nil, fmt.Errorf("the stream holds %d undelivered events for %d accepted submissions", info.NumPending, len(res.load.accepted))
		}
		want = int64(len(res.load.accepted) * w.o.endpoints)
		if w.o.bare {
			if res.bareCopied, err = w.bareCopy(ctx); err != nil {
				return nil, fmt.Errorf("copying the events for the bare loop: %w", err)
			}
		}
		c1 := w.sampleCPU(nil)
		stopProfile, err := w.startProfile()
		if err != nil {
			return nil, err
		}
		if res.disp, err = w.startDispatcher(ctx); err != nil {
			return nil, err
		}
		if res.disp.pid != 0 {
			c1.dispatcher = procCPU(res.disp.pid)
		}
		res.deliveryStart = res.disp.started
		if err := w.waitDelivered(ctx, want, res); err != nil {
			return nil, err
		}
		stopProfile()
		res.cpu = w.sampleCPU(res.disp).sub(c1)
		if w.o.bare {
			// After the drain, so the two never share the machine; the dispatcher is idle.
			if res.bare, err = w.runBare(ctx, res.bareCopied); err != nil {
				return nil, err
			}
		}
	}
	if res.disp.pid != 0 {
		res.rss, res.peak = procRSS(res.disp.pid)
	}
	res.lat = w.latencies(res.load.accepted)
	return res, nil
}

// startProfile starts the CPU profile of -cpuprofile, and with -profile-dir the CPU, block
// and mutex profiles (every event) and a baseline of allocations; the returned func stops
// them and writes them out.
func (w *world) startProfile() (func(), error) {
	cpuFile := w.o.cpuprofile
	if w.o.profileDir != "" {
		if err := os.MkdirAll(w.o.profileDir, 0o755); err != nil {
			return nil, err
		}
		cpuFile = filepath.Join(w.o.profileDir, "cpu.pprof")
		runtime.SetBlockProfileRate(1)
		runtime.SetMutexProfileFraction(1)
	}
	if cpuFile == "" {
		return func() {}, nil
	}
	f, err := os.Create(cpuFile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if w.o.profileDir == "" {
			return
		}
		// allocs holds every allocation since the start (setup included, a small part).
		for _, name := range []string{"allocs", "block", "mutex"} {
			pf, err := os.Create(filepath.Join(w.o.profileDir, name+".pprof"))
			if err != nil {
				fmt.Fprintln(w.stderr, "profile:", err)
				continue
			}
			_ = pprof.Lookup(name).WriteTo(pf, 0)
			pf.Close()
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

// waitOutbox waits until every stored event has been acknowledged by JetStream.
func (w *world) waitOutbox(ctx context.Context) error {
	for {
		var left int
		if err := w.db.QueryRow(ctx, "SELECT count(*) FROM events WHERE published_at IS NULL").Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d events still in the outbox: %w", left, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitDelivered waits until the receiver has seen want distinct deliveries, then until
// PostgreSQL holds want succeeded deliveries; allRecorded is the first poll that saw them.
func (w *world) waitDelivered(ctx context.Context, want int64, res *result) error {
	progress := time.Now()
	for w.recv.distinct.Load() < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the receiver got %d of %d deliveries (%d rejected, %d malformed): %w",
				w.recv.distinct.Load(), want, w.recv.rejected.Load(), w.recv.malformed.Load(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Since(progress) > 10*time.Second {
			progress = time.Now()
			fmt.Fprintf(w.stderr, "… received %d of %d\n", w.recv.distinct.Load(), want)
		}
	}
	res.lastReceipt = time.Unix(0, w.recv.lastReceipt.Load())
	for {
		var got int64
		// The survey's own: -purge stores expired deliveries of another survey.
		if err := w.db.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE survey_id = $1 AND status = 'succeeded'", surveyID).Scan(&got); err != nil {
			return err
		}
		if got >= want {
			res.allRecorded = time.Now()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL recorded %d of %d deliveries: %w", got, want, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// latencies pairs each accepted submission with its first receipt at every endpoint.
func (w *world) latencies(acc []submitted) latencyResult {
	var l latencyResult
	for _, ep := range w.recv.eps {
		ep.mu.Lock()
		for _, s := range acc {
			at, ok := ep.firstSeen[s.id]
			if !ok {
				l.missing++
				continue
			}
			l.fromResp = append(l.fromResp, at.Sub(s.done))
			l.fromSend = append(l.fromSend, at.Sub(s.from()))
		}
		ep.mu.Unlock()
	}
	slices.Sort(l.fromResp)
	slices.Sort(l.fromSend)
	return l
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d)-1) * p / 100)
	return d[i].Round(100 * time.Microsecond)
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func report(out io.Writer, o options, w *world, r *result) {
	n := len(r.load.accepted)
	deliveries := n * o.endpoints
	rate := "max"
	if o.rate > 0 {
		rate = fmt.Sprintf("%d/s", o.rate)
	}
	fmt.Fprintf(out, "pipeline: mode=%s dispatcher=%s events=%d endpoints=%d clients=%d respondents=%d recall=%dB rate=%s verify=%s gogc=%s\n",
		o.mode, o.dispatcher, o.events, o.endpoints, o.clients, o.respondents, r.load.recallBytes, rate, verifyName(o), gogc())
	fmt.Fprintf(out, "submissions: %d accepted (%d errors) in %s = %.0f submissions/s\n",
		n, r.load.errors, r.intake.Round(time.Millisecond), perSec(n, r.intake))
	if o.rate > 0 {
		late := make([]time.Duration, 0, n)
		for _, s := range r.load.accepted {
			late = append(late, s.late)
		}
		slices.Sort(late)
		var behind int
		for _, l := range late {
			if l > 50*time.Millisecond {
				behind++
			}
		}
		verdict := "kept"
		if perSec(n, r.intake) < 0.97*float64(o.rate) || pct(late, 99) > 10*time.Millisecond {
			verdict = "NOT kept: the generator itself fell behind (machine too busy); latencies still count from the due times"
		}
		fmt.Fprintf(out, "schedule: open loop (submission i due at start + i/%d s, sent then on its own goroutine, never skipped; latencies below count from the due time); asked %d/s, achieved %.0f/s; generator lag p50 %s p99 %s, %.1f%% more than 50ms late; at most %d requests in flight (%s)\n",
			o.rate, o.rate, perSec(n, r.intake), pct(late, 50), pct(late, 99), 100*float64(behind)/float64(max(n, 1)), r.load.inFlightMax, verdict)
	}
	if o.mode == "backlog" {
		if w.apiPid != 0 {
			fmt.Fprintf(out, "intake CPU: api process %s = %.0f µs per submission\n", r.cpuIntake.api.Round(time.Millisecond), float64(r.cpuIntake.api.Microseconds())/float64(max(n, 1)))
		}
		fmt.Fprintf(out, "outbox: empty %s after the last 201; intake CPU: this process %s, postgres backends %s = %.0f µs per submission; machine busy %.0f%%\n",
			r.outboxDrained.Round(time.Millisecond), r.cpuIntake.self.Round(time.Millisecond), r.cpuIntake.postgres.Round(time.Millisecond),
			float64((r.cpuIntake.self+r.cpuIntake.postgres).Microseconds())/float64(max(n, 1)), busyPct(r.cpuIntake))
		if r.disp.launch > 0 {
			fmt.Fprintf(out, "dispatcher process: exec → listening %s (not in the drain time)\n", r.disp.launch.Round(time.Millisecond))
		}
	}
	win := r.allRecorded.Sub(r.deliveryStart)
	what := "first submission sent → every attempt row committed"
	if o.mode == "backlog" {
		what = "workers started → every attempt row committed"
	}
	fmt.Fprintf(out, "deliveries: %d in %s (%s) = %.0f deliveries/s; last receipt at %s = %.0f/s\n",
		deliveries, win.Round(time.Millisecond), what, perSec(deliveries, win),
		r.lastReceipt.Sub(r.deliveryStart).Round(time.Millisecond), perSec(deliveries, r.lastReceipt.Sub(r.deliveryStart)))
	fmt.Fprintf(out, "latency 201 → receipt: p50 %s  p90 %s  p99 %s  max %s (n=%d)\n",
		pct(r.lat.fromResp, 50), pct(r.lat.fromResp, 90), pct(r.lat.fromResp, 99), pct(r.lat.fromResp, 100), len(r.lat.fromResp))
	from := "sent"
	if o.rate > 0 {
		from = "due"
	}
	fmt.Fprintf(out, "latency %s → receipt: p50 %s  p99 %s; request %s → 201: p50 %s  p99 %s\n",
		from, pct(r.lat.fromSend, 50), pct(r.lat.fromSend, 99), from, pct(requestLatencies(r.load.accepted), 50), pct(requestLatencies(r.load.accepted), 99))
	fmt.Fprintf(out, "receiver: %d requests, %d distinct webhook-ids, %d duplicates, %d verified, %d rejected\n",
		w.recv.requests.Load(), w.recv.distinct.Load(), w.recv.duplicates(), w.recv.verified.Load(), w.recv.rejected.Load())
	fmt.Fprintf(out, "postgres: %d succeeded deliveries, %d attempt rows (%d 2xx), every (submission, endpoint) has its succeeded row\n",
		r.checked.succeeded, r.checked.attempts, r.checked.attempts2xx)
	fmt.Fprintf(out, "dispatcher: %d deliveries first attempted ≥1s after the dispatcher took their event (parked for a congested endpoint, sent from the store); longest %s\n",
		r.checked.parked, r.checked.maxInternal.Round(time.Millisecond))
	c := r.cpu
	fmt.Fprintf(out, "cpu over the delivery window: this process %s", c.self.Round(time.Millisecond))
	if w.apiPid != 0 {
		fmt.Fprintf(out, ", api process %s", c.api.Round(time.Millisecond))
	}
	if r.disp.pid != 0 {
		fmt.Fprintf(out, ", dispatcher process %s", c.dispatcher.Round(time.Millisecond))
	}
	fmt.Fprintf(out, ", postgres backends %s = %.0f µs per delivery; postgres WAL writer, checkpointer and bgwriter (shared) %s; machine busy %.0f%% of %d cores\n",
		c.postgres.Round(time.Millisecond), float64((c.self+c.dispatcher+c.postgres).Microseconds())/float64(max(deliveries, 1)),
		c.pgAux.Round(time.Millisecond), busyPct(c), cores())
	if w.apiPid != 0 && r.disp.pid != 0 {
		// The CPU the product spends per submission, without the harness's (load generator,
		// receiver) or PostgreSQL's: what the parser A/B comparisons of issue 12 compare.
		api := r.cpu.api + r.cpuIntake.api
		per := func(d time.Duration) float64 { return d.Seconds() * 10000 / float64(max(n, 1)) }
		fmt.Fprintf(out, "process cpu per 10,000 submissions: api %.3fs + dispatcher %.3fs = %.3fs\n",
			per(api), per(r.cpu.dispatcher), per(api+r.cpu.dispatcher))
	}
	if r.bare.deliveries > 0 {
		drain := perSec(deliveries, win)
		bare := perSec(r.bare.deliveries, r.bare.took)
		fmt.Fprintf(out, "bare loop (JetStream pull → sign with pkg/webhook → POST → ack, no database; same events, receiver kind, endpoints and concurrency, after the drain): %d deliveries in %s = %.0f/s, this process %s CPU\n",
			r.bare.deliveries, r.bare.took.Round(time.Millisecond), bare, r.bare.cpu.Round(time.Millisecond))
		fmt.Fprintf(out, "drain / bare loop: %.0f / %.0f = %.2f\n", drain, bare, drain/bare)
	}
	reportPurge(out, w, r)
	if r.stages {
		reportStages(out, w.spans, r.load.accepted)
	}
	if r.disp.pid != 0 {
		fmt.Fprintf(out, "dispatcher process RSS: %.1f MiB at the end, peak %.1f MiB\n", float64(r.rss)/(1<<20), float64(r.peak)/(1<<20))
	}
}

func requestLatencies(acc []submitted) []time.Duration {
	d := make([]time.Duration, len(acc))
	for i, s := range acc {
		d[i] = s.done.Sub(s.from())
	}
	slices.Sort(d)
	return d
}

func busyPct(c cpuSample) float64 {
	if c.total <= 0 {
		return 0
	}
	return 100 * float64(c.busy) / float64(c.total)
}

func verifyName(o options) string {
	if o.verify == "sample" {
		return fmt.Sprintf("1-in-%d", o.verifyEvery)
	}
	return o.verify
}

// gogc is this process's GOGC as the runtime has it ("off" when disabled).
func gogc() string {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	if p < 0 {
		return "off"
	}
	return strconv.Itoa(p)
}
