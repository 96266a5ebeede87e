package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// Benchmarks of the whole pipeline on PostgreSQL: events published to an in-process JetStream,
// signed (Standard Webhooks and JWT) and POSTed to a receiver on 127.0.0.1 answering 204, the
// attempt log written. Everything shares the machine, receiver and NATS server included.
//
//	go test ./internal/dispatch -run '^$' -bench . -benchtime 1x
//
// They report deliveries/s (BenchmarkEndToEnd, BenchmarkDeadEndpoint) and publish→receipt
// latency percentiles (BenchmarkLatency).

// benchReceiver answers 204 and notes when each event arrived.
type benchReceiver struct {
	srv      *httptest.Server
	count    atomic.Int64
	mu       sync.Mutex
	received map[string]time.Time
	track    bool
}

func newBenchReceiver(b *testing.B, track bool) *benchReceiver {
	r := &benchReceiver{received: map[string]time.Time{}, track: track}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		if r.track {
			now := time.Now()
			r.mu.Lock()
			r.received[req.Header.Get("webhook-id")] = now
			r.mu.Unlock()
		}
		r.count.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(r.srv.Close)
	return r
}

// benchConfig is the production configuration for a 2-core machine, quiet.
func benchConfig(h *harness, schedule string) Config {
	cfg := h.config(schedule)
	cfg.Concurrency = 128
	cfg.EndpointConcurrency = 32
	if v := os.Getenv("BENCH_EC"); v != "" {
		cfg.EndpointConcurrency, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("BENCH_C"); v != "" {
		cfg.Concurrency, _ = strconv.Atoi(v)
	}
	cfg.FlushInterval = 5 * time.Millisecond
	cfg.PollInterval = time.Second
	cfg.ParkDelay = time.Second
	cfg.SlowAfter = 250 * time.Millisecond
	cfg.Client = h.client(true, 15*time.Second)
	cfg.AttemptTimeout = 15 * time.Second
	cfg.Lease = 30 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	// A tracer provider without an exporter, as a production process without OTEL_* has.
	tp := sdktrace.NewTracerProvider()
	h.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.TracerProvider = tp
	return cfg
}

// benchEvents builds n events for a survey, stores them in the events archive (as the outbox
// does before publishing) and returns their messages.
func benchEvents(b *testing.B, db *store.DB, surveyID string, n int) []events.Message {
	b.Helper()
	msgs := make([]events.Message, n)
	now := time.Now()
	// Each event carries the webhooks version it was accepted at, as the API's do.
	var version int64
	if err := db.QueryRow(context.Background(), "SELECT version FROM webhooks_version").Scan(&version); err != nil {
		b.Fatal(err)
	}
	for i := range msgs {
		ev := events.Event{
			ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: now, SurveyID: surveyID,
			SessionID: fmt.Sprintf("ses_%d", i), UserID: fmt.Sprintf("usr_%d", i), Username: fmt.Sprintf("respondent-%d", i),
			SubmissionID: fmt.Sprintf("sub_%d", i),
		}
		ev.Data = json.RawMessage(`{"id":"` + ev.SubmissionID + `","surveyId":"` + surveyID + `","userId":"` + ev.UserID +
			`","submissionTime":"2026-11-23T10:15:00Z","recall":{"meals":[{"name":"Breakfast","time":"08:00","foods":[` +
			`{"code":"TOAST","description":"Toast, white","portionGrams":40},{"code":"BUTTER","description":"Butter","portionGrams":7},` +
			`{"code":"TEA","description":"Tea with milk","portionGrams":250}]},{"name":"Lunch","time":"12:30","foods":[` +
			`{"code":"SANDWICH","description":"Cheese sandwich","portionGrams":180},{"code":"APPLE","description":"Apple","portionGrams":120}]}]}}`)
		body, err := ev.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = events.Message{ID: ev.ID, Type: ev.Type, Subject: events.Subject(surveyID, ev.Type), Payload: body,
			WebhooksVersion: version}
	}
	const chunk = 500
	for i := 0; i < n; i += chunk {
		rows := msgs[i:min(i+chunk, n)]
		args := make([]any, 0, 7*len(rows))
		us := store.Micros(now)
		for _, m := range rows {
			args = append(args, m.ID, m.Type, surveyID, m.Subject, m.Payload, us, us)
		}
		if _, err := db.Exec(context.Background(),
			"INSERT INTO events (id, type, survey_id, subject, payload, created_at, published_at) VALUES "+
				store.Placeholders(len(rows), 7, 1), args...); err != nil {
			b.Fatal(err)
		}
	}
	return msgs
}

func publishAll(b *testing.B, js jetstream.JetStream, msgs []events.Message) {
	b.Helper()
	p := &events.Publisher{JS: js}
	// In windows of 1,000: the client refuses more than 4,000 unacknowledged async publishes.
	for i, m := range msgs {
		if _, err := p.PublishAsync(context.Background(), m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 || i == len(msgs)-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("publishing did not complete")
			}
		}
	}
}

