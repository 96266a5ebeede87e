// Command ratelimit measures per-endpoint rate limits (CONTRACT section 8, rateLimit) on the
// real binaries: two dispatcher processes built from cmd/dispatcher, a nats-server built from
// the module's go.mod, PostgreSQL from TEST_DATABASE_URL, and a receiver on 127.0.0.1. One
// survey has two endpoints, one limited (-limit deliveries a second) and one without a limit;
// -events events go to both. It reports the limited endpoint's highest rate over any 10 s
// window (the contract's bound is 1.1 × the limit) and the unlimited endpoint's throughput,
// against a run of the same load with no limited endpoint (the unlimited one alone). Every
// event must reach each endpoint exactly once.
//
//	go run ./bench/ratelimit -events 3000 -limit 50
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/bench/internal/benchapi"
	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

type options struct {
	events, limit, dispatchers int
	baseline                   bool
	timeout                    time.Duration
	dispatcherBin, natsBin     string
	keep                       bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("ratelimit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 3000, "events published, each to both endpoints")
	fs.IntVar(&o.limit, "limit", 50, "the limited endpoint's rateLimit, deliveries a second")
	fs.IntVar(&o.dispatchers, "dispatchers", 2, "dispatcher processes")
	fs.BoolVar(&o.baseline, "baseline", true, "also run the same load to the unlimited endpoint alone")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the longest a run may take")
	fs.StringVar(&o.dispatcherBin, "dispatcher-bin", "", "a built cmd/dispatcher (default: build it)")
	fs.StringVar(&o.natsBin, "nats-bin", "", "a built nats-server (default: build it from go.mod)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (the processes' logs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.events < 1 || o.limit < 1 || o.dispatchers < 1 {
		return errors.New("-events, -limit and -dispatchers must be at least 1")
	}
	tmp, err := os.MkdirTemp("", "ratelimit-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "logs in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	for bin, pkg := range map[*string]string{&o.dispatcherBin: "./cmd/dispatcher", &o.natsBin: "github.com/nats-io/nats-server/v2"} {
		if *bin != "" {
			continue
		}
		*bin = filepath.Join(tmp, filepath.Base(pkg))
		if err := benchapi.Build(ctx, *bin, pkg, stderr); err != nil {
			return err
		}
	}
	scenarios := []int{o.limit}
	if o.baseline {
		scenarios = append(scenarios, 0)
	}
	var results []result
	for i, limit := range scenarios {
		runCtx, cancel := context.WithTimeout(ctx, o.timeout)
		r, err := runScenario(runCtx, o, limit, filepath.Join(tmp, "run-"+strconv.Itoa(i)), stderr)
		cancel()
		if err != nil {
			return fmt.Errorf("run with limit %d: %w", limit, err)
		}
		results = append(results, r)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run\tevents\tdispatchers\tlimit/s\tlimited: max 10 s rate/s\tratio to limit\tlimited: took s\tunlimited: events/s\tunlimited: took s\tduplicates\t\n")
	for _, r := range results {
		name, lim, maxRate, ratio, took := "no limit", "-", "-", "-", "-"
		if r.limit > 0 {
			name, lim = "limited", strconv.Itoa(r.limit)
			maxRate, ratio = fmt.Sprintf("%.1f", r.limitedMax10s), fmt.Sprintf("%.3f", r.limitedMax10s/float64(r.limit))
			took = fmt.Sprintf("%.1f", r.limitedTook.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.0f\t%.2f\t%d\t\n", name, o.events, o.dispatchers, lim, maxRate, ratio, took,
			float64(o.events)/r.freeTook.Seconds(), r.freeTook.Seconds(), r.duplicates)
	}
	return tw.Flush()
}

// result is one run's figures. Durations run from the first event's publication to the last
// receipt at the endpoint.
type result struct {
	limit         int
	limitedMax10s float64 // the most receipts in any 10 s window, divided by 10
	limitedTook   time.Duration
	freeTook      time.Duration
	duplicates    int
}

func runScenario(ctx context.Context, o options, limit int, dir string, stderr io.Writer) (res result, err error) {
	res.limit = limit
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// A fresh schema, migrated by store/postgres.Open as the binaries would.
	base := storetest.DatabaseURL()
	schema := fmt.Sprintf("ratelimit_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return res, fmt.Errorf("PostgreSQL at TEST_DATABASE_URL: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		return res, err
	}
	cleanups = append(cleanups, func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.Background())
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	dbURL := base + sep + "search_path=" + schema
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, db.Close)

	key := secret.GenerateKey()
	keys, err := secret.NewKeyring(key)
	if err != nil {
		return res, err
	}
	rc, err := startReceiver()
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, rc.close)

	// The survey and its two endpoints, through the webhooks' owner (sealed secrets).
	const survey = "ratelimit"
	now := time.Now()
	if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $1, $2, $2)",
		survey, store.Micros(now)); err != nil {
		return res, err
	}
	eps := endpoint.NewStore(db, keys)
	for _, ep := range []struct {
		path  string
		limit int
	}{{"/limited", limit}, {"/free", 0}} {
		if ep.path == "/limited" && limit == 0 {
			continue // the baseline: the unlimited endpoint alone
		}
		e := &endpoint.Endpoint{ID: endpoint.NewID(), SurveyID: survey, URL: rc.url + ep.path,
			Events: []string{events.TypeSessionSubmitted}, SignatureScheme: endpoint.SchemeV1,
			Secret: webhook.NewSecret(), RateLimit: ep.limit, CreatedAt: now, UpdatedAt: now}
		if err := eps.Create(ctx, e); err != nil {
			return res, err
		}
	}

	natsURL, stopNATS, err := startNATS(ctx, o.natsBin, dir)
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, stopNATS)
	for i := range o.dispatchers {
		stop, err := startProcess(ctx, o.dispatcherBin, filepath.Join(dir, fmt.Sprintf("dispatcher-%d.log", i)), "msg=listening",
			[]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + dbURL, "NATS_URL=" + natsURL,
				"SECRETS_KEY=" + secret.EncodeKey(key), "HTTP_ADDR=127.0.0.1:0", "WEBHOOK_ALLOW_NETS=127.0.0.0/8", "RETENTION=0"})
		if err != nil {
			return res, err
		}
		cleanups = append(cleanups, stop)
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	for { // the dispatchers create the stream and the consumer
		if _, err := js.Stream(ctx, events.StreamName); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}

	start, err := publish(ctx, db, js, survey, o.events)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(stderr, "limit %d: published %d events in %s\n", limit, o.events, time.Since(start).Round(time.Millisecond))
	wantLimited := o.events
	if limit == 0 {
		wantLimited = 0
	}
	for rc.distinct("/limited") < wantLimited || rc.distinct("/free") < o.events {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("waiting for deliveries (limited %d, free %d of %d): %w",
				rc.distinct("/limited"), rc.distinct("/free"), o.events, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(time.Second) // duplicates, if any, arrive
	limited, free := rc.times("/limited"), rc.times("/free")
	res.duplicates = len(limited) + len(free) - wantLimited - o.events
	res.freeTook = free[len(free)-1].Sub(start)
	if limit > 0 {
		res.limitedTook = limited[len(limited)-1].Sub(start)
	}
	most := 0
	for i := range limited {
		j := sort.Search(len(limited), func(j int) bool { return !limited[j].Before(limited[i].Add(10 * time.Second)) })
		most = max(most, j-i)
	}
	res.limitedMax10s = float64(most) / 10
	return res, nil
}

// publish stores n events as the outbox does (the archive a parked delivery's retry reads),
// in one transaction, then publishes them all at once, carrying the webhooks version; it
// returns when JetStream has stored them, and when publishing began.
func publish(ctx context.Context, db *store.DB, js jetstream.JetStream, survey string, n int) (time.Time, error) {
	var version int64
	if err := db.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&version); err != nil {
		return time.Time{}, err
	}
	subject := events.Subject(survey, events.TypeSessionSubmitted)
	msgs := make([]events.Message, n)
	err := db.InTx(ctx, func(tx store.Querier) error {
		for i := range msgs {
			ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: survey,
				SessionID: fmt.Sprintf("ses_%d", i), Username: "respondent", SubmissionID: fmt.Sprintf("sub_%d", i),
				Data: json.RawMessage(`{"recall":{"meals":[{"name":"Breakfast","foods":[{"code":"TOAST","portionGrams":40}]}]}}`)}
			body, err := ev.Marshal()
			if err != nil {
				return err
			}
			now := store.Micros(time.Now())
			if _, err := tx.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at, webhooks_version)
				VALUES ($1, $2, $3, $4, $5, '{}', $6, $6, $7)`, ev.ID, ev.Type, survey, subject, body, now, version); err != nil {
				return err
			}
			msgs[i] = events.Message{ID: ev.ID, Type: ev.Type, Subject: subject, Payload: body, WebhooksVersion: version}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	p := &events.Publisher{JS: js}
	start := time.Now()
	for _, m := range msgs {
		if _, err := p.PublishAsync(ctx, m); err != nil {
			return start, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return start, nil
	case <-ctx.Done():
		return start, ctx.Err()
	}
}

// receiver answers 204 to every delivery and records, per path, when each event arrived.
type receiver struct {
	srv *http.Server
	url string

	mu  sync.Mutex
	got map[string][]receipt
	ids map[string]map[string]bool
}

type receipt struct {
	id string
	at time.Time
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{url: "http://" + ln.Addr().String(), got: map[string][]receipt{}, ids: map[string]map[string]bool{}}
	rc.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		rc.got[r.URL.Path] = append(rc.got[r.URL.Path], receipt{id: ev.ID, at: at})
		if rc.ids[r.URL.Path] == nil {
			rc.ids[r.URL.Path] = map[string]bool{}
		}
		rc.ids[r.URL.Path][ev.ID] = true
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) close() { _ = rc.srv.Close() }

func (rc *receiver) distinct(path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.ids[path])
}

// times returns the receipts' times at path, in order.
func (rc *receiver) times(path string) []time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]time.Time, 0, len(rc.got[path]))
	for _, r := range rc.got[path] {
		out = append(out, r.at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// startNATS runs nats-server with JetStream on a free port.
func startNATS(ctx context.Context, bin, dir string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	stop, err = startProcess(ctx, bin, filepath.Join(dir, "nats.log"), "Server is ready", nil,
		"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "nats"))
	return "nats://127.0.0.1:" + strconv.Itoa(port), stop, err
}

// startProcess starts bin with env (when not nil) or args, its output into logPath, and waits
// until it prints ready; stop ends it with SIGTERM (SIGKILL after 10 s).
func startProcess(ctx context.Context, bin, logPath, ready string, env []string, args ...string) (stop func(), err error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = env
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	readyC, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !seen && strings.Contains(sc.Text(), ready) {
				seen = true
				close(readyC)
			}
		}
		_ = cmd.Wait()
		logf.Close()
	}()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case <-readyC:
		return stop, nil
	case <-exited:
		return nil, fmt.Errorf("%s exited before it was ready (see %s)", filepath.Base(bin), logPath)
	case <-time.After(time.Minute):
	case <-ctx.Done():
	}
	stop()
	return nil, fmt.Errorf("%s not ready within a minute (see %s)", filepath.Base(bin), logPath)
}
