// Command intake measures survey submissions through the real HTTP stack: the API's
// middleware (request ids, spans, metrics, logs), the router's policy check, recall
// validation, group commit into the store with the event in the same transaction, and the
// outbox relay publishing to an embedded JetStream. Clients post over loopback.
//
//	go run ./bench/intake -store postgres -clients 16 -duration 10s
//	go run ./bench/intake -store sqlite -clients 16 -duration 10s
//	go run ./bench/intake -store postgres -rate 1000 -consume   # relay lag at a steady rate
//
// It reports accepted submissions per second and request latency; with -consume a consumer
// on the stream also reports how long after the 201 reached the client the event arrived.
// PostgreSQL comes from TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), in a schema of its own dropped at
// the end. Authentication is a map lookup (a JWT check would add a few microseconds).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/gctune"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/sqlite"
	"github.com/dispatch24/dispatch24/internal/submission"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
}

type options struct {
	store       string
	clients     int
	duration    time.Duration
	warmup      time.Duration
	recallBytes int
	rate        int
	consume     bool
	writers     int
	maxBatch    int
	linger      time.Duration
	cpuprofile  string
	memprofile  string
	blockprof   string
	mutexprof   string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("intake", flag.ContinueOnError)
	fs.StringVar(&o.store, "store", "sqlite", "sqlite or postgres")
	fs.IntVar(&o.clients, "clients", 16, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time first")
	fs.IntVar(&o.recallBytes, "recall-bytes", 10<<10, "approximate recall size")
	fs.IntVar(&o.rate, "rate", 0, "total submissions per second (0: as fast as possible)")
	fs.BoolVar(&o.consume, "consume", false, "consume the stream and report the relay's lag")
	fs.IntVar(&o.writers, "writers", 0, "concurrent batch transactions (0: the service's default)")
	fs.DurationVar(&o.linger, "linger", 0, "group commit linger")
	fs.IntVar(&o.maxBatch, "max-batch", 0, "submissions per transaction (0: the service's default; 1 with -writers 16: a transaction per request)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured window here")
	fs.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile here at the end")
	fs.StringVar(&o.blockprof, "blockprofile", "", "write a block profile (every blocking event) of the run here at the end")
	fs.StringVar(&o.mutexprof, "mutexprofile", "", "write a mutex contention profile (every event) of the run here at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The API's GC default (cmd/api applies the same), unless GOGC is set.
	gcPercent, _ := gctune.Apply(os.Getenv)

	tmp, err := os.MkdirTemp("", "intake-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	db, cleanup, err := openStore(ctx, o.store, tmp)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := seed(ctx, db, o.clients); err != nil {
		return err
	}

	ns, err := embeddednats.Start(embeddednats.Config{StoreDir: filepath.Join(tmp, "nats")})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := events.EnsureStream(ctx, js, events.StreamConfig{}); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := telemetry.NewMetrics()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.WithoutCancel(ctx)) //nolint:errcheck
	prop := propagation.TraceContext{}
	relay, err := outbox.New(outbox.Config{DB: db, JS: js, Metrics: metrics, Logger: logger, TracerProvider: tp, Propagator: prop})
	if err != nil {
		return err
	}
	svc, err := submission.New(submission.Config{DB: db, Outbox: relay, Metrics: metrics, Logger: logger,
		TracerProvider: tp, Propagator: prop, Writers: o.writers, MaxBatch: o.maxBatch, Linger: o.linger})
	if err != nil {
		return err
	}
	rt := httpapi.NewRouter(auth{}, logger)
	svc.Register(rt)
	handler := httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger, Metrics: metrics,
		Tracer: tp.Tracer("dispatch24/api"), Propagator: prop}, rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); _ = httpapi.Serve(runCtx, ln, handler, logger, 5*time.Second) }()
	go func() { defer bg.Done(); _ = relay.Run(runCtx) }()
	defer func() { stop(); bg.Wait() }()

	var lag *lagMeter
	if o.consume {
		if lag, err = consume(runCtx, js); err != nil {
			return err
		}
	}

	base := "http://" + ln.Addr().String()
	profiled := make(chan struct{})
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		go func() {
			defer close(profiled)
			time.Sleep(o.warmup)
			_ = pprof.StartCPUProfile(f)
			time.Sleep(o.duration)
			pprof.StopCPUProfile()
		}()
	} else {
		close(profiled)
	}
	if o.blockprof != "" {
		runtime.SetBlockProfileRate(1)
	}
	if o.mutexprof != "" {
		runtime.SetMutexProfileFraction(1)
	}
	cpuStart := cpuTime()
	res := load(base, o, lag)
	cpuUsed := cpuTime() - cpuStart
	<-profiled // the profile is complete before the file closes
	for _, p := range []struct{ name, file string }{{"block", o.blockprof}, {"mutex", o.mutexprof}} {
		if p.file == "" {
			continue
		}
		f, err := os.Create(p.file)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup(p.name).WriteTo(f, 0); err != nil {
			return err
		}
	}
	if o.memprofile != "" {
		f, err := os.Create(o.memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}

	// Every accepted submission's event must reach the stream.
	drainStart := time.Now()
	for {
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM events WHERE published_at IS NULL").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if time.Since(drainStart) > time.Minute {
			return fmt.Errorf("%d events still unpublished after a minute", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var stored int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM submissions").Scan(&stored); err != nil {
		return err
	}

	secs := o.duration.Seconds()
	fmt.Fprintf(out, "store=%s clients=%d recall=%dB rate=%s duration=%s\n", o.store, o.clients, res.recallSize, rateName(o.rate), o.duration)
	fmt.Fprintf(out, "accepted: %d in the measured window = %.0f submissions/s (errors %d; %d stored in all)\n",
		res.accepted, float64(res.accepted)/secs, res.errors, stored)
	fmt.Fprintf(out, "latency:  p50 %s  p90 %s  p99 %s  max %s\n", pct(res.latencies, 50), pct(res.latencies, 90), pct(res.latencies, 99), pct(res.latencies, 100))
	fmt.Fprintf(out, "this process (clients, API, relay, NATS server): %.0f µs CPU per accepted submission\n",
		float64(cpuUsed.Microseconds())*secs/(o.warmup+o.duration).Seconds()/float64(max(res.accepted, 1)))
	fmt.Fprintf(out, "memory: max RSS %d MiB (GOGC %s)\n", maxRSS()>>20, gcName(gcPercent))
	fmt.Fprintf(out, "outbox drained %s after the load stopped\n", time.Since(drainStart).Round(time.Millisecond))
	if lag != nil {
		fromResp, fromSend := lag.results()
		fmt.Fprintf(out, "event received after the client's 201: p50 %s  p90 %s  p99 %s (n=%d)\n", pct(fromResp, 50), pct(fromResp, 90), pct(fromResp, 99), len(fromResp))
		fmt.Fprintf(out, "event received after the request was sent: p50 %s  p90 %s  p99 %s\n", pct(fromSend, 50), pct(fromSend, 90), pct(fromSend, 99))
	}
	return nil
}

func rateName(r int) string {
	if r <= 0 {
		return "max"
	}
	return strconv.Itoa(r) + "/s"
}

// openStore opens a fresh database: SQLite in dir, or PostgreSQL in a new schema.
func openStore(ctx context.Context, kind, dir string) (*store.DB, func(), error) {
	switch kind {
	case "sqlite":
		db, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
		if err != nil {
			return nil, nil, err
		}
		return db, db.Close, nil
	case "postgres":
		base := os.Getenv("TEST_DATABASE_URL")
		if base == "" {
			base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "bench_" + hex.EncodeToString(b[:])
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return nil, nil, err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			return nil, nil, err
		}
		drop := func() {
			c, err := pgx.Connect(context.Background(), base)
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
				c.Close(context.Background())
			}
		}
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		// application_name lets an observer find the bench's backends (pg_stat_activity) and
		// measure the server's CPU per submission.
		db, err := postgres.Open(ctx, base+sep+"search_path="+schema+"&application_name=intake-bench")
		if err != nil {
			drop()
			return nil, nil, err
		}
		return db, func() { db.Close(); drop() }, nil
	}
	return nil, nil, fmt.Errorf("-store must be sqlite or postgres, not %q", kind)
}

