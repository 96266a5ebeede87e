package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// cheap argon2id costs for tests where timing does not matter.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

const testSecret = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fixture is a service over one database, its router and its clock.
type fixture struct {
	t     testing.TB
	db    *store.DB
	svc   *auth.Service
	rt    *httpapi.Router
	clock *clock
	logs  *syncBuffer
}

func setup(t testing.TB, db *store.DB, mods ...func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, db: db, clock: newClock(), logs: &syncBuffer{}}
	// Respondents are signed in through their owner's store, as in cmd/api; sign-in opens no
	// survey secret, so it needs no keyring.
	cfg := auth.Config{Respondents: survey.NewStore(db, nil), Secret: []byte(testSecret), PasswordParams: cheap, NowFunc: f.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := auth.New(db, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.rt = newRouter(svc, logger)
	return f
}

// newRouter registers the service's routes and a probe route per policy.
func newRouter(svc *auth.Service, logger *slog.Logger) *httpapi.Router {
	rt := httpapi.NewRouter(svc, logger)
	svc.Register(rt)
	whoami := func(w http.ResponseWriter, r *http.Request) error {
		httpapi.WriteJSON(w, http.StatusOK, httpapi.PrincipalFrom(r.Context()))
		return nil
	}
	rt.Handle("GET /test/global", httpapi.Global, whoami)
	rt.Handle("GET /test/admin", httpapi.Admin, whoami)
	rt.Handle("GET /test/staff/{surveyId}", httpapi.SurveyStaff, whoami)
	rt.Handle("GET /test/respondent/{surveyId}", httpapi.SurveyRespondent, whoami)
	return rt
}

type header = [2]string

// do sends a request to the fixture's router. A string or []byte body is sent as it is,
// anything else non-nil as JSON.
func (f *fixture) do(method, path string, body any, headers ...header) *httptest.ResponseRecorder {
	f.t.Helper()
	return doReq(f.t, f.rt, "192.0.2.1:4711", method, path, body, headers...)
}

func doReq(t testing.TB, h http.Handler, remote, method, path string, body any, headers ...header) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = remote
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for _, h := range headers {
		r.Header.Set(h[0], h[1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func token(tok string) header  { return header{"X-Auth-Token", tok} }
func bearer(tok string) header { return header{"Authorization", "Bearer " + tok} }

// decode decodes a JSON response body into a map.
func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("decoding %d response %q: %v", w.Code, w.Body.String(), err)
	}
	return m
}

// want checks a response's status and, for problems, its code.
func want(t testing.TB, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if code != "" {
		if got := decode(t, w)["code"]; got != code {
			t.Fatalf("code %v, want %s; body %s", got, code, w.Body.String())
		}
	}
}

func (f *fixture) createUser(email, pw string, roles []string, surveys ...string) *auth.User {
	f.t.Helper()
	u, err := f.svc.CreateUser(context.Background(), auth.NewUser{Email: email, Password: pw, Name: "Test", Roles: roles, Surveys: surveys})
	if err != nil {
		f.t.Fatalf("creating %s: %v", email, err)
	}
	return u
}

func (f *fixture) createSurvey(id string) {
	f.t.Helper()
	now := store.Micros(f.clock.Now())
	if _, err := f.db.Exec(context.Background(), `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)`, id, "Survey "+id, now); err != nil {
		f.t.Fatal(err)
	}
}

// createRespondent writes a respondent as the survey package would; pw "" leaves it without
// a password.
func (f *fixture) createRespondent(surveyID, username, pw, authToken string, disabled bool) string {
	f.t.Helper()
	var hash *string
	if pw != "" {
		h, err := password.HashWith(cheap, pw)
		if err != nil {
			f.t.Fatal(err)
		}
		hash = &h
	}
	id := "rsp_" + surveyID + "_" + username
	now := store.Micros(f.clock.Now())
	_, err := f.db.Exec(context.Background(), `INSERT INTO respondents (id, survey_id, username, password_hash, auth_token, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, id, surveyID, username, hash, authToken, disabled, now)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// signIn signs a global account in over HTTP and returns its refresh token.
func (f *fixture) signIn(email, pw string) string {
	f.t.Helper()
	w := f.do("POST", "/api/signin", map[string]string{"email": email, "password": pw})
	want(f.t, w, http.StatusOK, "")
	return decode(f.t, w)["refreshToken"].(string)
}

// access exchanges a refresh token for an access token over HTTP.
func (f *fixture) access(refresh string) string {
	f.t.Helper()
	w := f.do("POST", "/api/refresh", nil, token(refresh))
	want(f.t, w, http.StatusOK, "")
	return decode(f.t, w)["accessToken"].(string)
}

// login is signIn then access.
func (f *fixture) login(email, pw string) (refresh, access string) {
	f.t.Helper()
	refresh = f.signIn(email, pw)
	return refresh, f.access(refresh)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
