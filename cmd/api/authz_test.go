package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/openapi/openapitest"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

// api is the whole API as run() builds it, without listening.
type api struct {
	env     *app.Env
	handler http.Handler
	routes  []httpapi.Route
	stdout  *bytes.Buffer
	// logs holds the API's warnings and errors (text format).
	logs *runtest.Buffer
}

// buildAPI opens an environment over vars and wires every module and route with run()'s own
// newRouter, so the test sees exactly the routes the binary serves.
func buildAPI(t *testing.T, vars map[string]string) *api {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load("api", nil, func(k string) string { return vars[k] }, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &runtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := telemetry.NewMetrics()
	env, err := app.Open(ctx, cfg, logger, metrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	a := &api{env: env, stdout: &bytes.Buffer{}, logs: logs}
	mods, err := newModules(ctx, env, a.stdout)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRouter(cfg, env, mods, logger)
	if err != nil {
		t.Fatal(err)
	}
	a.routes = rt.Routes()
	// Every exchange of the tests that use a is checked against the OpenAPI document.
	a.handler = openapitest.Handler(t, httpapi.ClientAddress(cfg.TrustedProxies, httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger, Metrics: metrics}, rt)))
	return a
}

func (a *api) do(t *testing.T, method, path, body string, tok string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "192.0.2.10:1234"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		r.Header.Set("X-Auth-Token", tok)
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

// token signs in through the public routes and returns an access token.
func (a *api) token(t *testing.T, path, body string) string {
	t.Helper()
	w := a.do(t, "POST", "/api/refresh", "", a.refreshToken(t, path, body))
	if w.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", w.Code, w.Body.String())
	}
	var r struct{ AccessToken string }
	_ = json.Unmarshal(w.Body.Bytes(), &r)
	return r.AccessToken
}

var pathVar = regexp.MustCompile(`\{[^}]*\}`)

