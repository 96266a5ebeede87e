package survey_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// api is an HTTP client of one test server.
type api struct {
	t   *testing.T
	url string
}

func (a api) call(method, path, token, contentType string, body []byte) (int, http.Header, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

func (a api) json(method, path, token string, body any) (int, map[string]any) {
	a.t.Helper()
	var raw []byte
	ct := ""
	if body != nil {
		raw, _ = json.Marshal(body)
		ct = "application/json"
	}
	status, _, m := a.call(method, path, token, ct, raw)
	return status, m
}

// signIn turns a refresh token into an access token through /api/refresh.
func (a api) access(refresh string) string {
	a.t.Helper()
	status, m := a.json("POST", "/api/refresh", refresh, nil)
	if status != http.StatusOK {
		a.t.Fatalf("refresh: %d %v", status, m)
	}
	return m["accessToken"].(string)
}

// TestThirdPartyFlow is seed 000's integration end to end, against the real auth service: an
// admin sets a survey up, a third party signs a JWT with the survey's secret exactly as an
// integrator would (golang-jwt, not our code), creates the respondent, and the respondent
// follows the authentication URL and signs in with its token, by option A and option B.
func TestThirdPartyFlow(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cheap := password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		authSvc, err := auth.New(db, auth.Config{Respondents: survey.NewStore(db, nil), Secret: []byte("token-secret-of-at-least-32-bytes!!"), PasswordParams: cheap}, logger)
		if err != nil {
			t.Fatal(err)
		}
		if err := authSvc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "admin@example.org", Password: "admin-password"}, io.Discard); err != nil {
			t.Fatal(err)
		}
		const appURL = "https://survey.example.org"
		keys, err := secret.NewKeyring(secret.GenerateKey())
		if err != nil {
			t.Fatal(err)
		}
		surveys, err := survey.New(survey.Config{DB: db, Secrets: keys, SurveyAppURL: appURL, Logger: logger, PasswordParams: cheap})
		if err != nil {
			t.Fatal(err)
		}
		rt := httpapi.NewRouter(authSvc, logger)
		authSvc.Register(rt)
		surveys.Register(rt)
		srv := httptest.NewServer(httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger}, rt))
		t.Cleanup(srv.Close)
		a := api{t: t, url: srv.URL}

		// The admin signs in and sets the survey up.
		status, m := a.json("POST", "/api/signin", "", map[string]any{"email": "admin@example.org", "password": "admin-password"})
		if status != http.StatusOK {
			t.Fatalf("admin sign-in: %d %v", status, m)
		}
		adminToken := a.access(m["refreshToken"].(string))
		const secret = "shared-secret-between-intake24-and-the-third-party"
		status, m = a.json("POST", "/api/admin/surveys", adminToken, map[string]any{
			"id": "demo-survey", "name": "Demo", "allowGenUsers": true, "jwtSecret": secret,
			"redirect": map[string]any{"url": "https://example.org/done?pid={identifier}", "identifier": "username"},
		})
		if status != http.StatusCreated || m["jwtSecretSet"] != true {
			t.Fatalf("create survey: %d %v", status, m)
		}

		// Option A: the third party's backend signs a token and calls the API.
		claims := jwt.MapClaims{
			"username": "participant-42", "name": "P 42", "redirectUrl": "https://thirdparty.example/back",
			"customFields": []map[string]string{{"name": "cohort", "value": "A"}},
			"exp":          time.Now().Add(5 * time.Minute).Unix(),
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		status, created := a.json("POST", "/api/surveys/demo-survey/create-user", "", map[string]any{"token": tok})
		if status != http.StatusOK {
			t.Fatalf("create-user: %d %v", status, created)
		}
		userID := created["userId"].(string)

		// The respondent follows authUrl: the survey app reads ?auth= and signs in with it.
		au, err := url.Parse(created["authUrl"].(string))
		if err != nil || !strings.HasPrefix(au.String(), appURL+"/demo-survey?") {
			t.Fatalf("authUrl %v", created["authUrl"])
		}
		refresh := signInWithToken(a, au.Query().Get("auth"))
		p, err := authSvc.AuthenticateToken(t.Context(), a.access(refresh))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != httpapi.KindRespondent || p.UserID != userID || p.SurveyID != "demo-survey" {
			t.Fatalf("principal %+v", p)
		}
		// shortAuthUrl carries the same token.
		if short := created["shortAuthUrl"].(string); short != appURL+"/a/"+au.Query().Get("auth") {
			t.Fatalf("shortAuthUrl %s", short)
		}

		// Option B: the browser is sent to the frontend route and on to its authUrl.
		tokB, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"username": "participant-43"}).SignedString([]byte(secret))
		status, hdr, _ := a.call("GET", "/demo-survey/create-user/"+tokB, "", "", nil)
		if status != http.StatusSeeOther {
			t.Fatalf("option B: %d", status)
		}
		loc, _ := url.Parse(hdr.Get("Location"))
		signInWithToken(a, loc.Query().Get("auth"))

		// A respondent imported with a password signs in by alias with the import's hashing costs.
		imported, err := survey.New(survey.Config{DB: db, Secrets: keys, SurveyAppURL: appURL, ImportPasswordParams: survey.DefaultImportPasswordParams})
		if err != nil {
			t.Fatal(err)
		}
		sv, _ := imported.Store().Survey(t.Context(), "demo-survey")
		rows, err := survey.ParseImport(strings.NewReader("username,password\nimported-1,imported password\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := imported.Import(t.Context(), &sv, rows); err != nil {
			t.Fatal(err)
		}
		status, m = a.json("POST", "/api/signin/alias", "", map[string]any{"surveyId": "demo-survey", "userName": "imported-1", "password": "imported password"})
		if status != http.StatusOK {
			t.Fatalf("alias sign-in of an imported respondent: %d %v", status, m)
		}

		// Disabling the respondent signs it out: its refresh token stops working.
		status, m = a.json("PATCH", "/api/admin/surveys/demo-survey/respondents/participant-42", adminToken, map[string]any{"disabled": true})
		if status != http.StatusOK {
			t.Fatalf("disable: %d %v", status, m)
		}
		if status, _ := a.json("POST", "/api/refresh", refresh, nil); status != http.StatusUnauthorized {
			t.Fatalf("refresh after disabling: %d", status)
		}
		if status, _ := a.json("POST", "/api/signin/token/"+au.Query().Get("auth"), "", nil); status != http.StatusUnauthorized {
			t.Fatalf("token sign-in after disabling: %d", status)
		}
	})
}

func signInWithToken(a api, authToken string) string {
	a.t.Helper()
	if authToken == "" {
		a.t.Fatal("no auth token in the URL")
	}
	status, m := a.json("POST", "/api/signin/token/"+url.PathEscape(authToken), "", nil)
	if status != http.StatusOK {
		a.t.Fatalf("token sign-in: %d %v", status, m)
	}
	return m["refreshToken"].(string)
}