// seed creates the survey and one respondent per client.
func seed(ctx context.Context, db *store.DB, clients int) error {
	now := store.Micros(time.Now())
	if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, redirect_url, redirect_identifier, created_at, updated_at)
		VALUES ('bench', 'Bench', 'https://example.org/done?u={identifier}', 'username', $1, $1)`, now); err != nil {
		return err
	}
	for i := 0; i < clients; i++ {
		id := "u" + strconv.Itoa(i)
		if _, err := db.Exec(ctx, `INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at)
			VALUES ($1, 'bench', $2, $3, $4, $4)`, id, "user"+strconv.Itoa(i), "tok"+strconv.Itoa(i), now); err != nil {
			return err
		}
	}
	return nil
}

// auth authenticates X-Auth-Token "u<n>" as respondent u<n> of the bench survey.
type auth struct{}

func (auth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return nil, nil
	}
	return &httpapi.Principal{UserID: tok, Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent},
		SurveyID: "bench", Username: "user" + strings.TrimPrefix(tok, "u")}, nil
}

// recallBody builds a recall of about size bytes; %s is where the sessionId goes.
func recallBody(size int) string {
	var b strings.Builder
	b.WriteString(`{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:25:00Z","sessionId":"%s","meals":[`)
	for m := 0; b.Len() < size-300; m++ {
		if m > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"Meal %d","time":"%02d:15","foods":[`, m, 7+m%14)
		for f := 0; f < 6 && b.Len() < size-300; f++ {
			if f > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"code":"FOOD%04d","englishName":"Food number %d","portionSize":{"method":"as-served","servingWeight":%d.5,"leftoversWeight":0},"nutrients":{"energy":%d,"protein":%d.25}}`,
				m*10+f, f, 100+f, 200+f*3, f)
		}
		b.WriteString(`],"customData":{"place":"home"}}`)
	}
	b.WriteString(`],"customData":{"device":"bench","locale":"en_GB"}}`)
	return b.String()
}