// routePath turns a route pattern into a concrete method and path: {surveyId} becomes
// surveyID, every other wildcard a made-up value.
func routePath(pattern, surveyID string) (string, string) {
	method, path, _ := strings.Cut(pattern, " ")
	if i := strings.Index(path, "/"); i > 0 { // a host in the pattern
		path = path[i:]
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = pathVar.ReplaceAllStringFunc(path, func(v string) string {
		if v == "{surveyId}" {
			return surveyID
		}
		return "x0123456789"
	})
	return method, path
}

// TestEveryRouteAuthorization walks every route the API registers as an anonymous caller,
// as a respondent and as staff assigned to no survey. Only public routes, the respondent's
// own survey-app routes and the global routes every staff account may use can succeed; the
// global ones must not reveal anything of a survey the caller is not assigned to.
func TestEveryRouteAuthorization(t *testing.T) {
	t.Parallel()
	for _, tc := range bothStores() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := buildAPI(t, tc.vars(t))
			ctx := context.Background()
			db := a.env.DB

			// Two surveys nobody but the admin manages, with a respondent each.
			now := store.Micros(time.Now())
			for _, s := range []string{"authz-mine", "authz-theirs"} {
				if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)`, s, "Secret "+s, now); err != nil {
					t.Fatal(err)
				}
			}
			hash, err := password.HashWith(password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, "respondent password")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range [][2]string{{"authz-mine", "tok-authz-mine-0123456789"}, {"authz-theirs", "tok-authz-theirs-0123456789"}} {
				if _, err := db.Exec(ctx, `INSERT INTO respondents (id, survey_id, username, password_hash, auth_token, created_at, updated_at)
					VALUES ($1, $2, 'resp', $3, $4, $5, $5)`, "rsp-"+r[0], r[0], hash, r[1], now); err != nil {
					t.Fatal(err)
				}
			}
			admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
			if w := a.do(t, "POST", "/api/admin/users", `{"email":"lonely@example.org","password":"staff password","roles":["staff"]}`, admin); w.Code != http.StatusCreated {
				t.Fatalf("creating staff: %d %s", w.Code, w.Body.String())
			}
			staff := a.token(t, "/api/signin", `{"email":"lonely@example.org","password":"staff password"}`)
			respondent := a.token(t, "/api/signin/alias", `{"surveyId":"authz-mine","userName":"resp","password":"respondent password"}`)

			denied := func(t *testing.T, who string, w *httptest.ResponseRecorder, pattern string) {
				t.Helper()
				switch w.Code {
				case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
				default:
					t.Errorf("%s: %s → %d, want 401/403/404: %.200s", who, pattern, w.Code, w.Body.String())
				}
			}
			if len(a.routes) < 10 {
				t.Fatalf("only %d routes registered", len(a.routes))
			}
			checked := 0
			for _, rt := range a.routes {
				body := ""
				method, _ := routePath(rt.Pattern, "")
				if method == "POST" || method == "PUT" || method == "PATCH" {
					body = `{}`
				}
				if rt.Policy == httpapi.Public {
					continue
				}
				checked++
				for _, survey := range []string{"authz-mine", "authz-theirs"} {
					m, p := routePath(rt.Pattern, survey)
					if w := a.do(t, m, p, body, ""); w.Code != http.StatusUnauthorized {
						t.Errorf("anonymous: %s → %d, want 401", rt.Pattern, w.Code)
					}
					if w := a.do(t, m, p, body, "garbage"); w.Code != http.StatusUnauthorized {
						t.Errorf("bad token: %s → %d, want 401", rt.Pattern, w.Code)
					}
					// The respondent may use its own survey's survey-app routes, nothing else.
					if !(rt.Policy == httpapi.SurveyRespondent && survey == "authz-mine") {
						denied(t, "respondent", a.do(t, m, p, body, respondent), rt.Pattern)
					}
					switch rt.Policy {
					case httpapi.Global:
						// Any staff account may call these; what they return must be scoped.
						w := a.do(t, m, p, body, staff)
						if w.Code >= 500 || strings.Contains(w.Body.String(), "authz-") {
							t.Errorf("unassigned staff: %s → %d reveals another survey: %.300s", rt.Pattern, w.Code, w.Body.String())
						}
						if survey == "authz-mine" {
							t.Logf("unassigned staff: %s → %d", rt.Pattern, w.Code)
						}
					default:
						denied(t, "unassigned staff", a.do(t, m, p, body, staff), rt.Pattern)
					}
				}
			}
			t.Logf("%d routes, %d behind a policy, each walked as anonymous, respondent and unassigned staff", len(a.routes), checked)
			// The walk did no damage: the admin still works and the surveys are intact.
			if w := a.do(t, "GET", "/api/admin/users", "", admin); w.Code != http.StatusOK {
				t.Fatalf("admin after the walk: %d", w.Code)
			}
			var n int
			if err := db.QueryRow(ctx, "SELECT count(*) FROM surveys WHERE id LIKE 'authz-%'").Scan(&n); err != nil || n != 2 {
				t.Fatalf("surveys after the walk: %d %v", n, err)
			}
		})
	}
}

// TestFirstAdmin: the first start prints how to sign in, the printed password works over
// HTTP, and a restart prints nothing new.
func TestFirstAdmin(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATA_DIR": t.TempDir()}
	p := runtest.Start(t, run, env)
	out := p.Stdout.String()
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "admin@localhost") || !strings.Contains(out, "/api/signin") {
		t.Fatalf("stdout:\n%s", out)
	}
	if strings.Contains(p.Stderr.String(), m[1]) {
		t.Fatal("the generated admin password is in the logs")
	}
	body, _ := json.Marshal(map[string]string{"email": "admin@localhost", "password": m[1]})
	resp, err := http.Post(p.URL+"/api/signin", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var signIn struct{ RefreshToken string }
	_ = json.NewDecoder(resp.Body).Decode(&signIn)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || signIn.RefreshToken == "" {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", p.URL+"/api/refresh", nil)
	req.Header.Set("X-Auth-Token", signIn.RefreshToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refresh struct{ AccessToken string }
	_ = json.NewDecoder(resp.Body).Decode(&refresh)
	resp.Body.Close()
	req, _ = http.NewRequest("GET", p.URL+"/api/admin/users", nil)
	req.Header.Set("X-Auth-Token", refresh.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin route with the access token: %d", resp.StatusCode)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p2 := runtest.Start(t, run, env)
	if strings.Contains(p2.Stdout.String(), "password") {
		t.Fatalf("second start printed:\n%s", p2.Stdout.String())
	}
}
