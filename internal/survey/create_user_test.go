package survey

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func (f *fixture) createUser(surveyID, token string) response {
	f.t.Helper()
	return f.do("POST", "/api/surveys/"+surveyID+"/create-user", "", map[string]any{"token": token})
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("s1", map[string]any{"authUrlTokenLength": 24})

		tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{
			"username": "p-001", "password": "first password", "name": "Pat",
			"redirectUrl":  "https://thirdparty.example/return?x=1",
			"customFields": []map[string]string{{"name": "pid", "value": "P1"}},
			"exp":          hourFromNow(),
		})
		r := f.createUser("s1", tok)
		expect(t, r, http.StatusOK, "")
		first := r.json(t)
		authToken := first["authToken"].(string)
		if len(authToken) != 24 || first["username"] != "p-001" || first["name"] != "Pat" ||
			first["redirectUrl"] != "https://thirdparty.example/return?x=1" ||
			first["authUrl"] != testAppURL+"/s1?auth="+authToken || first["shortAuthUrl"] != testAppURL+"/a/"+authToken {
			t.Fatalf("created %v", first)
		}
		if cf := first["customFields"].([]any); len(cf) != 1 || cf[0].(map[string]any)["value"] != "P1" {
			t.Fatalf("custom fields %v", cf)
		}

		t.Run("idempotent", func(t *testing.T) {
			again := signToken(t, jwt.SigningMethodHS512, testSecret, jwt.MapClaims{
				"username": "p-001", "password": "other password", "name": "Pat Smith",
				"customFields": []map[string]string{{"name": "wave", "value": "2"}},
			})
			r := f.createUser("s1", again)
			expect(t, r, http.StatusOK, "")
			m := r.json(t)
			if m["userId"] != first["userId"] || m["authToken"] != authToken || m["name"] != "Pat Smith" || m["redirectUrl"] != nil {
				t.Fatalf("again %v", m)
			}
			if cf := m["customFields"].([]any); len(cf) != 2 {
				t.Fatalf("custom fields not merged: %v", cf)
			}
			stored, _ := f.svc.Store().Respondent(t.Context(), "s1", "p-001")
			if ok, _ := password.Verify(stored.PasswordHash, "first password"); !ok {
				t.Fatal("the password changed")
			}
			if f.countRespondents("s1") != 1 {
				t.Fatal("a second account")
			}
			// Only a username: nothing else changes, optional fields omitted when empty.
			r = f.createUser("s1", signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "bare"}))
			expect(t, r, http.StatusOK, "")
			if m := r.json(t); m["name"] != nil || m["customFields"] != nil || m["redirectUrl"] != nil {
				t.Fatalf("bare %s", r.body)
			}
		})

		t.Run("errors", func(t *testing.T) {
			f.createSurvey("closed", map[string]any{"allowGenUsers": false})
			expect(t, f.do("POST", "/api/admin/surveys", "admin", map[string]any{"id": "nosecret", "allowGenUsers": true}), http.StatusCreated, "")
			rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"username": "x"}).SignedString(rsaKey)
			if err != nil {
				t.Fatal(err)
			}
			none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"username": "x"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			good := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "x"})
			parts := strings.Split(good, ".")
			otherPayload := strings.Split(signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "admin"}), ".")[1]
			sign := func(claims jwt.MapClaims) string { return signToken(t, jwt.SigningMethodHS256, testSecret, claims) }
			now := time.Now()

			cases := []struct {
				name, survey, token string
				status              int
				code                string
			}{
				{"unknown survey", "nope", good, 404, "survey_not_found"},
				{"generation off", "closed", good, 403, "user_generation_disabled"},
				{"no secret", "nosecret", good, 403, "user_generation_disabled"},
				{"wrong secret", "s1", signToken(t, jwt.SigningMethodHS256, "a-different-secret-of-enough-length!!", jwt.MapClaims{"username": "x"}), 403, "invalid_token"},
				{"tampered payload", "s1", parts[0] + "." + otherPayload + "." + parts[2], 403, "invalid_token"},
				{"alg none", "s1", none, 403, "invalid_token"},
				{"HS384", "s1", signToken(t, jwt.SigningMethodHS384, testSecret, jwt.MapClaims{"username": "x"}), 403, "invalid_token"},
				{"RS256", "s1", rs256, 403, "invalid_token"},
				{"expired", "s1", sign(jwt.MapClaims{"username": "x", "exp": now.Add(-time.Minute).Unix()}), 403, "token_expired"},
				{"not yet valid", "s1", sign(jwt.MapClaims{"username": "x", "nbf": now.Add(time.Hour).Unix()}), 403, "invalid_token"},
				{"malformed", "s1", "not-a-jwt", 400, "malformed_token"},
				{"malformed segments", "s1", "a.b.c", 400, "malformed_token"},
				{"no username", "s1", sign(jwt.MapClaims{"name": "x"}), 400, "validation_failed"},
				{"empty username", "s1", sign(jwt.MapClaims{"username": ""}), 400, "validation_failed"},
				{"long username", "s1", sign(jwt.MapClaims{"username": strings.Repeat("u", 257)}), 400, "validation_failed"},
				{"numeric username", "s1", sign(jwt.MapClaims{"username": 42}), 400, "validation_failed"},
				{"relative redirectUrl", "s1", sign(jwt.MapClaims{"username": "x", "redirectUrl": "/back"}), 400, "validation_failed"},
				{"customFields object", "s1", sign(jwt.MapClaims{"username": "x", "customFields": map[string]string{"a": "b"}}), 400, "validation_failed"},
				{"customFields value", "s1", sign(jwt.MapClaims{"username": "x", "customFields": []any{map[string]any{"name": "a", "value": 1}}}), 400, "validation_failed"},
				{"exp not a number", "s1", sign(jwt.MapClaims{"username": "x", "exp": "tomorrow"}), 400, "validation_failed"},
				{"password too long", "s1", sign(jwt.MapClaims{"username": "x", "password": strings.Repeat("p", 257)}), 400, "validation_failed"},
			}
			before := f.countRespondents("s1")
			for _, c := range cases {
				r := f.createUser(c.survey, c.token)
				if r.status != c.status || r.code(t) != c.code {
					t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
				}
			}
			if n := f.countRespondents("s1"); n != before {
				t.Fatalf("%d accounts created by bad tokens", n-before)
			}

			expect(t, f.do("POST", "/api/surveys/s1/create-user", "", map[string]any{}), http.StatusBadRequest, "validation_failed")
			expect(t, f.do("POST", "/api/surveys/s1/create-user", "", map[string]any{"token": 5}), http.StatusBadRequest, "validation_failed")
			expect(t, f.do("POST", "/api/surveys/s1/create-user", "", `{"token":`), http.StatusBadRequest, "malformed_json")
			expect(t, f.send("POST", "/api/surveys/s1/create-user", "", "text/plain", strings.NewReader(`{"token":"x"}`)), http.StatusUnsupportedMediaType, "")

			expect(t, f.do("POST", "/api/admin/surveys/s1/respondents", "admin", map[string]any{"username": "gone"}), http.StatusCreated, "")
			expect(t, f.do("PATCH", "/api/admin/surveys/s1/respondents/gone", "admin", map[string]any{"disabled": true}), http.StatusOK, "")
			expect(t, f.createUser("s1", sign(jwt.MapClaims{"username": "gone"})), http.StatusForbidden, "respondent_disabled")
		})

		t.Run("concurrent calls create one account", func(t *testing.T) {
			tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "racer", "password": "pw", "exp": hourFromNow()})
			const n = 20
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				got   = make([]response, n)
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					req, _ := http.NewRequest("POST", f.srv.URL+"/api/surveys/s1/create-user", strings.NewReader(`{"token":"`+tok+`"}`))
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					var b bytes.Buffer
					_, _ = b.ReadFrom(resp.Body)
					got[i] = response{status: resp.StatusCode, body: b.Bytes()}
				}()
			}
			close(start)
			wg.Wait()
			var userID, token string
			for i, r := range got {
				if r.status != http.StatusOK {
					t.Fatalf("call %d: %d %s", i, r.status, r.body)
				}
				m := r.json(t)
				if i == 0 {
					userID, token = m["userId"].(string), m["authToken"].(string)
				}
				if m["userId"] != userID || m["authToken"] != token {
					t.Fatalf("call %d answered another account: %v", i, m)
				}
			}
			var count int
			if err := db.QueryRow(t.Context(), `SELECT COUNT(*) FROM respondents WHERE survey_id = 's1' AND username = 'racer'`).Scan(&count); err != nil || count != 1 {
				t.Fatalf("%d accounts, %v", count, err)
			}
		})
	})
}

