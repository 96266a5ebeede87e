package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/bench/internal/benchapi"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

const (
	surveyID    = "faults"
	adminEmail  = "faults-admin@example.org"
	tokenIssuer = "intake24"
	// webhookTimeout is WEBHOOK_TIMEOUT of both binaries: the receiver is on this machine.
	// The consumer's AckWait follows from it (2×15 s + 30 s → 40 s), and so does the
	// dispatchers' lease of a stored retry (+15 s → 20 s).
	webhookTimeout = 5 * time.Second
	lease          = webhookTimeout + 15*time.Second
)

// binaries are the paths of the programs under test, built once per run.
type binaries struct{ api, dispatcher, nats string }

// buildBinaries builds cmd/api, cmd/dispatcher and nats-server (from the module's go.mod)
// into dir, without the race detector.
func buildBinaries(ctx context.Context, dir string, stderr io.Writer) (binaries, error) {
	b := binaries{api: filepath.Join(dir, "api"), dispatcher: filepath.Join(dir, "dispatcher"), nats: filepath.Join(dir, "nats-server")}
	for out, pkg := range map[string]string{
		b.api:        "github.com/dispatch24/dispatch24/cmd/api",
		b.dispatcher: "github.com/dispatch24/dispatch24/cmd/dispatcher",
		b.nats:       "github.com/nats-io/nats-server/v2",
	} {
		if err := benchapi.Build(ctx, out, pkg, stderr); err != nil {
			return b, err
		}
	}
	return b, nil
}

// world is one scenario's system: a fresh PostgreSQL schema, nats-server(s), the api, two
// dispatchers, and the receiver, with a survey, respondents and one webhook made through
// the API.
type world struct {
	o    options
	bins binaries
	tmp  string

	dbURL      string // with the schema's search_path
	secretsKey string // SECRETS_KEY of both binaries
	db         *pgx.Conn
	dbMu       sync.Mutex

	nats        *natsCluster
	api         *proc
	apiURL      string
	dispatchers []*proc
	recv        *receiver
	tokens      []string // respondents' access tokens

	mu      sync.Mutex
	procs   []*proc
	closers []func()
}

func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

func newWorld(ctx context.Context, o options, bins binaries, natsNodes int, parent string) (w *world, err error) {
	w = &world{o: o, bins: bins}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.tmp, err = os.MkdirTemp(parent, "world-"); err != nil {
		return w, err
	}
	var key [32]byte
	_, _ = rand.Read(key[:])
	w.secretsKey = hex.EncodeToString(key[:])
	if err := w.openStore(ctx); err != nil {
		return w, err
	}
	if err := w.startNATS(natsNodes); err != nil {
		return w, err
	}
	if w.recv, err = startReceiver(); err != nil {
		return w, err
	}
	w.onClose(w.recv.close)
	if err := w.startAPI(); err != nil {
		return w, err
	}
	// The dispatchers run before the webhook is registered and the load starts at once
	// after it, so that no scenario depends on a window after registration (CONTRACT §8).
	for i := range 2 {
		p := newProc("dispatcher-"+strconv.Itoa(i), bins.dispatcher, filepath.Join(w.tmp, "dispatcher-"+strconv.Itoa(i)+".log"), "msg=listening",
			append(w.commonEnv(), "HTTP_ADDR=127.0.0.1:0", "DATA_DIR="+filepath.Join(w.tmp, "dispatcher-data-"+strconv.Itoa(i))))
		w.addProc(p)
		w.dispatchers = append(w.dispatchers, p)
		if err := p.restart(time.Minute); err != nil {
			return w, err
		}
	}
	if natsNodes >= 3 {
		if _, err := w.nats.leader(ctx, 3); err != nil {
			return w, err
		}
	}
	if err := w.setup(ctx); err != nil {
		return w, fmt.Errorf("setting up through the API: %w", err)
	}
	return w, nil
}

func (w *world) addProc(p *proc) {
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
}

func (w *world) onClose(f func()) {
	w.mu.Lock()
	w.closers = append(w.closers, f)
	w.mu.Unlock()
}

// close kills every process, then runs the closers in reverse order. The temporary
// directory stays when keep is set (its logs explain a failure).
func (w *world) close() {
	w.mu.Lock()
	ps, cs := w.procs, w.closers
	w.procs, w.closers = nil, nil
	w.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	if w.tmp != "" && !w.o.keep {
		os.RemoveAll(w.tmp)
	}
}

// openStore creates a fresh schema in TEST_DATABASE_URL's database, dropped at close; both
// binaries get it through search_path in DATABASE_URL.
func (w *world) openStore(ctx context.Context) error {
	base := storetest.DatabaseURL()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "faults_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("PostgreSQL at TEST_DATABASE_URL: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return err
	}
	w.onClose(func() {
		ctx := context.Background()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "dropping schema %s: %v\n", schema, err)
		}
		conn.Close(ctx)
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	w.dbURL = base + sep + "search_path=" + schema + "&application_name=" + schema
	if w.db, err = pgx.Connect(ctx, w.dbURL); err != nil {
		return err
	}
	w.onClose(func() { w.db.Close(context.Background()) })
	return nil
}

// commonEnv is the settings both binaries share.
func (w *world) commonEnv() []string {
	return append(baseEnv(),
		"DATABASE_URL="+w.dbURL,
		"SECRETS_KEY="+w.secretsKey,
		"NATS_URL="+w.nats.url(),
		"TOKEN_ISSUER="+tokenIssuer,
		"WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"WEBHOOK_TIMEOUT="+webhookTimeout.String(),
		"WEBHOOK_RETRY_SCHEDULE="+w.o.schedule,
		"LOG_LEVEL=info",
		"GOMAXPROCS=2",
	)
}

