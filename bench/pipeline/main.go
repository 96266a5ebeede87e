// Command pipeline measures the whole delivery pipeline on PostgreSQL, end to end: respondents
// POST /api/surveys/{id}/submission → the submission and its event committed in one store
// transaction → the outbox relay publishes to JetStream → dispatcher workers → signed POST →
// 2xx from a receiver on 127.0.0.1 → delivery and attempt log committed in PostgreSQL.
//
//	go run ./bench/pipeline                                 # 20,000 events, 1 endpoint, steady
//	go run ./bench/pipeline -endpoints 4 -mode backlog      # intake first, then the drain
//	go run ./bench/pipeline -rate 1000                      # publish→receipt latency at 1,000/s
//	go run ./bench/pipeline -dispatcher process             # the real cmd/dispatcher binary
//	go run ./bench/pipeline -rate 1000 -events 300000 -purge 1000000  # latency while the retention purge runs
//
// Everything the API runs is real and wired as cmd/api wires it (auth with JWT access tokens,
// surveys, respondents, webhook endpoints, submission intake, the outbox relay, embedded NATS
// with JetStream); setup goes through the API's own routes. The receiver verifies signatures
// and the Authorization JWT with pkg/webhook's Verifier and counts distinct webhook-ids per
// endpoint. A run fails unless PostgreSQL holds exactly one succeeded delivery with a 2xx
// attempt row for every (accepted submission, endpoint) and the receiver saw every one.
//
// The process runs with the API's garbage-collector default, GOGC=400 (internal/gctune, as
// cmd/api and bench/intake apply it), unless GOGC is set: the in-process API allocates most of
// the heap (10 KB bodies), and at the runtime's 100 its collector took a tenth of the CPU here.
// The in-process dispatcher shares it, where cmd/dispatcher runs at 100 (-dispatcher process
// measures that). The report's first line says which.
//
// PostgreSQL comes from TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), in a fresh schema dropped at the
// end, as the tests do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch24/dispatch24/internal/gctune"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gctune.Apply(os.Getenv)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