func countAttempts(b *testing.B, db *store.DB, where string, args ...any) int {
	b.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM delivery_attempts"+where, args...).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// waitRecorded waits until the attempt log holds want rows for the endpoint's deliveries.
func waitRecorded(b *testing.B, db *store.DB, want int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for countAttempts(b, db, " WHERE error = ''") < want {
		if time.Now().After(deadline) {
			b.Fatalf("timed out: %d of %d deliveries recorded", countAttempts(b, db, " WHERE error = ''"), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const benchEvents20k = 20000

// cpuTime is the CPU time (user and system) this process has used: the dispatcher, and also
// the NATS server and the receiver that share it. PostgreSQL's own CPU is not included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEndToEnd measures deliveries/s for 20,000 events: publish to JetStream → signed
// POST → 2xx → attempt log and delivery committed in PostgreSQL → message acked.
func BenchmarkEndToEnd(b *testing.B) {
	db := storetest.Postgres(b)
	h := newHarness(b, db)
	rc := newBenchReceiver(b, false)
	survey := h.addSurvey(jwtSecret)
	h.addEndpoint(survey, rc.srv.URL+"/hook")
	h.start(benchConfig(h, "0s,5s,5m"))
	var total, cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		msgs := benchEvents(b, db, survey, benchEvents20k)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		publishAll(b, h.js, msgs)
		waitRecorded(b, db, (i+1)*benchEvents20k)
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.ReportMetric(float64((i+1)*benchEvents20k)/total.Seconds(), "deliveries/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64((i+1)*benchEvents20k), "cpu-µs/delivery")
	}
}

// BenchmarkLatency publishes 1,000 events/s for 5 s and reports publish→receipt percentiles.
func BenchmarkLatency(b *testing.B) {
	db := storetest.Postgres(b)
	h := newHarness(b, db)
	rc := newBenchReceiver(b, true)
	survey := h.addSurvey(jwtSecret)
	h.addEndpoint(survey, rc.srv.URL+"/hook")
	h.start(benchConfig(h, "0s,5s,5m"))
	const rate, seconds = 1000, 5
	for b.Loop() {
		b.StopTimer()
		msgs := benchEvents(b, db, survey, rate*seconds)
		b.StartTimer()
		sent := make(map[string]time.Time, len(msgs))
		p := &events.Publisher{JS: h.js}
		tick := time.NewTicker(time.Second / rate)
		for _, m := range msgs {
			<-tick.C
			sent[m.ID] = time.Now()
			if _, err := p.PublishAsync(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		deadline := time.Now().Add(time.Minute)
		for {
			rc.mu.Lock()
			n := len(rc.received)
			rc.mu.Unlock()
			if n >= len(msgs) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d received", n, len(msgs))
			}
			time.Sleep(10 * time.Millisecond)
		}
		rc.mu.Lock()
		lat := make([]time.Duration, 0, len(sent))
		for id, at := range sent {
			lat = append(lat, rc.received[id].Sub(at))
		}
		clear(rc.received)
		rc.mu.Unlock()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}

// BenchmarkDeadEndpoint measures healthy deliveries/s (20,000 events) while another endpoint
// has 1,000 deliveries parked and due: "refused" answers nothing (connection refused),
// "hanging" never answers (each attempt runs into a 2 s timeout). "baseline" has no dead
// endpoint. BENCH_PARK changes the number of parked deliveries (0 isolates the cost of their
// attempts from that of the dead endpoint's existence). The dead endpoint's work falls mostly in
// the first round of 20,000, so compare with -benchtime 3x as well as 1x.
func BenchmarkDeadEndpoint(b *testing.B) {
	for _, mode := range []string{"baseline", "refused", "hanging"} {
		b.Run(mode, func(b *testing.B) {
			db := storetest.Postgres(b)
			h := newHarness(b, db)
			rc := newBenchReceiver(b, false)
			survey := h.addSurvey(jwtSecret)
			h.addEndpoint(survey, rc.srv.URL+"/hook")
			cfg := benchConfig(h, "0s,5s,5m")
			if mode != "baseline" {
				deadURL := closedURL(b)
				if mode == "hanging" {
					stop := make(chan struct{})
					hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						select {
						case <-r.Context().Done():
						case <-stop:
						}
					}))
					b.Cleanup(hang.Close)
					b.Cleanup(func() { close(stop) })
					deadURL = hang.URL + "/hook"
					cfg.Client = h.client(true, 2*time.Second)
					cfg.AttemptTimeout = 2 * time.Second
					cfg.Lease = 20 * time.Second
				}
				deadSurvey := h.addSurvey(jwtSecret)
				dead := h.addEndpoint(deadSurvey, deadURL)
				parkN := 1000
				if v := os.Getenv("BENCH_PARK"); v != "" {
					parkN, _ = strconv.Atoi(v)
				}
				parkDeliveries(b, db, deadSurvey, dead.ID, deadURL, parkN)
			}
			h.start(cfg)
			var total, cpu time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				msgs := benchEvents(b, db, survey, benchEvents20k)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				publishAll(b, h.js, msgs)
				waitRecorded(b, db, (i+1)*benchEvents20k)
				total += time.Since(start)
				cpu += cpuTime() - cpu0
				b.ReportMetric(float64((i+1)*benchEvents20k)/total.Seconds(), "deliveries/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64((i+1)*benchEvents20k), "cpu-µs/delivery")
			}
			b.StopTimer()
			if mode != "baseline" {
				b.ReportMetric(float64(countAttempts(b, db, " WHERE error <> ''")), "dead-attempts")
			}
		})
	}
}

// parkDeliveries stores n events of surveyID and a pending delivery of each to the endpoint,
// one attempt made and the next one due now.
func parkDeliveries(b *testing.B, db *store.DB, surveyID, webhookID, url string, n int) {
	b.Helper()
	msgs := benchEvents(b, db, surveyID, n)
	now := store.Micros(time.Now())
	const chunk = 500
	for i := 0; i < n; i += chunk {
		rows := msgs[i:min(i+chunk, n)]
		var vals []string
		args := []any{webhookID, surveyID, url, now}
		for _, m := range rows {
			args = append(args, DeliveryID(m.ID, webhookID), m.ID)
			vals = append(vals, fmt.Sprintf("($%d, $%d, $1, $2, 'survey.session.submitted', $3, 'pending', 1, 'connection_error', $4, $4, $4)", len(args)-1, len(args)))
		}
		if _, err := db.Exec(context.Background(),
			`INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, last_error,
			 next_attempt_at, created_at, updated_at) VALUES `+strings.Join(vals, ","), args...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResultWriter measures the writer alone: delivered outcomes (a delivery and an
// attempt row each) committed per second on PostgreSQL.
func BenchmarkResultWriter(b *testing.B) {
	db := storetest.Postgres(b)
	h := newHarness(b, db)
	d, err := New(h.config("0s"))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.writer.run(context.Background())
	}()
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("dlv_%026d", i)
		d.writer.put(outcome{
			d: store.Delivery{ID: id, EventID: fmt.Sprintf("evt_%d", i), WebhookID: "wh_1", SurveyID: "s", Type: events.TypeSessionSubmitted,
				URL: "http://127.0.0.1/hook", Status: StatusSucceeded, Attempts: 1, LastStatusCode: 204, CreatedAt: now, UpdatedAt: now},
			a:          store.Attempt{DeliveryID: id, N: 1, StartedAt: now, Duration: time.Millisecond, StatusCode: 204},
			hasAttempt: true,
			effect:     effectSuccess,
			at:         now,
		})
	}
	d.writer.close()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBareLoop is the yardstick: the same events pulled, signed and POSTed by 128
// workers and acked at once, with no store, no spans, no fan-out. EndToEnd divided by this
// is the engine's overhead under whatever else the machine is doing.
func BenchmarkBareLoop(b *testing.B) {
	db := storetest.Postgres(b)
	h := newHarness(b, db)
	rc := newBenchReceiver(b, false)
	survey := h.addSurvey(jwtSecret)
	ep := h.addEndpoint(survey, rc.srv.URL+"/hook")
	client := h.client(true, 15*time.Second)
	it, err := h.consumer.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				ev, err := decodeEnvelope(m.Data(), m.Subject(), "")
				if err != nil {
					b.Error(err)
				}
				res := client.Send(context.Background(), &webhook.Request{
					URL: ep.URL, MessageID: ev.ID, EventType: ev.Type, Body: m.Data(), Secrets: []string{ep.Secret},
					JWTKey: []byte(jwtSecret), Issuer: "intake24", Username: ev.Username, SurveyID: ev.SurveyID,
					SessionID: ev.SessionID, UserID: ev.UserID, SubmissionID: ev.SubmissionID,
				})
				if !res.Delivered {
					b.Errorf("not delivered: %s", res.Detail())
				}
				_ = m.Ack()
			}
		}()
	}
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- m
		}
	}()
	var total, cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		batch := benchEvents(b, db, survey, benchEvents20k)
		b.StartTimer()
		start := time.Now()
		cpu0 := cpuTime()
		publishAll(b, h.js, batch)
		for rc.count.Load() < int64((i+1)*benchEvents20k) {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.ReportMetric(float64((i+1)*benchEvents20k)/total.Seconds(), "deliveries/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64((i+1)*benchEvents20k), "cpu-µs/delivery")
	}
	it.Stop()
	wg.Wait()
}
