// Command receiver is an example webhook receiver for Dispatch24: copy it as the starting
// point of an integration. It verifies every delivery's Standard Webhooks signature (v1 with the
// endpoint's whsec_ secret, v1a with its whpk_ public key) and, when given the survey's JWT
// secret, its Authorization JWT, with pkg/webhook; it deduplicates on webhook-id in memory and
// prints each event (id, type, surveyId, username).
//
// Usage:
//
//	go run ./examples/receiver -secret whsec_... [-jwt-secret ...] [-addr 127.0.0.1:9000]
//	go run ./examples/receiver -public-key whpk_... [-jwt-secret ...] [-addr 127.0.0.1:9000]
//
// Flags (each falls back to the environment variable in brackets):
//
//	-addr        listen address [RECEIVER_ADDR], default 127.0.0.1:9000
//	-secret      the endpoint's whsec_ signing secret [WEBHOOK_SECRET], for the scheme v1;
//	             during a rotation give the new and the old secret separated by a comma
//	-public-key  the endpoint's whpk_ public key [WEBHOOK_PUBLIC_KEY], for the scheme v1a
//	             (Ed25519); during a rotation repeat the flag or separate the keys by commas.
//	             A -secret or a -public-key is required; given both, either kind of
//	             signature is accepted (as while an endpoint moves from v1 to v1a).
//	-jwt-secret  the survey's jwtSecret [WEBHOOK_JWT_SECRET]; when set, the Authorization JWT
//	             is required and verified
//	-issuer      the JWT's expected iss [WEBHOOK_ISSUER], default intake24
//	-audience    the JWT's expected aud, the URL registered with Dispatch24
//	             [WEBHOOK_AUDIENCE], default http://<bound address>/webhook
//
// Register http://127.0.0.1:9000/webhook as the survey's webhook (Dispatch24 must run with
// WEBHOOK_ALLOW_NETS=127.0.0.0/8 to deliver to a loopback address):
//
//	curl -X POST -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
//	  -d '{"url":"http://127.0.0.1:9000/webhook","events":["survey.session.submitted"]}' \
//	  http://127.0.0.1:8080/api/admin/surveys/demo-survey/webhooks
//
// then start the receiver with the "secret" from the answer. For an endpoint created with
// "signatureScheme":"v1a" the answer carries a "publicKey" (whpk_…) instead: start the receiver
// with -public-key and that key. A v1a receiver holds nothing that can sign a delivery. The receiver answers 204 for a new
// event, 200 for a repeat, 400 for a malformed delivery and 401 for one that fails verification;
// Dispatch24 retries anything but 2xx.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(2)
	}
}

// config is the receiver's configuration.
type config struct {
	addr       string
	secrets    []string
	publicKeys []string
	jwtSecret  string
	issuer     string
	audience   string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var secrets string
	fs.StringVar(&c.addr, "addr", env("RECEIVER_ADDR", "127.0.0.1:9000"), "listen address")
	fs.StringVar(&secrets, "secret", env("WEBHOOK_SECRET", ""), "whsec_ signing secret(s), comma separated")
	var publicKeys listFlag
	fs.Var(&publicKeys, "public-key", "whpk_ public key(s) for v1a signatures; repeat or separate by commas (default $WEBHOOK_PUBLIC_KEY)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", env("WEBHOOK_JWT_SECRET", ""), "the survey's jwtSecret (optional)")
	fs.StringVar(&c.issuer, "issuer", env("WEBHOOK_ISSUER", webhook.DefaultIssuer), "expected JWT issuer")
	fs.StringVar(&c.audience, "audience", env("WEBHOOK_AUDIENCE", ""), "expected JWT audience (default http://<addr>/webhook)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c.secrets = splitList(secrets)
	c.publicKeys = publicKeys
	if len(c.publicKeys) == 0 {
		c.publicKeys = splitList(getenv("WEBHOOK_PUBLIC_KEY"))
	}
	if len(c.secrets) == 0 && len(c.publicKeys) == 0 {
		return config{}, errors.New("a signing secret or public key is required: -secret (WEBHOOK_SECRET) or -public-key (WEBHOOK_PUBLIC_KEY)")
	}
	return c, nil
}

// listFlag is a flag that may be repeated, each value a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

// splitList splits a comma-separated list, dropping empty items and surrounding space.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// run starts the receiver and serves until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if cfg.audience == "" {
		cfg.audience = "http://" + ln.Addr().String() + "/webhook"
	}
	verifier, err := webhook.NewVerifier(webhook.VerifierConfig{
		Secrets:    cfg.secrets,
		PublicKeys: cfg.publicKeys,
		JWTSecret:  cfg.jwtSecret,
		Issuer:     cfg.issuer,
		Audience:   cfg.audience,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("POST /webhook", newHandler(log, verifier, newDedupe(7*24*time.Hour, 1_000_000)))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
	}
	log.Info("listening", "addr", ln.Addr().String(), "secrets", len(cfg.secrets), "publicKeys", len(cfg.publicKeys),
		"jwt", cfg.jwtSecret != "", "audience", cfg.audience)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	<-errc
	return nil
}

// event is the part of a delivery's body this receiver uses.
type event struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Timestamp    time.Time       `json:"timestamp"`
	SurveyID     string          `json:"surveyId"`
	SessionID    string          `json:"sessionId"`
	UserID       string          `json:"userId"`
	Username     string          `json:"username"`
	SubmissionID string          `json:"submissionId"`
	Data         json.RawMessage `json:"data"`
}

// newHandler verifies (through the Verifier's middleware), deduplicates and prints deliveries.
func newHandler(log *slog.Logger, v *webhook.Verifier, seen *dedupe) http.Handler {
	handle := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := webhook.FromContext(r.Context())
		var ev event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, "body is not an event", http.StatusBadRequest)
			return
		}
		// The signature covers webhook-id; the id inside the body must agree with it.
		if ev.ID != d.ID {
			http.Error(w, "event id does not match webhook-id", http.StatusBadRequest)
			return
		}
		if !seen.first(d.ID, time.Now()) {
			log.Info("duplicate", "id", d.ID)
			w.WriteHeader(http.StatusOK)
			return
		}
		// Do the real work here, durably, before answering 2xx. Never log the body: it holds
		// the respondent's recall.
		log.Info("event", "id", ev.ID, "type", ev.Type, "surveyId", ev.SurveyID, "username", ev.Username)
		w.WriteHeader(http.StatusNoContent)
	})
	mw := v.Middleware(handle)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		mw.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusBadRequest {
			log.Warn("rejected delivery", "status", rec.status, "id", r.Header.Get(webhook.HeaderID))
		}
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// dedupe remembers event ids for ttl, at most max of them. A real receiver keeps them in its
// database, in the same transaction as the event's effects.
type dedupe struct {
	mu   sync.Mutex
	seen map[string]time.Time
	ttl  time.Duration
	max  int
}

func newDedupe(ttl time.Duration, max int) *dedupe {
	return &dedupe{seen: make(map[string]time.Time), ttl: ttl, max: max}
}

// first records id and reports whether it was new.
func (d *dedupe) first(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.seen[id]; ok && now.Sub(t) < d.ttl {
		return false
	}
	if len(d.seen) >= d.max {
		for k, t := range d.seen {
			if now.Sub(t) >= d.ttl {
				delete(d.seen, k)
			}
		}
		// Still full: forget arbitrary ids rather than grow without bound.
		for k := range d.seen {
			if len(d.seen) < d.max {
				break
			}
			delete(d.seen, k)
		}
	}
	d.seen[id] = now
	return true
}