type options struct {
	events        int
	endpoints     int
	clients       int
	respondents   int
	recallBytes   int
	mode          string
	rate          int
	dispatcher    string
	dispatcherBin string
	api           string
	apiBin        string
	verify        string
	verifyEvery   int
	timeout       time.Duration
	cpuprofile    string
	profileDir    string
	bare          bool
	purgeRows     int
	purgeAfter    time.Duration
	purgeWindow   time.Duration
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	var recall string
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 20000, "submissions (events) to send; deliveries = events × endpoints")
	fs.IntVar(&o.endpoints, "endpoints", 1, "webhook endpoints subscribed to the survey")
	fs.IntVar(&o.clients, "clients", 16, "concurrent submitting clients")
	fs.IntVar(&o.respondents, "respondents", 100, "respondents signed in (clients take turns with them)")
	fs.StringVar(&recall, "recall-size", "10KB", "approximate recall size (e.g. 2KB, 10KB, 100KB)")
	fs.StringVar(&o.mode, "mode", "steady", "steady: submit while delivering; backlog: submit all first, then start delivery and measure the drain")
	fs.IntVar(&o.rate, "rate", 0, "total submissions per second (0: as fast as the clients go)")
	fs.StringVar(&o.dispatcher, "dispatcher", "inproc", "inproc: workers in the API's process (embedded mode); process: the cmd/dispatcher binary over TCP NATS")
	fs.StringVar(&o.dispatcherBin, "dispatcher-bin", "", "with -dispatcher process: a built cmd/dispatcher (default: go build it)")
	fs.StringVar(&o.api, "api", "inproc", "inproc: the API in this process, wired as cmd/api wires it; process: the cmd/api binary (its CPU time is then its own, apart from the load generator's)")
	fs.StringVar(&o.apiBin, "api-bin", "", "with -api process: a built cmd/api (default: go build it)")
	fs.StringVar(&o.verify, "verify", "sample", "receiver verification: all, sample (every -verify-every-th request), none")
	fs.IntVar(&o.verifyEvery, "verify-every", 10, "with -verify sample: verify one request in this many")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process over the delivery window (backlog: the drain) here")
	fs.BoolVar(&o.bare, "bare", true, "with -mode backlog: after the drain, run the bare loop (pull → sign → POST → ack, no database) over the same events and print the drain's ratio to it")
	fs.StringVar(&o.profileDir, "profile-dir", "", "write CPU, allocation, block and mutex profiles of this process (the in-process API and dispatcher) over the delivery window into this directory")
	fs.IntVar(&o.purgeRows, "purge", 0, "with -mode steady: store this many expired deliveries (one attempt each) before the run and run the retention purge over them -purge-after into the load; latencies are then reported before, during and after the purge")
	fs.DurationVar(&o.purgeAfter, "purge-after", 30*time.Second, "with -purge: when the purge starts, counted from the load's start")
	fs.DurationVar(&o.purgeWindow, "purge-window", 0, "with -purge: run the purger in windows of this length with pauses as long between them, so latencies with and without it interleave (0: in one go)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the run has not completed by then")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.recallBytes, err = parseSize(recall); err != nil {
		return o, fmt.Errorf("-recall-size: %w", err)
	}
	switch {
	case o.events < 1:
		return o, errors.New("-events must be at least 1")
	case o.endpoints < 1 || o.endpoints > 100:
		return o, errors.New("-endpoints must be between 1 and 100")
	case o.clients < 1:
		return o, errors.New("-clients must be at least 1")
	case o.respondents < 1:
		return o, errors.New("-respondents must be at least 1")
	case o.recallBytes < 512 || o.recallBytes > 900<<10:
		return o, errors.New("-recall-size must be between 512B and 900KB (the API's limit is 1 MiB)")
	case o.mode != "steady" && o.mode != "backlog":
		return o, fmt.Errorf("-mode must be steady or backlog, not %q", o.mode)
	case o.rate < 0:
		return o, errors.New("-rate must not be negative")
	case o.dispatcher != "inproc" && o.dispatcher != "process":
		return o, fmt.Errorf("-dispatcher must be inproc or process, not %q", o.dispatcher)
	case o.api != "inproc" && o.api != "process":
		return o, fmt.Errorf("-api must be inproc or process, not %q", o.api)
	case o.api == "process" && o.dispatcher != "process":
		return o, errors.New("-api process needs -dispatcher process (the in-process workers live in the API's process)")
	case o.verify != "all" && o.verify != "sample" && o.verify != "none":
		return o, fmt.Errorf("-verify must be all, sample or none, not %q", o.verify)
	case o.verifyEvery < 1:
		return o, errors.New("-verify-every must be at least 1")
	case o.purgeRows < 0:
		return o, errors.New("-purge must not be negative")
	case o.purgeRows > 0 && o.mode != "steady":
		return o, errors.New("-purge needs -mode steady (the purge runs while submissions are delivered)")
	case o.purgeAfter < 0 || o.purgeWindow < 0:
		return o, errors.New("-purge-after and -purge-window must not be negative")
	}
	return o, nil
}

// parseSize reads 10KB, 10kb, 10K, 10240 or 1MB (binary multiples).
func parseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n * mult, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// The machine is shared: note how busy it is before the run starts.
	b0, t0 := machineCPU()
	time.Sleep(time.Second)
	b1, t1 := machineCPU()
	background := busyPct(cpuSample{busy: b1 - b0, total: t1 - t0})

	w, err := newWorld(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer w.close()

	res, err := w.measure(ctx)
	if err != nil {
		return err
	}
	if err := w.verifyCounts(ctx, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "machine: %d cores, %.0f%% busy in the second before the run (other work on the machine)\n", cores(), background)
	report(stdout, o, w, res)
	return nil
}
