package endpoint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/survey"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// The callers of the test authenticator, named by the X-Test-As header.
const (
	asAdmin      = "admin"
	asStaff      = "staff"    // staff assigned to s1
	asStranger   = "stranger" // staff assigned to nothing
	asRespondent = "respondent"
)

const jwtSecretS1 = "s1-jwt-secret-that-is-long-enough-0123456789"

type testAuth struct{}

func (testAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	switch r.Header.Get("X-Test-As") {
	case asAdmin:
		return &httpapi.Principal{UserID: "u-admin", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleAdmin}}, nil
	case asStaff:
		return &httpapi.Principal{UserID: "u-staff", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleStaff}, Surveys: []string{"s1"}}, nil
	case asStranger:
		return &httpapi.Principal{UserID: "u-stranger", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleStaff}}, nil
	case asRespondent:
		return &httpapi.Principal{UserID: "u-resp", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: "s1"}, nil
	}
	return nil, nil
}

type bundle struct {
	db   *store.DB
	keys *secret.Keyring
	svc  *endpoint.Service
	rt   *httpapi.Router
}

type options struct {
	allowNets      []*net.IPNet // registration rule
	clientAllowAll bool         // the send client allows loopback
	resolver       webhook.Resolver
	logs           io.Writer // receives the service's log; default discarded
}

func loopback() []*net.IPNet {
	_, n, _ := net.ParseCIDR("127.0.0.0/8")
	return []*net.IPNet{n}
}

