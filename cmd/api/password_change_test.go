package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// bothStores returns the variables of an embedded (SQLite) and a PostgreSQL API.
func bothStores() []struct {
	name string
	vars func(t *testing.T) map[string]string
} {
	return []struct {
		name string
		vars func(t *testing.T) map[string]string
	}{
		{"sqlite", func(t *testing.T) map[string]string {
			return map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password"}
		}},
		{"postgres", func(t *testing.T) map[string]string {
			return map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password",
				"DATABASE_URL": storetest.PostgresURL(t), "TOKEN_SECRET": strings.Repeat("s", 40), "SECRETS_KEY": testSecretsKey}
		}},
	}
}

// req sends one request with a body of the given content type (JSON when ct is empty) and
// extra headers, from remote.
func (a *api) req(t *testing.T, remote, method, path, ct, body, tok string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if ct == "" {
			ct = "application/json"
		}
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = remote
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		r.Header.Set("X-Auth-Token", tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	a.handler.ServeHTTP(w, r)
	return w
}

// refreshToken signs in through path and returns the refresh token.
func (a *api) refreshToken(t *testing.T, path, body string) string {
	t.Helper()
	w := a.do(t, "POST", path, body, "")
	if w.Code != http.StatusOK {
		t.Fatalf("sign-in %s: %d %s", path, w.Code, w.Body.String())
	}
	var s struct{ RefreshToken string }
	_ = json.Unmarshal(w.Body.Bytes(), &s)
	return s.RefreshToken
}

// refreshStatus is the status and problem code of POST /api/refresh with tok.
func (a *api) refreshStatus(t *testing.T, tok string) (int, string) {
	t.Helper()
	w := a.do(t, "POST", "/api/refresh", "", tok)
	var p struct{ Code string }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	return w.Code, p.Code
}

func (a *api) mustDo(t *testing.T, want int, method, path, body, tok string) map[string]any {
	t.Helper()
	w := a.do(t, method, path, body, tok)
	if w.Code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, w.Body.String(), want)
	}
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return m
}

