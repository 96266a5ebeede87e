package auth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestPersonalAccessTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("demo")
		f.createSurvey("other")
		f.createUser("root@example.org", "correct horse", []string{"admin"})
		staff := f.createUser("staff@example.org", "correct horse", []string{"staff"}, "demo")
		_, access := f.login("staff@example.org", "correct horse")
		_, rootAccess := f.login("root@example.org", "correct horse")
		const path = "/api/admin/user/personal-access-tokens"
		expires := f.clock.Now().Add(90 * 24 * time.Hour).Format(time.RFC3339)

		w := f.do("POST", path, map[string]string{"name": "ci", "expiresAt": expires}, token(access))
		want(t, w, http.StatusCreated, "")
		created := decode(t, w)
		pat, _ := created["token"].(string)
		if !strings.HasPrefix(pat, auth.PATPrefix) || len(pat) != len(auth.PATPrefix)+43 {
			t.Fatalf("token %q", pat)
		}
		for _, k := range []string{"id", "name", "expiresAt", "createdAt"} {
			if created[k] == nil || created[k] == "" {
				t.Fatalf("created PAT lacks %s: %v", k, created)
			}
		}
		var stored string
		if err := db.QueryRow(t.Context(), "SELECT token_hash FROM personal_access_tokens").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, pat[len(auth.PATPrefix):]) || len(stored) != 64 {
			t.Fatalf("stored %q is not a SHA-256 hash of the token", stored)
		}

		// The token acts with its owner's roles and assignments.
		w = f.do("GET", "/test/staff/demo", nil, bearer(pat))
		want(t, w, http.StatusOK, "")
		if p := decode(t, w); p["PAT"] != true || p["UserID"] != staff.ID {
			t.Fatalf("principal %v", p)
		}
		want(t, f.do("GET", "/test/staff/other", nil, bearer(pat)), http.StatusNotFound, "survey_not_found")
		want(t, f.do("GET", "/test/admin", nil, token(pat)), http.StatusForbidden, "forbidden")
		// A PAT cannot mint PATs.
		want(t, f.do("POST", path, map[string]string{"name": "x", "expiresAt": expires}, bearer(pat)), http.StatusForbidden, "pat_not_allowed")

		lastUsed := func() *int64 {
			t.Helper()
			var v *int64
			if err := db.QueryRow(t.Context(), "SELECT last_used_at FROM personal_access_tokens").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		first := lastUsed()
		if first == nil || *first != store.Micros(f.clock.Now()) {
			t.Fatalf("last_used_at %v after use", first)
		}
		f.clock.Advance(30 * time.Second)
		want(t, f.do("GET", "/test/global", nil, bearer(pat)), http.StatusOK, "")
		if v := lastUsed(); *v != *first {
			t.Fatal("last_used_at written twice within a minute")
		}
		f.clock.Advance(31 * time.Second)
		want(t, f.do("GET", "/test/global", nil, bearer(pat)), http.StatusOK, "")
		if v := lastUsed(); *v != store.Micros(f.clock.Now()) {
			t.Fatal("last_used_at not refreshed after a minute")
		}

		w = f.do("GET", path, nil, token(access))
		want(t, w, http.StatusOK, "")
		items := decode(t, w)["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("items %v", items)
		}
		item := items[0].(map[string]any)
		if _, ok := item["token"]; ok || item["lastUsedAt"] == nil || item["id"] != created["id"] {
			t.Fatalf("listed %v", item)
		}
		if strings.Contains(w.Body.String(), pat) || strings.Contains(w.Body.String(), stored) {
			t.Fatal("the list reveals the token or its hash")
		}
		// Others see neither the token nor can they delete it.
		w = f.do("GET", path, nil, token(rootAccess))
		want(t, w, http.StatusOK, "")
		if items := decode(t, w)["items"].([]any); len(items) != 0 {
			t.Fatalf("admin sees another user's tokens: %v", items)
		}
		want(t, f.do("DELETE", path+"/"+created["id"].(string), nil, token(rootAccess)), http.StatusNotFound, "token_not_found")

		for name, body := range map[string]map[string]string{
			"no name":         {"expiresAt": expires},
			"no expiry":       {"name": "x"},
			"bad expiry":      {"name": "x", "expiresAt": "tomorrow"},
			"past expiry":     {"name": "x", "expiresAt": f.clock.Now().Add(-time.Hour).Format(time.RFC3339)},
			"over two years":  {"name": "x", "expiresAt": f.clock.Now().AddDate(2, 0, 2).Format(time.RFC3339)},
			"name too long":   {"name": strings.Repeat("n", 101), "expiresAt": expires},
			"blank name only": {"name": "   ", "expiresAt": expires},
		} {
			t.Run(name, func(t *testing.T) {
				want(t, f.do("POST", path, body, token(access)), http.StatusBadRequest, "validation_failed")
			})
		}
		want(t, f.do("POST", path, map[string]string{"name": "max", "expiresAt": f.clock.Now().AddDate(2, 0, 0).Format(time.RFC3339)}, token(access)),
			http.StatusCreated, "")
		want(t, f.do("POST", path, nil, token(access)), http.StatusBadRequest, "malformed_json")
		// Respondents and anonymous callers cannot use the routes.
		want(t, f.do("GET", path, nil), http.StatusUnauthorized, "unauthenticated")

		t.Run("expired", func(t *testing.T) {
			w := f.do("POST", path, map[string]string{"name": "short", "expiresAt": f.clock.Now().Add(time.Hour).Format(time.RFC3339)}, token(access))
			want(t, w, http.StatusCreated, "")
			short := decode(t, w)["token"].(string)
			want(t, f.do("GET", "/test/global", nil, bearer(short)), http.StatusOK, "")
			f.clock.Advance(time.Hour)
			want(t, f.do("GET", "/test/global", nil, bearer(short)), http.StatusUnauthorized, "token_expired")
		})

		t.Run("deleted", func(t *testing.T) {
			_, access := f.login("staff@example.org", "correct horse") // the old access token expired meanwhile
			want(t, f.do("DELETE", path+"/"+created["id"].(string), nil, token(access)), http.StatusNoContent, "")
			want(t, f.do("GET", "/test/global", nil, bearer(pat)), http.StatusUnauthorized, "invalid_token")
			want(t, f.do("DELETE", path+"/"+created["id"].(string), nil, token(access)), http.StatusNotFound, "token_not_found")
		})

		t.Run("owner disabled or deleted", func(t *testing.T) {
			_, access := f.login("staff@example.org", "correct horse")
			w := f.do("POST", path, map[string]string{"name": "again", "expiresAt": expires}, token(access))
			want(t, w, http.StatusCreated, "")
			again := decode(t, w)["token"].(string)
			want(t, f.do("GET", "/test/global", nil, bearer(again)), http.StatusOK, "")
			if _, err := f.svc.UpdateUser(t.Context(), staff.ID, auth.UserPatch{Disabled: ptr(true)}); err != nil {
				t.Fatal(err)
			}
			want(t, f.do("GET", "/test/global", nil, bearer(again)), http.StatusUnauthorized, "invalid_token")
			if _, err := f.svc.UpdateUser(t.Context(), staff.ID, auth.UserPatch{Disabled: ptr(false)}); err != nil {
				t.Fatal(err)
			}
			want(t, f.do("GET", "/test/global", nil, bearer(again)), http.StatusOK, "")
			if err := f.svc.DeleteUser(t.Context(), staff.ID); err != nil {
				t.Fatal(err)
			}
			want(t, f.do("GET", "/test/global", nil, bearer(again)), http.StatusUnauthorized, "invalid_token")
		})
		if logs := f.logs.String(); strings.Contains(logs, auth.PATPrefix) {
			t.Fatalf("logs contain a personal access token: %s", logs)
		}
	})
}
