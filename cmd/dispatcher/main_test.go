package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// world is what a dispatcher process talks to: NATS listening on a port, a PostgreSQL schema,
// a survey with one endpoint at a receiver on 127.0.0.1.
type world struct {
	natsURL string
	dbURL   string
	db      *store.DB
	js      jetstream.JetStream
	survey  string
	secret  string
	rc      *countingReceiver
}

// countingReceiver counts deliveries per webhook-id, verifying each.
type countingReceiver struct {
	*httptest.Server
	verifier *webhook.Verifier
	mu       sync.Mutex
	seen     map[string]int
	total    atomic.Int64
	bad      atomic.Int64
}

func (c *countingReceiver) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func newWorld(t testing.TB) *world {
	t.Helper()
	srv, err := embeddednats.Start(embeddednats.Config{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStream(context.Background(), js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return newWorldOn(t, srv.ClientURL(), js)
}

// newWorldOn is a world on the NATS server at natsURL, whose events stream exists.
func newWorldOn(t testing.TB, natsURL string, js jetstream.JetStream) *world {
	t.Helper()
	ctx := context.Background()
	dbURL := storetest.PostgresURL(t)
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	w := &world{natsURL: natsURL, dbURL: dbURL, db: db, js: js, survey: "kill-survey", secret: webhook.NewSecret()}
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{w.secret}})
	if err != nil {
		t.Fatal(err)
	}
	w.rc = &countingReceiver{verifier: v, seen: map[string]int{}}
	w.rc.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d, err := w.rc.verifier.Verify(r.Header, body)
		if err != nil {
			w.rc.bad.Add(1)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.rc.mu.Lock()
		w.rc.seen[d.ID]++
		w.rc.mu.Unlock()
		w.rc.total.Add(1)
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.rc.Close)

	now := store.Micros(time.Now())
	if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, 'Kill test', $2, $2)", w.survey, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
		VALUES ('wh_kill', $1, $2, $3, $4, $5, $5)`, w.survey, w.rc.URL+"/hook", events.TypeSessionSubmitted, w.secret, now); err != nil {
		t.Fatal(err)
	}
	return w
}

// env is a dispatcher's environment in the world, with extra as name, value pairs. It has no
// TOKEN_SECRET: the dispatcher never signs or verifies our tokens.
func (w *world) env(extra ...string) map[string]string {
	m := map[string]string{
		"DATABASE_URL":           w.dbURL,
		"NATS_URL":               w.natsURL,
		"SECRETS_KEY":            testSecretsKey,
		"HTTP_ADDR":              "127.0.0.1:0",
		"WEBHOOK_ALLOW_NETS":     "127.0.0.0/8",
		"WEBHOOK_TIMEOUT":        "5s",
		"WEBHOOK_RETRY_SCHEDULE": "0s,200ms,500ms,1s",
		"LOG_LEVEL":              "info",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// publish stores n events in the archive as the outbox does and publishes them.
func (w *world) publish(t testing.TB, n int) []string {
	t.Helper()
	msgs := w.prepare(t, n)
	w.send(t, msgs)
	ids := make([]string, n)
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// prepare stores n events in the archive, as the outbox does before publishing them.
func (w *world) prepare(t testing.TB, n int) []events.Message {
	t.Helper()
	ctx := context.Background()
	msgs := make([]events.Message, n)
	for i := range msgs {
		ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: w.survey,
			UserID: fmt.Sprintf("usr_%d", i), Username: fmt.Sprintf("r%d", i), Data: json.RawMessage(`{"recall":{}}`)}
		body, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = events.Message{ID: ev.ID, Type: ev.Type, Subject: events.Subject(w.survey, ev.Type), Payload: body}
	}
	now := store.Micros(time.Now())
	for i := 0; i < n; i += 500 {
		chunk := msgs[i:min(i+500, n)]
		args := make([]any, 0, 6*len(chunk))
		for _, m := range chunk {
			args = append(args, m.ID, m.Type, w.survey, m.Subject, m.Payload, now)
		}
		if _, err := w.db.Exec(ctx, "INSERT INTO events (id, type, survey_id, subject, payload, created_at) VALUES "+
			store.Placeholders(len(chunk), 6, 1), args...); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// send publishes the messages and waits for JetStream to store them all.
func (w *world) send(t testing.TB, msgs []events.Message) {
	t.Helper()
	ctx := context.Background()
	p := &events.Publisher{JS: w.js}
	// In windows of 1,000: the client refuses more than 4,000 unacknowledged async publishes.
	for i, m := range msgs {
		if _, err := p.PublishAsync(ctx, m); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 || i == len(msgs)-1 {
			select {
			case <-w.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				t.Fatal("publishing did not complete")
			}
		}
	}
}

func getenvFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// syncBuffer collects a process's log lines and finds the bound address in them.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listeningRe = regexp.MustCompile(`msg=listening addr=(\S+)`)

func waitListening(t testing.TB, logs func() string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRe.FindStringSubmatch(logs()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no listening line in the logs:\n%s", logs())
	return ""
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRun starts the binary's run function: it logs its address, serves health, readiness
// and metrics, delivers, and stops cleanly when its context ends.
func TestRun(t *testing.T) {
	w := newWorld(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	env := w.env("DATA_DIR", dataDir)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenvFrom(env), io.Discard, &logs) }()
	addr := waitListening(t, logs.String)

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	w.publish(t, 3)
	waitFor(t, 30*time.Second, "three deliveries", func() bool { return w.rc.distinct() == 3 })
	waitFor(t, 30*time.Second, "the metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `dispatch24_deliveries_total{status="succeeded"} 3`) &&
			strings.Contains(string(b), `dispatch24_delivery_attempts_total{outcome="delivered"} 3`)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no stopped line in the logs")
	}
	// Without TOKEN_SECRET the dispatcher writes nothing to DATA_DIR (the api's embedded-mode
	// token_secret file is no business of a dispatcher's).
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dispatcher created DATA_DIR %s: %v", dataDir, err)
	}
}

// TestRunNeedsExternalServices: the dispatcher binary has no embedded mode.
func TestRunNeedsExternalServices(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no NATS_URL":     {"DATABASE_URL": "postgres://x@127.0.0.1/db"},
		"no DATABASE_URL": {"NATS_URL": "nats://127.0.0.1:4222"},
	} {
		err := run(context.Background(), nil, getenvFrom(env), io.Discard, io.Discard)
		var stderr strings.Builder
		if code := exitCode(err, &stderr); code != 2 {
			t.Errorf("%s: exit status %d (%v), want 2", name, code, err)
		}
	}
}

// testSecretsKey is the SECRETS_KEY of the dispatchers and apis the tests start.
const testSecretsKey = "nT2Q7vX9cR4kLm8pW1sY6bZ3hJ0gF5dA2eU7iO4tK9w="

// buildBinary compiles cmd/dispatcher into dir.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dispatcher")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running dispatcher binary; done is closed once it has exited, with err set.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

func startProcess(t testing.TB, bin string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.logs
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestKillMidBurstLosesNothing SIGKILLs a dispatcher process in the middle of a burst of 5,000
// events and starts another: every event is delivered at least once. Duplicates (events sent
// by the killed process whose results it had not recorded yet) are counted and reported.
func TestKillMidBurstLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const total = 5000
	bin := buildBinary(t)
	w := newWorld(t)
	// A short AckWait brings the killed process's unacked messages back quickly.
	env := w.env("WEBHOOK_TIMEOUT", "2s")

	first := startProcess(t, bin, env)
	waitListening(t, first.logs.String)
	ids := w.publish(t, total)
	waitFor(t, time.Minute, "the first process to deliver some", func() bool { return w.rc.distinct() >= total/5 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	var exitErr *exec.ExitError
	if !errors.As(first.err, &exitErr) {
		t.Fatalf("killed process: %v", first.err)
	}
	atKill := w.rc.distinct()
	t.Logf("killed the first dispatcher after %d of %d events", atKill, total)

	second := startProcess(t, bin, env)
	waitFor(t, 2*time.Minute, "every event delivered", func() bool { return w.rc.distinct() == total })
	waitFor(t, time.Minute, "every delivery recorded", func() bool {
		var n int
		if err := w.db.QueryRow(context.Background(), "SELECT count(*) FROM deliveries WHERE status = 'succeeded'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == total
	})
	w.rc.mu.Lock()
	dups := 0
	for _, id := range ids {
		if c := w.rc.seen[id]; c > 1 {
			dups += c - 1
		} else if c == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
	w.rc.mu.Unlock()
	if bad := w.rc.bad.Load(); bad > 0 {
		t.Errorf("%d deliveries failed verification", bad)
	}
	t.Logf("delivered all %d events; %d duplicate deliveries (%.1f%%), all from the killed process's unrecorded attempts",
		total, dups, 100*float64(dups)/total)
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-second.done:
		if second.err != nil {
			t.Errorf("second dispatcher exit: %v\n%s", second.err, tail(second.logs.String()))
		}
	case <-time.After(30 * time.Second):
		t.Error("second dispatcher did not stop on SIGTERM")
	}
}

func tail(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