// TestPasswordChangeRevokesRefreshTokens goes through every way a password is set — a
// respondent's PATCH, a CSV import with a password column, a global account's own change and
// an admin's reset — and checks /api/refresh afterwards: 401 token_revoked for the account
// whose password was set, 200 for the others. Regression for issue 11: after a respondent's
// password PATCH, /refresh still answered 200.
func TestPasswordChangeRevokesRefreshTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range bothStores() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := buildAPI(t, tc.vars(t))
			adminRT := a.refreshToken(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
			admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)
			a.mustDo(t, http.StatusCreated, "POST", "/api/admin/surveys", `{"id":"pw-survey","name":"PW"}`, admin)
			for _, u := range []string{"r1", "r2", "r3"} {
				a.mustDo(t, http.StatusCreated, "POST", "/api/admin/surveys/pw-survey/respondents",
					`{"username":"`+u+`","password":"first password"}`, admin)
			}
			rt := map[string]string{}
			for _, u := range []string{"r1", "r2", "r3"} {
				rt[u] = a.refreshToken(t, "/api/signin/alias", `{"surveyId":"pw-survey","userName":"`+u+`","password":"first password"}`)
			}
			check := func(t *testing.T, who, tok string, want int) {
				t.Helper()
				code, problem := a.refreshStatus(t, tok)
				if code != want || (want == http.StatusUnauthorized && problem != "token_revoked") {
					t.Fatalf("%s: /api/refresh %d %s, want %d", who, code, problem, want)
				}
			}

			t.Run("respondent PATCH", func(t *testing.T) {
				a.mustDo(t, http.StatusOK, "PATCH", "/api/admin/surveys/pw-survey/respondents/r1", `{"password":"second password"}`, admin)
				check(t, "r1 after its password PATCH", rt["r1"], http.StatusUnauthorized)
				check(t, "r2", rt["r2"], http.StatusOK)
				a.refreshToken(t, "/api/signin/alias", `{"surveyId":"pw-survey","userName":"r1","password":"second password"}`)
			})

			t.Run("CSV import", func(t *testing.T) {
				// r2 gets a password from the file, r3 only a name: only r2 is signed out.
				w := a.req(t, "192.0.2.10:1", "POST", "/api/admin/surveys/pw-survey/respondents/import", "text/csv",
					"username,password,name\nr2,imported password,\nr3,,Third\n", admin)
				if w.Code != http.StatusOK {
					t.Fatalf("import: %d %s", w.Code, w.Body.String())
				}
				check(t, "r2 after an import set its password", rt["r2"], http.StatusUnauthorized)
				check(t, "r3 after an import without a password", rt["r3"], http.StatusOK)
				a.refreshToken(t, "/api/signin/alias", `{"surveyId":"pw-survey","userName":"r2","password":"imported password"}`)
			})

			t.Run("global account", func(t *testing.T) {
				staff := a.mustDo(t, http.StatusCreated, "POST", "/api/admin/users",
					`{"email":"staff@example.org","password":"staff password","roles":["staff"]}`, admin)
				adminUser := a.mustDo(t, http.StatusOK, "GET", "/api/admin/users", "", admin)["items"].([]any)[0].(map[string]any)
				staffRT := a.refreshToken(t, "/api/signin", `{"email":"staff@example.org","password":"staff password"}`)
				staffAccess := a.token(t, "/api/signin", `{"email":"staff@example.org","password":"staff password"}`)
				staffPAT := a.mustDo(t, http.StatusCreated, "POST", "/api/admin/user/personal-access-tokens", `{"name":"ci","expiresAt":"`+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"}`, staffAccess)["token"].(string)
				adminPAT := a.mustDo(t, http.StatusCreated, "POST", "/api/admin/user/personal-access-tokens", `{"name":"laptop","expiresAt":"`+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"}`, admin)["token"].(string)

				// The admin changes their own password: their refresh tokens go, their PAT stays
				// (owners list and delete their own tokens).
				a.mustDo(t, http.StatusOK, "PATCH", "/api/admin/users/"+adminUser["id"].(string), `{"password":"new admin password"}`, admin)
				check(t, "admin after changing their password", adminRT, http.StatusUnauthorized)
				check(t, "staff", staffRT, http.StatusOK)
				a.mustDo(t, http.StatusOK, "GET", "/api/admin/users", "", adminPAT)

				// The admin resets the staff account's password: its refresh tokens and its
				// PATs go, which the admin could not otherwise remove.
				a.mustDo(t, http.StatusOK, "GET", "/api/admin/surveys", "", staffPAT)
				a.mustDo(t, http.StatusOK, "PATCH", "/api/admin/users/"+staff["id"].(string), `{"password":"reset password"}`, admin)
				check(t, "staff after a reset", staffRT, http.StatusUnauthorized)
				if w := a.do(t, "GET", "/api/admin/surveys", "", staffPAT); w.Code != http.StatusUnauthorized {
					t.Fatalf("staff PAT after a reset: %d %s", w.Code, w.Body.String())
				}
				a.refreshToken(t, "/api/signin", `{"email":"staff@example.org","password":"reset password"}`)
			})
		})
	}
}

// TestTrustedProxies: behind a trusted proxy each client has its own failure count, taken
// from X-Forwarded-For; without TRUSTED_PROXIES the header is ignored and clients behind one
// proxy share its count. Regression for issue 11: X-Forwarded-For was never used.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	const proxy = "192.0.2.10:5555"
	wrong := `{"email":"admin@localhost","password":"wrong password"}`
	for _, tc := range []struct {
		trusted   string
		otherCode int // client B's answer after client A used up the account's allowance
	}{
		{"192.0.2.0/24", http.StatusUnauthorized},
		{"", http.StatusTooManyRequests},
	} {
		t.Run("TRUSTED_PROXIES="+tc.trusted, func(t *testing.T) {
			t.Parallel()
			a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password", "TRUSTED_PROXIES": tc.trusted})
			for range 5 {
				if w := a.req(t, proxy, "POST", "/api/signin", "", wrong, "", "X-Forwarded-For", "6.6.6.6, 198.51.100.1"); w.Code != http.StatusUnauthorized {
					t.Fatalf("client A: %d %s", w.Code, w.Body.String())
				}
			}
			if w := a.req(t, proxy, "POST", "/api/signin", "", wrong, "", "X-Forwarded-For", "198.51.100.1"); w.Code != http.StatusTooManyRequests {
				t.Fatalf("client A after 5 failures: %d", w.Code)
			}
			// Client B, through the same proxy; the address it writes itself is ignored.
			if w := a.req(t, proxy, "POST", "/api/signin", "", wrong, "", "X-Forwarded-For", "198.51.100.1, 198.51.100.2"); w.Code != tc.otherCode {
				t.Fatalf("client B: %d, want %d", w.Code, tc.otherCode)
			}
		})
	}
}