// adminPassword and tokenSecret are fixed per world: the api restarts with the same ones.
func (w *world) tokenSecret() string {
	return "fault-suite-token-secret-" + filepath.Base(w.tmp) + "-0123456789"
}
func (w *world) adminPassword() string { return "fault-suite-" + filepath.Base(w.tmp) }

func (w *world) startAPI() error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	w.apiURL = "http://" + addr
	w.api = newProc("api", w.bins.api, filepath.Join(w.tmp, "api.log"), "msg=listening",
		append(w.commonEnv(),
			"HTTP_ADDR="+addr,
			"DISPATCH_IN_PROCESS=false",
			"TOKEN_SECRET="+w.tokenSecret(),
			"ACCESS_TOKEN_TTL=2h",
			"ADMIN_EMAIL="+adminEmail,
			"ADMIN_PASSWORD="+w.adminPassword(),
			"DATA_DIR="+filepath.Join(w.tmp, "api-data"),
		))
	w.addProc(w.api)
	return w.api.restart(time.Minute)
}

// setup makes the survey, the respondents and the webhook through the API, as an admin
// would, and signs the respondents in.
func (w *world) setup(ctx context.Context) error {
	c := &benchapi.Client{Base: w.apiURL, HTTP: &http.Client{Timeout: 30 * time.Second}}
	var signin struct{ RefreshToken string }
	if err := c.Do(ctx, "POST", "/api/signin", "", map[string]string{"email": adminEmail, "password": w.adminPassword()}, 200, &signin); err != nil {
		return err
	}
	admin, err := c.Access(ctx, signin.RefreshToken)
	if err != nil {
		return err
	}
	var sec [24]byte
	_, _ = rand.Read(sec[:])
	jwtSecret := hex.EncodeToString(sec[:])
	if err := c.Do(ctx, "POST", "/api/admin/surveys", admin, map[string]any{
		"id": surveyID, "name": "Fault suite", "jwtSecret": jwtSecret,
		"redirect": map[string]string{"url": "https://example.org/done?u={identifier}", "identifier": "username"},
	}, 201, nil); err != nil {
		return err
	}
	for i := range w.o.respondents {
		user, pass := fmt.Sprintf("r%03d", i), "respondent password "+strconv.Itoa(i)
		if err := c.Do(ctx, "POST", "/api/admin/surveys/"+surveyID+"/respondents", admin,
			map[string]string{"username": user, "password": pass}, 201, nil); err != nil {
			return err
		}
		var rt struct{ RefreshToken string }
		if err := c.Do(ctx, "POST", "/api/signin/alias", "", map[string]string{"surveyId": surveyID, "userName": user, "password": pass}, 200, &rt); err != nil {
			return err
		}
		at, err := c.Access(ctx, rt.RefreshToken)
		if err != nil {
			return err
		}
		w.tokens = append(w.tokens, at)
	}
	var ep struct{ Secret string }
	if err := c.Do(ctx, "POST", "/api/admin/surveys/"+surveyID+"/webhooks", admin,
		map[string]any{"url": w.recv.url(), "events": []string{events.TypeSessionSubmitted}, "description": "fault suite receiver"}, 201, &ep); err != nil {
		return err
	}
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{ep.Secret}, JWTSecret: jwtSecret, Issuer: tokenIssuer, Audience: w.recv.url()})
	if err != nil {
		return err
	}
	w.recv.setVerifier(v)
	return nil
}

// freePorts finds n free TCP ports on 127.0.0.1 (held together, so they differ).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// storeCounts are the store's figures at one moment.
type storeCounts struct {
	submissions, unpublished       int
	pending, succeeded, failed     int
	overdue                        int           // pending more than the slack past next_attempt_at
	oldestOverdue                  time.Duration // how far past its due time the oldest one is
	attemptRows, deliveriesInStore int
}

func (w *world) storeCounts(ctx context.Context, slack time.Duration) (storeCounts, error) {
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var c storeCounts
	now := time.Now()
	var oldest *int64
	err := w.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM submissions),
		(SELECT count(*) FROM events WHERE published_at IS NULL),
		(SELECT count(*) FROM deliveries WHERE status = 'pending'),
		(SELECT count(*) FROM deliveries WHERE status = 'succeeded'),
		(SELECT count(*) FROM deliveries WHERE status = 'failed'),
		(SELECT count(*) FROM deliveries WHERE status = 'pending' AND next_attempt_at < $1),
		(SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending' AND next_attempt_at < $1),
		(SELECT count(*) FROM delivery_attempts),
		(SELECT count(*) FROM deliveries)`,
		now.Add(-slack).UnixMicro()).Scan(&c.submissions, &c.unpublished, &c.pending, &c.succeeded, &c.failed,
		&c.overdue, &oldest, &c.attemptRows, &c.deliveriesInStore)
	if err != nil {
		return c, fmt.Errorf("counting in the store: %w", err)
	}
	if oldest != nil {
		c.oldestOverdue = now.Sub(time.UnixMicro(*oldest))
	}
	return c, nil
}

// acceptedInStore is how many of the accepted submission ids the store holds.
func (w *world) acceptedInStore(ctx context.Context, ids []string) (int, error) {
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	var n int
	err := w.db.QueryRow(ctx, `SELECT count(*) FROM submissions WHERE id = ANY($1)`, ids).Scan(&n)
	if err != nil && !errors.Is(err, context.Canceled) {
		return 0, fmt.Errorf("counting accepted submissions in the store: %w", err)
	}
	return n, err
}
