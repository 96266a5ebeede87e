package survey

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestSurveyAdministration(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)

		created := f.createSurvey("demo-survey", map[string]any{
			"redirect": map[string]any{"url": "https://example.org/done?pid={identifier}", "identifier": "username"},
		})
		if created["jwtSecretSet"] != true || created["authUrlTokenLength"] != float64(32) || created["allowGenUsers"] != true {
			t.Fatalf("created %v", created)
		}
		if _, ok := created["jwtSecret"]; ok {
			t.Fatalf("the secret is shown: %v", created)
		}
		if rd := created["redirect"].(map[string]any); rd["identifier"] != "username" {
			t.Fatalf("redirect %v", rd)
		}

		t.Run("duplicate id", func(t *testing.T) {
			r := f.do("POST", "/api/admin/surveys", "admin", map[string]any{"id": "demo-survey", "name": "again"})
			expect(t, r, http.StatusConflict, "survey_exists")
		})

		t.Run("validation", func(t *testing.T) {
			cases := map[string]map[string]any{
				"id":                  {"id": "-bad"},
				"id too long":         {"id": string(bytes.Repeat([]byte("a"), 65))},
				"id with slash":       {"id": "a/b"},
				"jwtSecret":           {"id": "s1", "jwtSecret": "short"},
				"redirect.url":        {"id": "s1", "redirect": map[string]any{"url": "/relative"}},
				"redirect.url scheme": {"id": "s1", "redirect": map[string]any{"url": "javascript:alert(1)"}},
				"redirect.identifier": {"id": "s1", "redirect": map[string]any{"url": "https://x.org/?p={identifier}", "identifier": "bad\nname"}},
				"authUrlTokenLength":  {"id": "s1", "authUrlTokenLength": 11},
				"authUrlTokenLength2": {"id": "s1", "authUrlTokenLength": 129},
			}
			for name, body := range cases {
				r := f.do("POST", "/api/admin/surveys", "admin", body)
				expect(t, r, http.StatusBadRequest, "validation_failed")
				errs, _ := r.json(t)["errors"].([]any)
				if len(errs) == 0 {
					t.Errorf("%s: no field errors: %s", name, r.body)
				}
			}
			expect(t, f.do("POST", "/api/admin/surveys", "admin", `{"id":`), http.StatusBadRequest, "malformed_json")
			r := f.send("POST", "/api/admin/surveys", "admin", "text/plain", bytes.NewReader([]byte(`{}`)))
			expect(t, r, http.StatusUnsupportedMediaType, "")
		})

		t.Run("defaults", func(t *testing.T) {
			r := f.do("POST", "/api/admin/surveys", "admin", map[string]any{"id": "plain_1"})
			expect(t, r, http.StatusCreated, "")
			m := r.json(t)
			if m["name"] != "plain_1" || m["jwtSecretSet"] != false || m["redirect"] != nil || m["allowGenUsers"] != false {
				t.Fatalf("defaults %v", m)
			}
		})

		t.Run("access", func(t *testing.T) {
			f.createSurvey("other", nil)
			expect(t, f.do("POST", "/api/admin/surveys", "staff:demo-survey", map[string]any{"id": "x1"}), http.StatusForbidden, "")
			expect(t, f.do("POST", "/api/admin/surveys", "", map[string]any{"id": "x1"}), http.StatusUnauthorized, "")
			expect(t, f.do("GET", "/api/admin/surveys", "respondent:demo-survey", nil), http.StatusForbidden, "")
			expect(t, f.do("GET", "/api/admin/surveys/other", "staff:demo-survey", nil), http.StatusNotFound, "survey_not_found")
			expect(t, f.do("GET", "/api/admin/surveys/demo-survey", "staff:demo-survey", nil), http.StatusOK, "")

			r := f.do("GET", "/api/admin/surveys", "staff:demo-survey,missing", nil)
			expect(t, r, http.StatusOK, "")
			items := r.json(t)["items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["id"] != "demo-survey" {
				t.Fatalf("staff sees %s", r.body)
			}
			r = f.do("GET", "/api/admin/surveys", "admin", nil)
			if n := len(r.json(t)["items"].([]any)); n != 3 {
				t.Fatalf("admin sees %d surveys: %s", n, r.body)
			}
			r = f.do("GET", "/api/admin/surveys", "staff", nil)
			if n := len(r.json(t)["items"].([]any)); n != 0 {
				t.Fatalf("unassigned staff sees %s", r.body)
			}
		})

		t.Run("patch", func(t *testing.T) {
			r := f.do("PATCH", "/api/admin/surveys/demo-survey", "staff:demo-survey", map[string]any{"jwtSecret": nil, "name": "Renamed"})
			expect(t, r, http.StatusOK, "")
			if m := r.json(t); m["jwtSecretSet"] != false || m["name"] != "Renamed" || m["redirect"] == nil {
				t.Fatalf("after clearing: %v", m)
			}
			sv, err := f.svc.Store().SurveyWithSecret(t.Context(), "demo-survey")
			if err != nil || sv.JWTSecret != "" || sv.JWTSecretSet {
				t.Fatalf("stored secret %q, %v", sv.JWTSecret, err)
			}
			newSecret := "another-secret-that-is-long-enough-000"
			r = f.do("PATCH", "/api/admin/surveys/demo-survey", "admin", map[string]any{
				"jwtSecret": newSecret, "redirect": nil, "authUrlTokenLength": 16, "allowGenUsers": false,
			})
			expect(t, r, http.StatusOK, "")
			if bytes.Contains(r.body, []byte(newSecret)) {
				t.Fatal("the secret is echoed")
			}
			if m := r.json(t); m["jwtSecretSet"] != true || m["redirect"] != nil || m["authUrlTokenLength"] != float64(16) || m["allowGenUsers"] != false {
				t.Fatalf("after setting: %v", m)
			}
			r = f.do("PATCH", "/api/admin/surveys/demo-survey", "admin", map[string]any{"redirect": map[string]any{"url": "https://x.org/d?c={identifier}", "identifier": "cohort"}})
			expect(t, r, http.StatusOK, "")
			if rd := r.json(t)["redirect"].(map[string]any); rd["identifier"] != "cohort" {
				t.Fatalf("redirect %v", rd)
			}

			for _, body := range []map[string]any{
				{"id": "renamed"}, {"jwtSecret": "short"}, {"authUrlTokenLength": 4}, {"allowGenUsers": "yes"},
				{"name": ""}, {"redirect": map[string]any{"url": "ftp://x.org"}},
			} {
				expect(t, f.do("PATCH", "/api/admin/surveys/demo-survey", "admin", body), http.StatusBadRequest, "validation_failed")
			}
			sv, _ = f.svc.Store().SurveyWithSecret(t.Context(), "demo-survey")
			if sv.JWTSecret != newSecret || sv.AuthURLTokenLength != 16 {
				t.Fatalf("a rejected PATCH changed the survey: %+v", sv)
			}
			expect(t, f.do("PATCH", "/api/admin/surveys/nope", "admin", map[string]any{"name": "x"}), http.StatusNotFound, "survey_not_found")
			expect(t, f.do("PATCH", "/api/admin/surveys/other", "staff:demo-survey", map[string]any{"name": "x"}), http.StatusNotFound, "survey_not_found")
		})

		t.Run("delete", func(t *testing.T) {
			r := f.do("POST", "/api/admin/surveys/demo-survey/respondents", "admin", map[string]any{"username": "r1"})
			expect(t, r, http.StatusCreated, "")
			userID := r.json(t)["userId"].(string)
			insertRefreshToken(t, db, "jti-del", userID)

			expect(t, f.do("DELETE", "/api/admin/surveys/demo-survey", "staff:demo-survey", nil), http.StatusForbidden, "forbidden")
			expect(t, f.do("DELETE", "/api/admin/surveys/other", "staff:demo-survey", nil), http.StatusNotFound, "survey_not_found")
			expect(t, f.do("DELETE", "/api/admin/surveys/demo-survey", "admin", nil), http.StatusNoContent, "")
			expect(t, f.do("GET", "/api/admin/surveys/demo-survey", "admin", nil), http.StatusNotFound, "survey_not_found")
			expect(t, f.do("DELETE", "/api/admin/surveys/demo-survey", "admin", nil), http.StatusNotFound, "survey_not_found")
			if n := f.countRespondents("demo-survey"); n != 0 {
				t.Fatalf("%d respondents left", n)
			}
			if !refreshTokenRevoked(t, db, "jti-del") {
				t.Fatal("the deleted survey's respondent keeps its refresh token")
			}
		})
	})
}

// insertRefreshToken records a live refresh token as the auth package would.
func insertRefreshToken(t *testing.T, db *store.DB, jti, userID string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO refresh_tokens (jti, user_id, user_kind, created_at, expires_at)
		VALUES ($1, $2, 'respondent', 1, 9999999999999999)`, jti, userID); err != nil {
		t.Fatal(err)
	}
}

func refreshTokenRevoked(t *testing.T, db *store.DB, jti string) bool {
	t.Helper()
	var revoked *int64
	if err := db.QueryRow(context.Background(), `SELECT revoked_at FROM refresh_tokens WHERE jti = $1`, jti).Scan(&revoked); err != nil {
		t.Fatal(err)
	}
	return revoked != nil
}
