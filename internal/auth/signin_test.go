package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestSignInGlobal(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createUser("Ada@Example.org", "correct horse", []string{"admin"})
		f.createUser("off@example.org", "correct horse", []string{"staff"})
		_, err := f.svc.UpdateUser(t.Context(), mustUserID(t, f, "off@example.org"), auth.UserPatch{Disabled: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("success", func(t *testing.T) {
			w := f.do("POST", "/api/signin", `{"email":"  ada@EXAMPLE.org ","password":"correct horse"}`)
			want(t, w, http.StatusOK, "")
			body := decode(t, w)
			if len(body) != 1 || body["refreshToken"] == "" {
				t.Fatalf("body %v, want only refreshToken", body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("token response may be cached")
			}
		})
		for _, tc := range []struct {
			name, body, ct string
			status         int
			code           string
		}{
			{"wrong password", `{"email":"ada@example.org","password":"wrong horse"}`, "", 401, "invalid_credentials"},
			{"unknown account", `{"email":"nobody@example.org","password":"correct horse"}`, "", 401, "invalid_credentials"},
			{"disabled account", `{"email":"off@example.org","password":"correct horse"}`, "", 401, "invalid_credentials"},
			{"missing password", `{"email":"ada@example.org"}`, "", 400, "validation_failed"},
			{"missing email", `{"password":"x"}`, "", 400, "validation_failed"},
			{"malformed JSON", `{"email":`, "", 400, "malformed_json"},
			{"wrong types", `{"email":1,"password":true}`, "", 400, "validation_failed"},
			{"wrong content type", `{"email":"ada@example.org","password":"correct horse"}`, "text/plain", 415, "unsupported_media_type"},
			{"too large", `{"email":"ada@example.org","password":"` + strings.Repeat("x", 9000) + `"}`, "", 413, "body_too_large"},
			{"too long password", `{"email":"ada@example.org","password":"` + strings.Repeat("x", 2000) + `"}`, "", 400, "validation_failed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hs := []header{}
				if tc.ct != "" {
					hs = append(hs, header{"Content-Type", tc.ct})
				}
				// A fresh address each, so these failures do not trip the rate limit.
				w := doReq(t, f.rt, "198.51.100."+string(rune('1'+len(tc.name)%9))+":1", "POST", "/api/signin", tc.body, hs...)
				want(t, w, tc.status, tc.code)
			})
		}
		logs := f.logs.String()
		for _, secret := range []string{"correct horse", "wrong horse"} {
			if strings.Contains(logs, secret) {
				t.Fatalf("logs contain a password: %s", logs)
			}
		}
		if !strings.Contains(logs, "sign-in failed") || !strings.Contains(logs, "signed in") {
			t.Fatalf("sign-ins are not logged: %s", logs)
		}
	})
}

func TestSignInRespondent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("demo")
		f.createSurvey("other")
		id := f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		f.createRespondent("demo", "nopw", "", "tok-nopw-0123456789", false)
		f.createRespondent("demo", "off", "password123", "tok-off-0123456789", true)

		t.Run("alias", func(t *testing.T) {
			w := f.do("POST", "/api/signin/alias", `{"surveyId":"demo","userName":"user1","password":"password123"}`)
			want(t, w, http.StatusOK, "")
			refresh := decode(t, w)["refreshToken"].(string)
			access := f.access(refresh)
			claims := parseClaims(t, access)
			if claims.Subject != id || claims.UserID != id || claims.SurveyID != "demo" || claims.Username != "user1" ||
				len(claims.Roles) != 1 || claims.Roles[0] != "respondent" || claims.Type != auth.TypeAccess {
				t.Fatalf("respondent access claims %+v", claims)
			}
			want(t, f.do("GET", "/test/respondent/demo", nil, token(access)), http.StatusOK, "")
			want(t, f.do("GET", "/test/respondent/other", nil, token(access)), http.StatusNotFound, "survey_not_found")
			want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusForbidden, "forbidden")
			want(t, f.do("GET", "/test/staff/demo", nil, token(access)), http.StatusForbidden, "forbidden")
		})
		t.Run("alias username is case-insensitive in JSON keys", func(t *testing.T) {
			want(t, f.do("POST", "/api/signin/alias", `{"surveyId":"demo","username":"user1","password":"password123"}`), http.StatusOK, "")
		})
		for _, tc := range []struct{ name, body string }{
			{"wrong password", `{"surveyId":"demo","userName":"user1","password":"nope-nope"}`},
			{"other survey", `{"surveyId":"other","userName":"user1","password":"password123"}`},
			{"unknown survey", `{"surveyId":"nope","userName":"user1","password":"password123"}`},
			{"no password set", `{"surveyId":"demo","userName":"nopw","password":"password123"}`},
			{"disabled", `{"surveyId":"demo","userName":"off","password":"password123"}`},
		} {
			t.Run("alias "+tc.name, func(t *testing.T) {
				want(t, f.do("POST", "/api/signin/alias", tc.body), http.StatusUnauthorized, "invalid_credentials")
			})
		}
		want(t, f.do("POST", "/api/signin/alias", `{"surveyId":"demo"}`), http.StatusBadRequest, "validation_failed")

		t.Run("token", func(t *testing.T) {
			w := f.do("POST", "/api/signin/token/tok-nopw-0123456789", nil)
			want(t, w, http.StatusOK, "")
			access := f.access(decode(t, w)["refreshToken"].(string))
			if c := parseClaims(t, access); c.Username != "nopw" || c.SurveyID != "demo" {
				t.Fatalf("claims %+v", c)
			}
		})
		for name, path := range map[string]string{
			"unknown":  "/api/signin/token/tok-unknown-000000000",
			"disabled": "/api/signin/token/tok-off-0123456789",
			"too long": "/api/signin/token/" + strings.Repeat("a", 300),
		} {
			t.Run("token "+name, func(t *testing.T) {
				want(t, f.do("POST", path, nil), http.StatusUnauthorized, "invalid_credentials")
			})
		}
		if logs := f.logs.String(); strings.Contains(logs, "tok-") || strings.Contains(logs, "password123") {
			t.Fatalf("logs contain a token or password: %s", logs)
		}
	})
}

