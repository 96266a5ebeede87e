// Command faults is the fault suite: it starts the real binaries (cmd/api, two
// cmd/dispatcher, nats-server built from this module's go.mod) on a fresh PostgreSQL
// schema, with a receiver that verifies every delivery, puts a steady load of submissions
// through the API, injects one fault per scenario, waits for the backlog to drain, and
// prints exact counts from the receiver and the store:
//
//	go run ./bench/faults -scenario all -full
//
// Without -full every scenario runs in its short form (shorter outages, fewer events), as
// the package's test does inside go test ./... . PostgreSQL comes from TEST_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable); each scenario gets a
// schema of its own, dropped at the end. The exit status is 1 when any scenario loses an
// accepted submission, stalls, or leaves a delivery pending past its schedule.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}

// options are one run's settings.
type options struct {
	full        bool
	scenarios   []string
	rate        float64 // submissions per second, all clients together
	clients     int
	respondents int
	warm        time.Duration // load before the fault
	after       time.Duration // load after the fault
	procDown    time.Duration // how long a killed api or dispatcher stays down
	natsDown    time.Duration // NATS outage
	nodeDown    time.Duration // how long a killed stream leader stays down
	refuseFor   time.Duration // how long the receiver refuses connections
	drainBound  time.Duration // after the load, the bound on delivering everything
	slack       time.Duration // how far past its schedule a pending delivery may be
	settle      time.Duration // after the drain, for late duplicates
	schedule    string        // WEBHOOK_RETRY_SCHEDULE
	keep        bool          // keep the temporary directory (logs)
}

// shortOptions is the form the test runs: a few hundred events per scenario.
func shortOptions() options {
	return options{
		rate: 20, clients: 4, respondents: 4,
		warm: 3 * time.Second, after: 3 * time.Second,
		procDown: time.Second, natsDown: 5 * time.Second, nodeDown: 5 * time.Second, refuseFor: 10 * time.Second,
		drainBound: 2 * time.Minute, slack: lease + 10*time.Second, settle: time.Second,
		schedule: "0s,1s,2s,5s,10s,20s", // 38 s of attempts: longer than the refusal
	}
}

// fullOptions is the form: NATS down 30 s, the receiver refusing for 60 s, at the
// 300 submissions/s under which the retry claim was seen to stall behind a backlog.
func fullOptions() options {
	return options{
		full: true, rate: 300, clients: 8, respondents: 16,
		warm: 10 * time.Second, after: 20 * time.Second,
		procDown: 5 * time.Second, natsDown: 30 * time.Second, nodeDown: 30 * time.Second, refuseFor: 60 * time.Second,
		drainBound: 5 * time.Minute, slack: lease + 10*time.Second, settle: 2 * time.Second,
		// The schedule's length is the attempt limit: its 138 s outlast the 60 s refusal.
		schedule: "0s,1s,2s,5s,10s,20s,40s,60s",
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	fs.SetOutput(stderr)
	full := fs.Bool("full", false, "the full scenarios (NATS down 30 s, the receiver refusing 60 s, 300 submissions/s)")
	which := fs.String("scenario", "all", "a scenario, a comma-separated list, or all: "+strings.Join(names(), ", "))
	rate := fs.Float64("rate", 0, "submissions per second (default 20, or 300 with -full)")
	clients := fs.Int("clients", 0, "concurrent clients (default 4, or 8 with -full)")
	keep := fs.Bool("keep", false, "keep the temporary directory with the processes' logs")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := shortOptions()
	if *full {
		o = fullOptions()
	}
	o.keep = *keep
	if *rate < 0 || *clients < 0 {
		return o, errors.New("-rate and -clients must not be negative")
	}
	if *rate > 0 {
		o.rate = *rate
	}
	if *clients > 0 {
		o.clients = *clients
	}
	if *which == "all" {
		o.scenarios = names()
	} else {
		for _, n := range strings.Split(*which, ",") {
			if !slices.Contains(names(), n) {
				return o, fmt.Errorf("-scenario: no scenario %q (have %s)", n, strings.Join(names(), ", "))
			}
			o.scenarios = append(o.scenarios, n)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "dispatch24-faults-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "logs in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bins, err := buildBinaries(ctx, tmp, stderr)
	if err != nil {
		return err
	}
	rs := runAll(ctx, o, bins, tmp, func(r *result) {
		fmt.Fprintf(stderr, "%s: %d accepted, %d delivered, %d lost, %d failures\n", r.name, r.accepted, r.delivered, r.lost, len(r.failures))
	})
	var b strings.Builder
	form := "short"
	if o.full {
		form = "full"
	}
	fmt.Fprintf(&b, "fault suite (%s): %.0f submissions/s from %d clients, retry schedule %s, pending slack %s\n\n", form, o.rate, o.clients, o.schedule, o.slack)
	writeTable(&b, rs)
	fmt.Fprint(stdout, b.String())
	failed := 0
	for _, r := range rs {
		if len(r.failures) > 0 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed", failed, len(rs))
	}
	return nil
}

// runAll runs the chosen scenarios one after another (each in a world of its own).
func runAll(ctx context.Context, o options, bins binaries, tmp string, done func(*result)) []*result {
	var rs []*result
	for _, s := range scenarios {
		if !slices.Contains(o.scenarios, s.name) || ctx.Err() != nil {
			continue
		}
		r := runScenario(ctx, o, bins, tmp, s)
		if done != nil {
			done(r)
		}
		rs = append(rs, r)
	}
	return rs
}