func setup(t *testing.T, db *store.DB, o options) *bundle {
	t.Helper()
	ctx := context.Background()
	now := store.Micros(time.Now())
	keys, err := secret.NewKeyring(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id  string
		jwt any
	}{{"s1", keys.Seal(secret.SurveyJWTSecret("s1"), jwtSecretS1)}, {"s2", nil}} {
		if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, jwt_secret, created_at, updated_at) VALUES ($1, $1, $2, $3, $3)`,
			s.id, s.jwt, now); err != nil {
			t.Fatalf("seeding survey: %v", err)
		}
	}
	ccfg := webhook.ClientConfig{Timeout: 10 * time.Second}
	if o.clientAllowAll {
		ccfg.AllowNets = loopback()
	}
	client, err := webhook.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	logs := o.logs
	if logs == nil {
		logs = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := endpoint.NewService(endpoint.Config{
		DB: db, Secrets: keys, Surveys: survey.NewStore(db, keys), Client: client, AllowNets: o.allowNets, Resolver: o.resolver, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(testAuth{}, logger)
	svc.Register(rt)
	return &bundle{db: db, keys: keys, svc: svc, rt: rt}
}

// do sends a request as who and returns the status and decoded JSON body (nil when empty).
func (b *bundle) do(t *testing.T, who, method, path string, body any) (int, map[string]any, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-As", who)
	}
	rec := httptest.NewRecorder()
	b.rt.ServeHTTP(rec, req)
	raw := rec.Body.Bytes()
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return rec.Code, out, raw
}

// create registers url for s1 as an admin and returns the answer.
func (b *bundle) create(t *testing.T, url string) map[string]any {
	t.Helper()
	code, out, raw := b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": url})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, raw)
	}
	return out
}

// receiver is a real HTTP server on 127.0.0.1 recording what it receives.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		st := rc.status
		rc.mu.Unlock()
		w.WriteHeader(st)
		_, _ = io.WriteString(w, "answer from receiver\x00\xff")
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) last(t *testing.T) received {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		t.Fatal("the receiver got nothing")
	}
	return rc.got[len(rc.got)-1]
}

func fieldErrors(out map[string]any) []string {
	var fields []string
	errs, _ := out["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		fields = append(fields, f)
	}
	return fields
}

func expectValidation(t *testing.T, code int, out map[string]any, field string) {
	t.Helper()
	if code != http.StatusBadRequest || out["code"] != "validation_failed" {
		t.Fatalf("want 400 validation_failed, got %d %v", code, out)
	}
	for _, f := range fieldErrors(out) {
		if f == field {
			return
		}
	}
	t.Fatalf("want an error on %q, got %v", field, out["errors"])
}

func TestCreateShowsSecretOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback()})
		code, out, raw := b.do(t, asStaff, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{
			"url":         "http://127.0.0.1:9/hook",
			"events":      []string{events.TypeSessionStarted, events.TypeSessionSubmitted, events.TypeSessionStarted},
			"description": "partner system",
		})
		if code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, raw)
		}
		secret, _ := out["secret"].(string)
		if !strings.HasPrefix(secret, webhook.SecretPrefix) {
			t.Fatalf("secret %q", secret)
		}
		if _, err := webhook.DecodeSecret(secret); err != nil {
			t.Fatalf("secret does not decode: %v", err)
		}
		id, _ := out["id"].(string)
		if out["disabled"] != false || out["url"] != "http://127.0.0.1:9/hook" || out["description"] != "partner system" ||
			out["surveyId"] != "s1" || out["consecutiveFailures"] != float64(0) || out["secretRotating"] != false {
			t.Fatalf("created: %v", out)
		}
		if got := out["events"].([]any); len(got) != 2 || got[0] != events.TypeSessionStarted || got[1] != events.TypeSessionSubmitted {
			t.Fatalf("events not deduplicated in order: %v", got)
		}
		for _, path := range []string{"/api/admin/surveys/s1/webhooks", "/api/admin/surveys/s1/webhooks/" + id} {
			code, _, raw := b.do(t, asAdmin, "GET", path, nil)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, code, raw)
			}
			if bytes.Contains(raw, []byte("whsec_")) || bytes.Contains(raw, []byte(`"secret"`)) {
				t.Fatalf("GET %s shows the secret: %s", path, raw)
			}
		}
		code, out, _ = b.do(t, asAdmin, "GET", "/api/admin/surveys/s1/webhooks/"+id, nil)
		if code != http.StatusOK || out["id"] != id || out["createdAt"] == nil {
			t.Fatalf("GET: %d %v", code, out)
		}

		// Defaults and bad event types.
		out = b.create(t, "http://127.0.0.1:9/other")
		if got := out["events"].([]any); len(got) != 1 || got[0] != events.TypeSessionSubmitted {
			t.Fatalf("default events: %v", got)
		}
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks",
			map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"survey.session.exploded"}})
		expectValidation(t, code, out, "events")
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks",
			map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{}})
		expectValidation(t, code, out, "events")
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks",
			map[string]any{"url": "http://127.0.0.1:9/x", "description": strings.Repeat("é", 1001)})
		expectValidation(t, code, out, "description")
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/surveys/nope/webhooks", map[string]any{"url": "http://127.0.0.1:9/x"})
		if code != http.StatusNotFound || out["code"] != "survey_not_found" {
			t.Fatalf("unknown survey: %d %v", code, out)
		}

		code, out, _ = b.do(t, asAdmin, "GET", "/api/admin/surveys/s1/webhooks", nil)
		if items := out["items"].([]any); code != http.StatusOK || len(items) != 2 {
			t.Fatalf("list: %d %v", code, out)
		}
	})
}

// stubResolver answers every name with fixed addresses.
type stubResolver []netip.Addr

func (s stubResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return s, nil
}

func TestURLRules(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		strict := setup(t, db, options{resolver: stubResolver{netip.MustParseAddr("10.0.0.7")}})
		for _, u := range []string{
			"http://127.0.0.1:8080/hook",      // loopback
			"http://10.1.2.3/hook",            // private
			"http://[::1]/hook",               // IPv6 loopback
			"http://169.254.169.254/metadata", // link-local (cloud metadata)
			"http://partner.example/hook",     // resolves to a private address
			"https://user:pw@203.0.113.9/x",   // credentials
			"ftp://203.0.113.9/x",             // scheme
			"/relative",                       // not absolute
			"",                                // missing
		} {
			code, out, _ := strict.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": u})
			expectValidation(t, code, out, "url")
		}
		// PATCH applies the same rules.
		public := setup(t, storetest.SQLite(t), options{resolver: stubResolver{netip.MustParseAddr("93.184.216.34")}})
		out := public.create(t, "https://partner.example/hook")
		code, out, _ := public.do(t, asAdmin, "PATCH", "/api/admin/surveys/s1/webhooks/"+out["id"].(string),
			map[string]any{"url": "http://127.0.0.1/hook"})
		expectValidation(t, code, out, "url")
	})
	t.Run("allow nets", func(t *testing.T) {
		t.Parallel()
		b := setup(t, storetest.SQLite(t), options{allowNets: loopback()})
		b.create(t, "http://127.0.0.1:8080/hook")
		code, out, _ := b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": "http://10.1.2.3/hook"})
		expectValidation(t, code, out, "url")
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": "http://u:p@127.0.0.1/hook"})
		expectValidation(t, code, out, "url")
	})
}

func TestAccess(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback()})
		id := b.create(t, "http://127.0.0.1:9/hook")["id"].(string)
		one := "/api/admin/surveys/s1/webhooks/" + id
		for _, c := range []struct {
			who, method, path string
			want              int
		}{
			{asStaff, "GET", one, http.StatusOK},
			{asStranger, "GET", one, http.StatusNotFound},
			{asStranger, "GET", "/api/admin/surveys/s1/webhooks", http.StatusNotFound},
			{asStranger, "POST", one + "/rotate-secret", http.StatusNotFound},
			{asStranger, "DELETE", one, http.StatusNotFound},
			{asRespondent, "GET", one, http.StatusForbidden},
			{"", "GET", one, http.StatusUnauthorized},
			// A webhook of s1 does not exist under s2.
			{asAdmin, "GET", "/api/admin/surveys/s2/webhooks/" + id, http.StatusNotFound},
			{asAdmin, "PATCH", "/api/admin/surveys/s2/webhooks/" + id, http.StatusNotFound},
			{asAdmin, "DELETE", "/api/admin/surveys/s2/webhooks/" + id, http.StatusNotFound},
			{asAdmin, "POST", "/api/admin/surveys/s2/webhooks/" + id + "/rotate-secret", http.StatusNotFound},
			{asAdmin, "POST", "/api/admin/surveys/s2/webhooks/" + id + "/test", http.StatusNotFound},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"description": "x"}
			}
			if code, _, raw := b.do(t, c.who, c.method, c.path, body); code != c.want {
				t.Errorf("%s %s %s: %d, want %d: %s", c.who, c.method, c.path, code, c.want, raw)
			}
		}
		code, out, _ := b.do(t, asAdmin, "GET", "/api/admin/surveys/s2/webhooks", nil)
		if code != http.StatusOK || len(out["items"].([]any)) != 0 {
			t.Fatalf("s2 list: %d %v", code, out)
		}
	})
}

func TestPatchAndDelete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, options{allowNets: loopback()})
		id := b.create(t, "http://127.0.0.1:9/hook")["id"].(string)
		one := "/api/admin/surveys/s1/webhooks/" + id

		code, out, raw := b.do(t, asStaff, "PATCH", one, map[string]any{
			"url": "http://127.0.0.2:9/new", "events": []string{events.TypeSessionCancelled}, "description": "d",
		})
		if code != http.StatusOK || out["url"] != "http://127.0.0.2:9/new" || out["description"] != "d" ||
			out["events"].([]any)[0] != events.TypeSessionCancelled || out["disabled"] != false {
			t.Fatalf("patch: %d %s", code, raw)
		}
		code, out, _ = b.do(t, asStaff, "PATCH", one, map[string]any{"events": []string{"nope"}})
		expectValidation(t, code, out, "events")

		code, out, _ = b.do(t, asStaff, "PATCH", one, map[string]any{"disabled": true})
		if code != http.StatusOK || out["disabled"] != true || out["disabledReason"] != endpoint.ReasonManual || out["disabledAt"] == nil {
			t.Fatalf("disable: %d %v", code, out)
		}
		// The engine counts failures meanwhile.
		if _, err := db.Exec(ctx, "UPDATE webhooks SET consecutive_failures = 7, first_failure_at = 1 WHERE id = $1", id); err != nil {
			t.Fatal(err)
		}
		code, out, _ = b.do(t, asStaff, "GET", one, nil)
		if code != http.StatusOK || out["consecutiveFailures"] != float64(7) {
			t.Fatalf("get: %d %v", code, out)
		}
		code, out, _ = b.do(t, asStaff, "PATCH", one, map[string]any{"disabled": false})
		if code != http.StatusOK || out["disabled"] != false || out["disabledReason"] != "" || out["disabledAt"] != nil ||
			out["consecutiveFailures"] != float64(0) {
			t.Fatalf("re-enable: %d %v", code, out)
		}
		var first *int64
		if err := db.QueryRow(ctx, "SELECT first_failure_at FROM webhooks WHERE id = $1", id).Scan(&first); err != nil || first != nil {
			t.Fatalf("first_failure_at after re-enabling: %v %v", first, err)
		}
		// An empty patch changes nothing.
		if code, out, _ = b.do(t, asStaff, "PATCH", one, map[string]any{}); code != http.StatusOK || out["url"] != "http://127.0.0.2:9/new" {
			t.Fatalf("empty patch: %d %v", code, out)
		}

		if code, _, _ := b.do(t, asStaff, "DELETE", one, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		if code, out, _ := b.do(t, asStaff, "GET", one, nil); code != http.StatusNotFound || out["code"] != "webhook_not_found" {
			t.Fatalf("after delete: %d %v", code, out)
		}
		if code, _, _ := b.do(t, asStaff, "DELETE", one, nil); code != http.StatusNotFound {
			t.Fatalf("second delete: %d", code)
		}
	})
}

// verify checks a received delivery against secrets (and the survey's JWT secret for s1).
func verify(t *testing.T, got received, url string, secrets ...string) *webhook.Verified {
	t.Helper()
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: secrets, JWTSecret: jwtSecretS1, Audience: url})
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Verify(got.header, got.body)
	if err != nil {
		t.Fatalf("verifying with %d secret(s): %v", len(secrets), err)
	}
	return d
}

func TestTestSend(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		rc := newReceiver(t, http.StatusNoContent)
		url := rc.URL + "/hook"
		created := b.create(t, url)
		id, secret := created["id"].(string), created["secret"].(string)

		code, out, raw := b.do(t, asStaff, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil)
		if code != http.StatusOK || out["delivered"] != true || out["statusCode"] != float64(204) || out["error"] != "" {
			t.Fatalf("test: %d %s", code, raw)
		}
		got := rc.last(t)
		d := verify(t, got, url, secret)
		var ev events.Event
		if err := json.Unmarshal(got.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != events.TypeWebhookTest || ev.SurveyID != "s1" || ev.ID != d.ID || d.ID != out["eventId"] {
			t.Fatalf("event %+v, verified %+v, answer %v", ev, d, out)
		}
		if d.Claims == nil || d.Claims.SurveyID != "s1" || d.Claims.Type != events.TypeWebhookTest {
			t.Fatalf("claims %+v", d.Claims)
		}

		// Recorded: an already-published event, a succeeded delivery and its attempt.
		deliveryID := out["deliveryId"].(string)
		if deliveryID != delivery.DeliveryID(ev.ID, id) {
			t.Fatalf("delivery id %s", deliveryID)
		}
		var published *int64
		var payload []byte
		if err := db.QueryRow(ctx, "SELECT published_at, payload FROM events WHERE id = $1", ev.ID).Scan(&published, &payload); err != nil || published == nil {
			t.Fatalf("event row: %v %v", published, err)
		}
		var status, lastErr, rowURL string
		var attempts int
		var next *int64
		if err := db.QueryRow(ctx, "SELECT status, attempts, last_error, next_attempt_at, url FROM deliveries WHERE id = $1", deliveryID).
			Scan(&status, &attempts, &lastErr, &next, &rowURL); err != nil {
			t.Fatal(err)
		}
		if status != "succeeded" || attempts != 1 || lastErr != "" || next != nil || rowURL != url {
			t.Fatalf("delivery row: %s %d %q %v %s", status, attempts, lastErr, next, rowURL)
		}
		var n int
		var sc *int64
		if err := db.QueryRow(ctx, "SELECT n, status_code FROM delivery_attempts WHERE delivery_id = $1", deliveryID).Scan(&n, &sc); err != nil || n != 1 || sc == nil || *sc != 204 {
			t.Fatalf("attempt row: %d %v %v", n, sc, err)
		}

		// A failing receiver: the outcome and the sanitised answer are reported and recorded.
		rc.mu.Lock()
		rc.status = http.StatusInternalServerError
		rc.mu.Unlock()
		code, out, raw = b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil)
		if code != http.StatusOK || out["delivered"] != false || out["statusCode"] != float64(500) || out["error"] != "http_error" ||
			!strings.HasPrefix(out["responseBody"].(string), "answer from receiver") {
			t.Fatalf("failing test: %d %s", code, raw)
		}
		var body string
		if err := db.QueryRow(ctx, `SELECT d.status, a.response_body FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
			WHERE d.id = $1`, out["deliveryId"]).Scan(&status, &body); err != nil || status != "failed" || !strings.HasPrefix(body, "answer from receiver") {
			t.Fatalf("failed delivery row: %s %q %v", status, body, err)
		}
		// A test send leaves the engine's failure counters alone.
		code, out, _ = b.do(t, asAdmin, "GET", "/api/admin/surveys/s1/webhooks/"+id, nil)
		if code != http.StatusOK || out["consecutiveFailures"] != float64(0) {
			t.Fatalf("counters: %v", out)
		}
	})
}

func TestRotateSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		rc := newReceiver(t, http.StatusOK)
		url := rc.URL + "/hook"
		created := b.create(t, url)
		id, oldSecret := created["id"].(string), created["secret"].(string)
		one := "/api/admin/surveys/s1/webhooks/" + id

		code, out, raw := b.do(t, asStaff, "POST", one+"/rotate-secret", nil)
		newSecret, _ := out["secret"].(string)
		if code != http.StatusOK || !strings.HasPrefix(newSecret, webhook.SecretPrefix) || newSecret == oldSecret {
			t.Fatalf("rotate: %d %s", code, raw)
		}
		until, err := time.Parse(time.RFC3339Nano, out["previousSecretExpiresAt"].(string))
		if err != nil || until.Sub(time.Now()) < 23*time.Hour {
			t.Fatalf("previous secret expiry %v %v", until, err)
		}
		code, out, raw = b.do(t, asStaff, "GET", one, nil)
		if code != http.StatusOK || out["secretRotating"] != true || out["secretRotatingUntil"] == nil ||
			bytes.Contains(raw, []byte("whsec_")) {
			t.Fatalf("after rotation: %d %s", code, raw)
		}

		if code, out, raw = b.do(t, asStaff, "POST", one+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test: %d %s", code, raw)
		}
		got := rc.last(t)
		if sigs := strings.Fields(got.header.Get(webhook.HeaderSignature)); len(sigs) != 2 {
			t.Fatalf("want two signatures while rotating, got %q", got.header.Get(webhook.HeaderSignature))
		}
		verify(t, got, url, newSecret)
		verify(t, got, url, oldSecret)
	})
}

func TestTestSendBlockedAtConnection(t *testing.T) {
	t.Parallel()
	// Registered while loopback was allowed, sent by a client that no longer allows it: the
	// dialer's own check refuses the connection.
	db := storetest.SQLite(t)
	b := setup(t, db, options{allowNets: loopback()})
	rc := newReceiver(t, http.StatusOK)
	id := b.create(t, rc.URL)["id"].(string)
	code, out, raw := b.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil)
	if code != http.StatusOK || out["delivered"] != false || out["error"] != "blocked_address" || out["statusCode"] != nil {
		t.Fatalf("blocked test: %d %s", code, raw)
	}
	if len(rc.got) != 0 {
		t.Fatal("the receiver was reached")
	}
	// The detail is the registration's message for the host, not the dialler's error, which
	// names the address dialled (issue 11: test sends revealed internal addresses). The same
	// for a name that resolves to loopback: the address stays out.
	if out["detail"] != webhook.HostRefusal("127.0.0.1") {
		t.Fatalf("detail %q, want %q", out["detail"], webhook.HostRefusal("127.0.0.1"))
	}
	both := append(loopback(), &net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)})
	named := setup(t, storetest.SQLite(t), options{allowNets: both})
	id = named.create(t, strings.Replace(rc.URL, "127.0.0.1", "localhost", 1))["id"].(string)
	code, out, raw = named.do(t, asAdmin, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil)
	if code != http.StatusOK || out["error"] != "blocked_address" || out["detail"] != webhook.HostRefusal("localhost") ||
		strings.Contains(string(raw), "127.0.0.1") || strings.Contains(string(raw), "::1") {
		t.Fatalf("blocked test of a name: %d %s", code, raw)
	}
}