func TestRefreshAndSignOut(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		u := f.createUser("ada@example.org", "correct horse", []string{"staff", "admin"})
		refresh := f.signIn("ada@example.org", "correct horse")

		rc := parseClaimsType(t, refresh, auth.TypeRefresh)
		if rc.Subject != u.ID || rc.ID == "" || rc.IssuedAt == nil || rc.ExpiresAt == nil || rc.Issuer != "intake24" {
			t.Fatalf("refresh claims %+v", rc)
		}
		if got := rc.ExpiresAt.Sub(rc.IssuedAt.Time); got != auth.DefaultRefreshTTL {
			t.Fatalf("refresh lifetime %s", got)
		}

		w := f.do("POST", "/api/refresh", nil, token(refresh))
		want(t, w, http.StatusOK, "")
		body := decode(t, w)
		if len(body) != 1 {
			t.Fatalf("refresh body %v, want only accessToken", body)
		}
		access := body["accessToken"].(string)
		ac := parseClaims(t, access)
		if ac.Subject != u.ID || ac.UserID != u.ID || ac.Type != auth.TypeAccess || ac.SurveyID != "" ||
			strings.Join(ac.Roles, ",") != "admin,staff" || ac.ExpiresAt.Sub(ac.IssuedAt.Time) != auth.DefaultAccessTTL {
			t.Fatalf("access claims %+v", ac)
		}
		w = f.do("GET", "/test/admin", nil, token(access))
		want(t, w, http.StatusOK, "")
		if p := decode(t, w); p["UserID"] != u.ID || p["Kind"] != "global" || p["Username"] != "ada@example.org" {
			t.Fatalf("principal %v", p)
		}
		// Authorization: Bearer works as well, for access and refresh tokens.
		want(t, f.do("GET", "/test/admin", nil, bearer(access)), http.StatusOK, "")
		want(t, f.do("POST", "/api/refresh", nil, bearer(refresh)), http.StatusOK, "")
		// An empty JSON body is fine too.
		want(t, f.do("POST", "/api/refresh", `{}`, token(refresh)), http.StatusOK, "")

		want(t, f.do("POST", "/api/refresh", nil), http.StatusUnauthorized, "unauthenticated")
		want(t, f.do("POST", "/api/signout", nil), http.StatusUnauthorized, "unauthenticated")
		want(t, f.do("POST", "/api/signout", nil, token(access)), http.StatusUnauthorized, "invalid_token")

		w = f.do("POST", "/api/signout", nil, token(refresh))
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("signout: %d %q", w.Code, w.Body.String())
		}
		want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusUnauthorized, "token_revoked")
		want(t, f.do("POST", "/api/signout", nil, token(refresh)), http.StatusUnauthorized, "invalid_token")
		// Other sessions of the account are untouched.
		other := f.signIn("ada@example.org", "correct horse")
		want(t, f.do("POST", "/api/refresh", nil, token(other)), http.StatusOK, "")

		t.Run("expired refresh token", func(t *testing.T) {
			f.clock.Advance(auth.DefaultRefreshTTL + auth.DefaultLeeway + 1)
			want(t, f.do("POST", "/api/refresh", nil, token(other)), http.StatusUnauthorized, "token_expired")
			// Pruning removes the expired records.
			if err := f.svc.Prune(t.Context()); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRow(t.Context(), "SELECT count(*) FROM refresh_tokens").Scan(&n); err != nil || n != 0 {
				t.Fatalf("refresh tokens after pruning: %d %v", n, err)
			}
		})
	})
}

