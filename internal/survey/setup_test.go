package survey

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

const testAppURL = "https://survey.example.org/app"

// cheapParams keep password hashing out of test run times.
var cheapParams = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// testSecret is a survey jwtSecret as an integrator would hold it.
const testSecret = "integration-secret-0123456789-abcdefghij"

// headerAuth is the test Authenticator: X-Test-User names a fixed principal, "admin",
// "staff:s1,s2" (assigned surveys) or "respondent:s1".
type headerAuth struct{}

func (headerAuth) Authenticate(_ context.Context, r *http.Request) (*httpapi.Principal, error) {
	v := r.Header.Get("X-Test-User")
	kind, arg, _ := strings.Cut(v, ":")
	switch kind {
	case "":
		return nil, nil
	case "admin":
		return &httpapi.Principal{UserID: "u-admin", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleAdmin}}, nil
	case "staff":
		var surveys []string
		if arg != "" {
			surveys = strings.Split(arg, ",")
		}
		return &httpapi.Principal{UserID: "u-staff", Kind: httpapi.KindGlobal, Roles: []string{httpapi.RoleStaff}, Surveys: surveys}, nil
	case "respondent":
		return &httpapi.Principal{UserID: "u-resp", Kind: httpapi.KindRespondent, Roles: []string{httpapi.RoleRespondent}, SurveyID: arg}, nil
	}
	return nil, httpapi.Unauthorized("bad_token", "unknown test user")
}

// fixture is a running survey service over one database.
type fixture struct {
	t   *testing.T
	db  *store.DB
	svc *Service
	srv *httptest.Server
}

// testKeyring returns a keyring with a fresh random key.
func testKeyring(t testing.TB) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func setup(t *testing.T, db *store.DB, opts ...func(*Config)) *fixture {
	t.Helper()
	cfg := Config{
		DB:                   db,
		Secrets:              testKeyring(t),
		SurveyAppURL:         testAppURL + "/",
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordParams:       cheapParams,
		ImportPasswordParams: cheapParams,
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(headerAuth{}, cfg.Logger)
	svc.Register(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return &fixture{t: t, db: db, svc: svc, srv: srv}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return m
}

func (r response) code(t *testing.T) string {
	t.Helper()
	c, _ := r.json(t)["code"].(string)
	return c
}

// do sends a request as user (see headerAuth); body is JSON-encoded unless it is a string.
func (f *fixture) do(method, path, user string, body any) response {
	f.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	return f.send(method, path, user, ct, rd)
}

func (f *fixture) send(method, path, user, contentType string, body io.Reader) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails unless the response has the status (and, when code is not empty, the
// problem code).
func expect(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.code(t); got != code {
			t.Fatalf("code %q, want %q: %s", got, code, r.body)
		}
	}
}

// createSurvey creates a survey as admin with create-user enabled.
func (f *fixture) createSurvey(id string, extra map[string]any) map[string]any {
	f.t.Helper()
	body := map[string]any{"id": id, "name": "Survey " + id, "allowGenUsers": true, "jwtSecret": testSecret}
	for k, v := range extra {
		body[k] = v
	}
	r := f.do("POST", "/api/admin/surveys", "admin", body)
	expect(f.t, r, http.StatusCreated, "")
	return r.json(f.t)
}

func (f *fixture) countRespondents(surveyID string) int {
	f.t.Helper()
	var n int
	if err := f.db.QueryRow(f.t.Context(), `SELECT COUNT(*) FROM respondents WHERE survey_id = $1`, surveyID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// signToken signs claims the way a third party would: golang-jwt directly, with the secret.
func signToken(t testing.TB, method jwt.SigningMethod, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hourFromNow() int64 { return time.Now().Add(time.Hour).Unix() }