type loadResult struct {
	accepted   int64
	errors     int64
	latencies  []time.Duration
	recallSize int
}

// load runs the clients for warmup+duration and counts what completed inside the window.
func load(base string, o options, lag *lagMeter) loadResult {
	tmpl := recallBody(o.recallBytes)
	// The client's share of the two cores is kept small: bodies are assembled by copying.
	prefix, suffix, _ := strings.Cut(tmpl, "%s")
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, MaxConnsPerHost: o.clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	start := time.Now()
	windowStart, windowEnd := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	var (
		accepted, failed atomic.Int64
		mu               sync.Mutex
		latencies        []time.Duration
		wg               sync.WaitGroup
	)
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.clients) / float64(o.rate))
	}
	for c := 0; c < o.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := "u" + strconv.Itoa(c)
			var (
				local []time.Duration
				buf   bytes.Buffer
			)
			next := time.Now().Add(time.Duration(c) * interval / time.Duration(o.clients))
			for n := 0; ; n++ {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				sent := time.Now()
				if sent.After(windowEnd) {
					break
				}
				session := "c" + strconv.Itoa(c) + "-" + strconv.Itoa(n)
				buf.Reset()
				buf.WriteString(prefix)
				buf.WriteString(session)
				buf.WriteString(suffix)
				req, _ := http.NewRequest("POST", base+"/api/surveys/bench/submission", bytes.NewReader(buf.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Auth-Token", token)
				req.Header.Set("Idempotency-Key", session)
				res, err := client.Do(req)
				var rb []byte
				if err == nil {
					rb, _ = io.ReadAll(res.Body)
					res.Body.Close()
				}
				done := time.Now()
				ok := err == nil && res.StatusCode == http.StatusCreated
				if lag != nil && ok {
					var sub struct{ SubmissionID string }
					if json.Unmarshal(rb, &sub) == nil {
						lag.responded(sub.SubmissionID, sent, done)
					}
				}
				if sent.Before(windowStart) || done.After(windowEnd) {
					continue
				}
				if !ok {
					failed.Add(1)
					if failed.Load() <= 3 {
						fmt.Fprintf(os.Stderr, "request failed: %v %s\n", err, bytes.TrimSpace(rb))
					}
					continue
				}
				accepted.Add(1)
				local = append(local, done.Sub(sent))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(latencies)
	return loadResult{accepted: accepted.Load(), errors: failed.Load(), latencies: latencies, recallSize: len(tmpl)}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	i := (len(d) - 1) * p / 100
	return d[i].Round(10 * time.Microsecond)
}

// lagMeter matches events received from the stream with the client's view of the request.
type lagMeter struct {
	mu       sync.Mutex
	sent     map[string]time.Time
	resp     map[string]time.Time
	received map[string]time.Time
}

func (l *lagMeter) responded(id string, sent, done time.Time) {
	l.mu.Lock()
	l.sent[id], l.resp[id] = sent, done
	l.mu.Unlock()
}

func (l *lagMeter) got(id string, at time.Time) {
	l.mu.Lock()
	l.received[id] = at
	l.mu.Unlock()
}

// results returns receipt−response and receipt−send for every matched submission. The first
// can be negative: the relay may publish before the 201 reaches the client.
func (l *lagMeter) results() (fromResp, fromSend []time.Duration) {
	time.Sleep(200 * time.Millisecond) // last deliveries in flight
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, at := range l.received {
		if r, ok := l.resp[id]; ok {
			fromResp = append(fromResp, at.Sub(r))
			fromSend = append(fromSend, at.Sub(l.sent[id]))
		}
	}
	slices.Sort(fromResp)
	slices.Sort(fromSend)
	return fromResp, fromSend
}

// consume reads the stream like a dispatcher (the durable consumer, explicit acks).
func consume(ctx context.Context, js jetstream.JetStream) (*lagMeter, error) {
	l := &lagMeter{sent: map[string]time.Time{}, resp: map[string]time.Time{}, received: map[string]time.Time{}}
	c, err := events.EnsureConsumer(ctx, js, events.ConsumerConfig{})
	if err != nil {
		return nil, err
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		at := time.Now()
		var ev struct {
			SubmissionID string `json:"submissionId"`
		}
		if err := json.Unmarshal(m.Data(), &ev); err == nil {
			l.got(ev.SubmissionID, at)
		}
		_ = m.Ack()
	})
	if err != nil {
		return nil, errors.Join(errors.New("consuming"), err)
	}
	go func() { <-ctx.Done(); cc.Stop() }()
	return l, nil
}

func gcName(p int) string {
	if p < 0 {
		return "off"
	}
	return strconv.Itoa(p)
}

// maxRSS is this process's peak resident set size in bytes.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
