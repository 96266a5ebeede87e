package auth_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestUserAdministration(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("demo")
		f.createSurvey("other")
		root := f.createUser("root@example.org", "correct horse", []string{"admin"})
		_, admin := f.login("root@example.org", "correct horse")

		w := f.do("POST", "/api/admin/users", map[string]any{
			"email": " Staff@Example.ORG", "password": "staff password", "name": "Sam",
			"roles": []string{"staff", "staff"}, "surveys": []string{"other", "demo", "demo"},
		}, token(admin))
		want(t, w, http.StatusCreated, "")
		if b := w.Body.String(); strings.Contains(b, "argon2") || strings.Contains(strings.ToLower(b), "password") {
			t.Fatalf("response reveals the password hash: %s", b)
		}
		u := decode(t, w)
		id := u["id"].(string)
		if u["email"] != "staff@example.org" || u["name"] != "Sam" || join(u["roles"]) != "staff" ||
			join(u["surveys"]) != "demo,other" || u["disabled"] != false || u["createdAt"] == nil {
			t.Fatalf("created %v", u)
		}
		_, staff := f.login("staff@example.org", "staff password")
		want(t, f.do("GET", "/test/staff/demo", nil, token(staff)), http.StatusOK, "")

		for name, body := range map[string]map[string]any{
			"duplicate e-mail": {"email": "STAFF@example.org", "password": "long enough", "roles": []string{"staff"}},
		} {
			t.Run(name, func(t *testing.T) {
				want(t, f.do("POST", "/api/admin/users", body, token(admin)), http.StatusConflict, "email_taken")
			})
		}
		for name, body := range map[string]map[string]any{
			"bad e-mail":     {"email": "not-an-email", "password": "long enough", "roles": []string{"staff"}},
			"short password": {"email": "a@example.org", "password": "short", "roles": []string{"staff"}},
			"no roles":       {"email": "a@example.org", "password": "long enough"},
			"bad role":       {"email": "a@example.org", "password": "long enough", "roles": []string{"respondent"}},
			"unknown survey": {"email": "a@example.org", "password": "long enough", "roles": []string{"staff"}, "surveys": []string{"demo", "nope"}},
			"wrong type":     {"email": "a@example.org", "password": "long enough", "roles": "staff"},
		} {
			t.Run(name, func(t *testing.T) {
				want(t, f.do("POST", "/api/admin/users", body, token(admin)), http.StatusBadRequest, "validation_failed")
			})
		}

		w = f.do("GET", "/api/admin/users", nil, token(admin))
		want(t, w, http.StatusOK, "")
		items := decode(t, w)["items"].([]any)
		if len(items) != 2 || items[0].(map[string]any)["email"] != "root@example.org" || join(items[1].(map[string]any)["surveys"]) != "demo,other" {
			t.Fatalf("list %v", items)
		}
		if bytes.Contains(w.Body.Bytes(), []byte("argon2")) {
			t.Fatal("list reveals password hashes")
		}
		want(t, f.do("GET", "/api/admin/users/"+id, nil, token(admin)), http.StatusOK, "")
		want(t, f.do("GET", "/api/admin/users/nope", nil, token(admin)), http.StatusNotFound, "user_not_found")

		// Staff and respondents cannot administer accounts.
		for _, route := range [][2]string{{"GET", "/api/admin/users"}, {"POST", "/api/admin/users"}, {"PATCH", "/api/admin/users/" + id}, {"DELETE", "/api/admin/users/" + root.ID}} {
			want(t, f.do(route[0], route[1], `{}`, token(staff)), http.StatusForbidden, "forbidden")
			want(t, f.do(route[0], route[1], `{}`), http.StatusUnauthorized, "unauthenticated")
		}

		t.Run("patch", func(t *testing.T) {
			w := f.do("PATCH", "/api/admin/users/"+id, map[string]any{"surveys": []string{"other"}, "name": "Samantha"}, token(admin))
			want(t, w, http.StatusOK, "")
			if u := decode(t, w); join(u["surveys"]) != "other" || u["name"] != "Samantha" || u["email"] != "staff@example.org" {
				t.Fatalf("patched %v", u)
			}
			// The same access token now reaches only the new assignment: the store is read per request.
			want(t, f.do("GET", "/test/staff/demo", nil, token(staff)), http.StatusNotFound, "survey_not_found")
			want(t, f.do("GET", "/test/staff/other", nil, token(staff)), http.StatusOK, "")
			want(t, f.do("GET", "/test/admin", nil, token(staff)), http.StatusForbidden, "forbidden")
			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"roles": []string{"admin"}}, token(admin)), http.StatusOK, "")
			want(t, f.do("GET", "/test/admin", nil, token(staff)), http.StatusOK, "")
			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"roles": []string{"staff"}}, token(admin)), http.StatusOK, "")
			want(t, f.do("GET", "/test/admin", nil, token(staff)), http.StatusForbidden, "forbidden")

			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"surveys": []string{"nope"}}, token(admin)), http.StatusBadRequest, "validation_failed")
			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"email": "root@example.org"}, token(admin)), http.StatusConflict, "email_taken")
			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"password": "x"}, token(admin)), http.StatusBadRequest, "validation_failed")
			want(t, f.do("PATCH", "/api/admin/users/nope", map[string]any{"name": "x"}, token(admin)), http.StatusNotFound, "user_not_found")
			want(t, f.do("PATCH", "/api/admin/users/"+id, `{"disabled":"yes"}`, token(admin)), http.StatusBadRequest, "validation_failed")

			// A new password works at once and signs the old sessions out.
			refresh := f.signIn("staff@example.org", "staff password")
			want(t, f.do("PATCH", "/api/admin/users/"+id, map[string]any{"password": "new staff password"}, token(admin)), http.StatusOK, "")
			want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusUnauthorized, "token_revoked")
			f.signIn("staff@example.org", "new staff password")

			w = f.do("PATCH", "/api/admin/users/"+id, map[string]any{"disabled": true}, token(admin))
			want(t, w, http.StatusOK, "")
			if decode(t, w)["disabled"] != true {
				t.Fatal("not disabled")
			}
			want(t, f.do("GET", "/test/global", nil, token(staff)), http.StatusUnauthorized, "invalid_token")
			want(t, f.do("POST", "/api/signin", map[string]string{"email": "staff@example.org", "password": "new staff password"}), http.StatusUnauthorized, "invalid_credentials")
		})

		t.Run("last admin", func(t *testing.T) {
			want(t, f.do("PATCH", "/api/admin/users/"+root.ID, map[string]any{"disabled": true}, token(admin)), http.StatusConflict, "last_admin")
			want(t, f.do("PATCH", "/api/admin/users/"+root.ID, map[string]any{"roles": []string{"staff"}}, token(admin)), http.StatusConflict, "last_admin")
			want(t, f.do("DELETE", "/api/admin/users/"+root.ID, nil, token(admin)), http.StatusConflict, "last_admin")
			// Nothing changed.
			want(t, f.do("GET", "/test/admin", nil, token(admin)), http.StatusOK, "")
		})

		t.Run("delete", func(t *testing.T) {
			want(t, f.do("DELETE", "/api/admin/users/"+id, nil, token(admin)), http.StatusNoContent, "")
			want(t, f.do("DELETE", "/api/admin/users/"+id, nil, token(admin)), http.StatusNotFound, "user_not_found")
			var n int
			if err := db.QueryRow(t.Context(), "SELECT count(*) FROM user_surveys WHERE user_id = $1", id).Scan(&n); err != nil || n != 0 {
				t.Fatalf("assignments left: %d %v", n, err)
			}
			// The e-mail can be used again.
			want(t, f.do("POST", "/api/admin/users", map[string]any{"email": "staff@example.org", "password": "long enough", "roles": []string{"staff"}}, token(admin)), http.StatusCreated, "")
		})
	})
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		var out bytes.Buffer
		first := auth.FirstAdmin{Email: "Admin@Localhost", PublicURL: "http://127.0.0.1:8080/"}
		if err := f.svc.EnsureAdmin(t.Context(), first, &out); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		var pw string
		for _, line := range strings.Split(text, "\n") {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "password: "); ok {
				pw = p
			}
		}
		if len(pw) < 16 || !strings.Contains(text, "admin@localhost") ||
			!strings.Contains(text, "curl -sS -X POST 'http://127.0.0.1:8080'/api/signin") || !strings.Contains(text, pw+`"}'`) {
			t.Fatalf("instructions:\n%s", text)
		}
		if strings.Contains(f.logs.String(), pw) {
			t.Fatal("the generated password is logged")
		}
		_, access := f.login("admin@localhost", pw)
		want(t, f.do("GET", "/test/admin", nil, token(access)), http.StatusOK, "")

		// Idempotent: a second start prints nothing and creates nothing.
		out.Reset()
		if err := f.svc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "other@localhost"}, &out); err != nil || out.Len() != 0 {
			t.Fatalf("second run: %v %q", err, out.String())
		}
		if users, _ := f.svc.Users(t.Context()); len(users) != 1 {
			t.Fatalf("users %v", users)
		}
	})
	t.Run("given password", func(t *testing.T) {
		t.Parallel()
		f := setup(t, storetest.SQLite(t))
		var out bytes.Buffer
		if err := f.svc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "ops@example.org", Password: "from the environment"}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "from the environment") || !strings.Contains(out.String(), `$ADMIN_PASSWORD`) {
			t.Fatalf("instructions:\n%s", out.String())
		}
		f.login("ops@example.org", "from the environment")
		if err := f.svc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "x@example.org", Password: "short"}, &out); err != nil {
			t.Fatal("existing accounts: the short password must not even be looked at")
		}
	})
	t.Run("bad settings", func(t *testing.T) {
		t.Parallel()
		f := setup(t, storetest.SQLite(t))
		if err := f.svc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "ops@example.org", Password: "short"}, &bytes.Buffer{}); err == nil {
			t.Fatal("a short ADMIN_PASSWORD was accepted")
		}
		if err := f.svc.EnsureAdmin(t.Context(), auth.FirstAdmin{Email: "nobody"}, &bytes.Buffer{}); err == nil {
			t.Fatal("a bad ADMIN_EMAIL was accepted")
		}
	})
}

func join(v any) string {
	items, _ := v.([]any)
	s := make([]string, len(items))
	for i, it := range items {
		s[i], _ = it.(string)
	}
	return strings.Join(s, ",")
}