// TestCreateUserRedirect is option B: the browser is sent on with 303 either way, and the
// token appears in no log line.
func TestCreateUserRedirect(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		f := setup(t, db, func(c *Config) { c.Logger = logger })
		// Serve through the production middleware, which writes an access log line per request.
		rt := httpapi.NewRouter(headerAuth{}, logger)
		f.svc.Register(rt)
		f.srv.Close()
		f.srv = httptest.NewServer(httpapi.Middleware(httpapi.MiddlewareConfig{Logger: logger}, rt))
		t.Cleanup(f.srv.Close)
		f.createSurvey("s1", nil)
		f.createSurvey("closed", map[string]any{"allowGenUsers": false})

		tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "web-1", "exp": hourFromNow()})
		r := f.do("GET", "/s1/create-user/"+tok, "", nil)
		expect(t, r, http.StatusSeeOther, "")
		resp, err := f.svc.Store().Respondent(t.Context(), "s1", "web-1")
		if err != nil {
			t.Fatal(err)
		}
		if loc := r.header.Get("Location"); loc != testAppURL+"/s1?auth="+resp.AuthToken {
			t.Fatalf("Location %q", loc)
		}
		if r.header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatal("no Referrer-Policy")
		}
		r2 := f.do("GET", "/s1/create-user/"+tok, "", nil)
		if r2.status != http.StatusSeeOther || r2.header.Get("Location") != r.header.Get("Location") {
			t.Fatalf("second visit: %d %s", r2.status, r2.header.Get("Location"))
		}

		expired := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "web-2", "exp": time.Now().Add(-time.Hour).Unix()})
		wrong := signToken(t, jwt.SigningMethodHS256, "a-different-secret-of-enough-length!!", jwt.MapClaims{"username": "web-3"})
		for _, c := range []struct{ survey, token, code string }{
			{"nope", tok, "survey_not_found"},
			{"closed", tok, "user_generation_disabled"},
			{"s1", expired, "token_expired"},
			{"s1", wrong, "invalid_token"},
			{"s1", "garbage", "malformed_token"},
		} {
			r := f.do("GET", "/"+c.survey+"/create-user/"+c.token, "", nil)
			want := testAppURL + "/" + c.survey + "?error=" + url.QueryEscape(c.code)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
				t.Errorf("%s/%s: %d %q, want %q", c.survey, c.code, r.status, r.header.Get("Location"), want)
			}
		}
		for _, secret := range []string{tok, expired, wrong, resp.AuthToken} {
			if strings.Contains(logs.String(), secret) {
				t.Fatalf("a token is in the logs:\n%s", logs.String())
			}
		}
		if !strings.Contains(logs.String(), "create-user/{token}") {
			t.Fatalf("no access log lines to check:\n%s", logs.String())
		}
	})
}