// TestRefreshChecksAccount: a refresh token stops working when its account is disabled or
// deleted, for global accounts and respondents alike.
func TestRefreshChecksAccount(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createUser("root@example.org", "correct horse", []string{"admin"})
		staff := f.createUser("staff@example.org", "correct horse", []string{"staff"})
		refresh, access := f.login("staff@example.org", "correct horse")
		want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusOK, "")

		if _, err := f.svc.UpdateUser(t.Context(), staff.ID, auth.UserPatch{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusUnauthorized, "invalid_token")
		want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusUnauthorized, "token_revoked")
		if _, err := f.svc.UpdateUser(t.Context(), staff.ID, auth.UserPatch{Disabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		// Re-enabling does not bring revoked tokens back.
		want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusUnauthorized, "token_revoked")
		want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusOK, "")

		refresh, access = f.login("staff@example.org", "correct horse")
		if err := f.svc.DeleteUser(t.Context(), staff.ID); err != nil {
			t.Fatal(err)
		}
		want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusUnauthorized, "invalid_token")
		want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusUnauthorized, "token_revoked")

		f.createSurvey("demo")
		f.createRespondent("demo", "r1", "password123", "tok-r1-0123456789", false)
		w := f.do("POST", "/api/signin/token/tok-r1-0123456789", nil)
		want(t, w, http.StatusOK, "")
		rRefresh := decode(t, w)["refreshToken"].(string)
		f.access(rRefresh)
		if _, err := db.Exec(t.Context(), "UPDATE respondents SET disabled = $1 WHERE username = 'r1'", true); err != nil {
			t.Fatal(err)
		}
		want(t, f.do("POST", "/api/refresh", nil, token(rRefresh)), http.StatusUnauthorized, "invalid_token")
		if _, err := db.Exec(t.Context(), "DELETE FROM respondents WHERE username = 'r1'"); err != nil {
			t.Fatal(err)
		}
		want(t, f.do("POST", "/api/refresh", nil, token(rRefresh)), http.StatusUnauthorized, "invalid_token")
	})
}

func parseClaims(t testing.TB, tok string) *auth.Claims {
	t.Helper()
	return parseClaimsType(t, tok, auth.TypeAccess)
}

func parseClaimsType(t testing.TB, tok, typ string) *auth.Claims {
	t.Helper()
	var c auth.Claims
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(testSecret), nil })
	if err != nil {
		t.Fatalf("parsing token: %v", err)
	}
	if c.Type != typ {
		t.Fatalf("type %q, want %q", c.Type, typ)
	}
	return &c
}

func mustUserID(t testing.TB, f *fixture, email string) string {
	t.Helper()
	users, err := f.svc.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == email {
			return u.ID
		}
	}
	t.Fatalf("no user %s", email)
	return ""
}

func ptr[T any](v T) *T { return &v }

// A CSV import hashes passwords with cheaper parameters; the first successful sign-in
// replaces the hash with one of the service's full cost, and a failed one leaves it alone.
func TestSignInUpgradesImportedHash(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("demo")
		weak, err := password.HashWith(password.Params{Memory: 32, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}, "imported-pw-1")
		if err != nil {
			t.Fatal(err)
		}
		now := store.Micros(f.clock.Now())
		if _, err := db.Exec(context.Background(), `INSERT INTO respondents (id, survey_id, username, password_hash, auth_token, disabled, created_at, updated_at)
			VALUES ('rsp_imp', 'demo', 'imp', $1, 'tok-imp-0123456789', false, $2, $2)`, weak, now); err != nil {
			t.Fatal(err)
		}
		stored := func() string {
			t.Helper()
			var h string
			if err := db.QueryRow(context.Background(), "SELECT password_hash FROM respondents WHERE id = 'rsp_imp'").Scan(&h); err != nil {
				t.Fatal(err)
			}
			return h
		}
		if !password.Weaker(weak, cheap) {
			t.Fatalf("%s is not weaker than %+v", weak, cheap)
		}

		want(t, f.do("POST", "/api/signin/alias", `{"surveyId":"demo","userName":"imp","password":"wrong-pw"}`), http.StatusUnauthorized, "invalid_credentials")
		if got := stored(); got != weak {
			t.Fatalf("a failed sign-in changed the hash to %s", got)
		}
		want(t, f.do("POST", "/api/signin/alias", `{"surveyId":"demo","userName":"imp","password":"imported-pw-1"}`), http.StatusOK, "")
		upgraded := stored()
		if upgraded == weak || password.Weaker(upgraded, cheap) || !strings.Contains(upgraded, "m=64,t=1") {
			t.Fatalf("hash after sign-in %s, want one with the service's parameters", upgraded)
		}
		if ok, err := password.Verify(upgraded, "imported-pw-1"); err != nil || !ok {
			t.Fatalf("upgraded hash does not verify the password: %v %v", ok, err)
		}
		want(t, f.do("POST", "/api/signin/alias", `{"surveyId":"demo","userName":"imp","password":"imported-pw-1"}`), http.StatusOK, "")
		if got := stored(); got != upgraded {
			t.Fatal("a full-cost hash was rehashed again")
		}
	})
}
