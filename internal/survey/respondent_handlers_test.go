package survey

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)

func TestRespondents(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("s1", map[string]any{"authUrlTokenLength": 20})
		f.createSurvey("s2", nil)
		const base = "/api/admin/surveys/s1/respondents"

		r := f.do("POST", base, "staff:s1", map[string]any{
			"username": "alice", "password": "correct horse", "name": "Alice",
			"customFields": []map[string]string{{"name": "cohort", "value": "A"}},
		})
		expect(t, r, http.StatusCreated, "")
		alice := r.json(t)
		token := alice["authToken"].(string)
		if len(token) != 20 || !tokenRE.MatchString(token) {
			t.Fatalf("auth token %q", token)
		}
		if alice["authUrl"] != testAppURL+"/s1?auth="+token || alice["shortAuthUrl"] != testAppURL+"/a/"+token {
			t.Fatalf("auth URLs %v %v", alice["authUrl"], alice["shortAuthUrl"])
		}
		if alice["name"] != "Alice" || alice["passwordSet"] != true || alice["userId"] == "" {
			t.Fatalf("created %v", alice)
		}
		if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "correct horse") {
			t.Fatal("the password or its hash is shown")
		}
		stored, err := f.svc.Store().Respondent(t.Context(), "s1", "alice")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := password.Verify(stored.PasswordHash, "correct horse"); !ok || err != nil {
			t.Fatalf("stored hash does not verify: %v", err)
		}

		t.Run("create errors", func(t *testing.T) {
			expect(t, f.do("POST", base, "admin", map[string]any{"username": "alice"}), http.StatusConflict, "respondent_exists")
			for _, body := range []map[string]any{
				{},
				{"username": " padded"},
				{"username": "tab\there"},
				{"username": strings.Repeat("u", 257)},
				{"username": "bob", "password": strings.Repeat("p", 257)},
				{"username": "bob", "name": strings.Repeat("n", 513)},
				{"username": "bob", "customFields": []map[string]string{{"name": "", "value": "x"}}},
				{"username": "bob", "customFields": []map[string]string{{"name": "a", "value": "1"}, {"name": "a", "value": "2"}}},
				{"username": "bob", "customFields": []map[string]string{{"name": "a", "value": "nul\x00"}}},
			} {
				expect(t, f.do("POST", base, "admin", body), http.StatusBadRequest, "validation_failed")
			}
			expect(t, f.do("POST", "/api/admin/surveys/nope/respondents", "admin", map[string]any{"username": "bob"}), http.StatusNotFound, "survey_not_found")
			expect(t, f.do("POST", base, "staff:s2", map[string]any{"username": "bob"}), http.StatusNotFound, "survey_not_found")
			// The same username in another survey is another account.
			expect(t, f.do("POST", "/api/admin/surveys/s2/respondents", "admin", map[string]any{"username": "alice"}), http.StatusCreated, "")
		})

		t.Run("show", func(t *testing.T) {
			r := f.do("GET", base+"/alice", "staff:s1", nil)
			expect(t, r, http.StatusOK, "")
			if m := r.json(t); m["authToken"] != token || m["customFields"].([]any)[0].(map[string]any)["value"] != "A" {
				t.Fatalf("shown %v", m)
			}
			expect(t, f.do("GET", base+"/nobody", "admin", nil), http.StatusNotFound, "respondent_not_found")
			expect(t, f.do("GET", "/api/admin/surveys/nope/respondents/alice", "admin", nil), http.StatusNotFound, "survey_not_found")
			// Usernames with reserved URL characters work when escaped.
			expect(t, f.do("POST", base, "admin", map[string]any{"username": "a/b?c#d é"}), http.StatusCreated, "")
			expect(t, f.do("GET", base+"/"+url.PathEscape("a/b?c#d é"), "admin", nil), http.StatusOK, "")
		})

		t.Run("update", func(t *testing.T) {
			insertRefreshToken(t, db, "jti-alice", alice["userId"].(string))
			r := f.do("PATCH", base+"/alice", "staff:s1", map[string]any{
				"name": "Alice B", "password": "new password", "customFields": []map[string]string{{"name": "site", "value": "Leeds"}},
			})
			expect(t, r, http.StatusOK, "")
			m := r.json(t)
			if m["name"] != "Alice B" || m["authToken"] != token || len(m["customFields"].([]any)) != 1 {
				t.Fatalf("updated %v", m)
			}
			stored, _ := f.svc.Store().Respondent(t.Context(), "s1", "alice")
			if ok, _ := password.Verify(stored.PasswordHash, "new password"); !ok {
				t.Fatal("password not changed")
			}
			// Setting the password signs the respondent out everywhere (issue 11: the refresh
			// token kept working after a password change).
			if !refreshTokenRevoked(t, db, "jti-alice") {
				t.Fatal("changing the password did not revoke the refresh token")
			}
			insertRefreshToken(t, db, "jti-alice-2", alice["userId"].(string))
			expect(t, f.do("PATCH", base+"/alice", "staff:s1", map[string]any{"name": "Alice C"}), http.StatusOK, "")
			if refreshTokenRevoked(t, db, "jti-alice-2") {
				t.Fatal("an update that neither disables nor sets the password revoked the refresh token")
			}
			expect(t, f.do("PATCH", base+"/alice", "staff:s1", map[string]any{"password": nil}), http.StatusOK, "")
			if !refreshTokenRevoked(t, db, "jti-alice-2") {
				t.Fatal("removing the password did not revoke the refresh token")
			}
			insertRefreshToken(t, db, "jti-alice-3", alice["userId"].(string))

			r = f.do("PATCH", base+"/alice", "admin", map[string]any{"disabled": true, "password": nil})
			expect(t, r, http.StatusOK, "")
			if m := r.json(t); m["disabled"] != true || m["passwordSet"] != false {
				t.Fatalf("disabled %v", m)
			}
			if !refreshTokenRevoked(t, db, "jti-alice-3") {
				t.Fatal("disabling did not revoke the refresh token")
			}
			expect(t, f.do("PATCH", base+"/alice", "admin", map[string]any{"disabled": false}), http.StatusOK, "")

			for _, body := range []map[string]any{
				{"username": "renamed"}, {"disabled": "yes"}, {"password": 5}, {"customFields": "x"}, {"name": "line\nbreak"},
			} {
				expect(t, f.do("PATCH", base+"/alice", "admin", body), http.StatusBadRequest, "validation_failed")
			}
			expect(t, f.do("PATCH", base+"/nobody", "admin", map[string]any{"name": "x"}), http.StatusNotFound, "respondent_not_found")
		})

		t.Run("delete", func(t *testing.T) {
			expect(t, f.do("POST", base, "admin", map[string]any{"username": "carol"}), http.StatusCreated, "")
			carol, _ := f.svc.Store().Respondent(t.Context(), "s1", "carol")
			insertRefreshToken(t, db, "jti-carol", carol.ID)
			expect(t, f.do("DELETE", base+"/carol", "staff:s1", nil), http.StatusNoContent, "")
			if !refreshTokenRevoked(t, db, "jti-carol") {
				t.Fatal("deleting did not revoke the refresh token")
			}
			expect(t, f.do("DELETE", base+"/carol", "admin", nil), http.StatusNotFound, "respondent_not_found")
			expect(t, f.do("GET", base+"/carol", "admin", nil), http.StatusNotFound, "respondent_not_found")
		})
	})
}

// TestRespondentPagesWhileAdding walks the list in small pages while respondents are added
// between pages: every respondent present at the start is seen exactly once.
func TestRespondentPagesWhileAdding(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("s1", nil)
		const base = "/api/admin/surveys/s1/respondents"
		want := map[string]bool{}
		for i := range 23 {
			u := fmt.Sprintf("user%02d", i)
			expect(t, f.do("POST", base, "admin", map[string]any{"username": u}), http.StatusCreated, "")
			want[u] = true
		}
		// A batch created in one microsecond (an import) pages by id.
		expect(t, f.send("POST", base+"/import", "admin", "text/csv", strings.NewReader("username\nbatch1\nbatch2\nbatch3\nbatch4\nbatch5\n")), http.StatusOK, "")
		for i := 1; i <= 5; i++ {
			want[fmt.Sprintf("batch%d", i)] = true
		}

		seen := map[string]int{}
		cursor, added := "", 0
		for pages := 0; ; pages++ {
			if pages > 50 {
				t.Fatal("pagination does not end")
			}
			q := "?limit=4"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := f.do("GET", base+q, "admin", nil)
			expect(t, r, http.StatusOK, "")
			m := r.json(t)
			for _, it := range m["items"].([]any) {
				seen[it.(map[string]any)["username"].(string)]++
			}
			if len(m["items"].([]any)) > 4 {
				t.Fatalf("page of %d", len(m["items"].([]any)))
			}
			next, _ := m["nextCursor"].(string)
			if next == "" {
				if m["nextCursor"] != nil {
					t.Fatalf("nextCursor %v", m["nextCursor"])
				}
				break
			}
			cursor = next
			added++
			expect(t, f.do("POST", base, "admin", map[string]any{"username": fmt.Sprintf("late%02d", added)}), http.StatusCreated, "")
		}
		for u := range want {
			if seen[u] != 1 {
				t.Errorf("%s seen %d times", u, seen[u])
			}
		}
		for u, n := range seen {
			if n != 1 {
				t.Errorf("%s seen %d times", u, n)
			}
		}

		expect(t, f.do("GET", base+"?cursor=not-a-cursor!", "admin", nil), http.StatusBadRequest, "invalid_cursor")
		expect(t, f.do("GET", base+"?cursor=Zm9v", "admin", nil), http.StatusBadRequest, "invalid_cursor")
		expect(t, f.do("GET", base+"?limit=0", "admin", nil), http.StatusBadRequest, "validation_failed")
		expect(t, f.do("GET", base+"?limit=ten", "admin", nil), http.StatusBadRequest, "validation_failed")
		r := f.do("GET", base+"?limit=5000", "admin", nil)
		expect(t, r, http.StatusOK, "")
		if n := len(r.json(t)["items"].([]any)); n != len(seen) {
			t.Fatalf("limit above the maximum returned %d of %d", n, len(seen))
		}
		r = f.do("GET", base, "admin", nil)
		if n := len(r.json(t)["items"].([]any)); n != min(len(seen), DefaultPageSize) {
			t.Fatalf("default page of %d", n)
		}
		expect(t, f.do("GET", "/api/admin/surveys/nope/respondents", "admin", nil), http.StatusNotFound, "survey_not_found")
	})
}

func TestRespondentExport(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("s1", nil)
		var sb strings.Builder
		sb.WriteString("username,name\n")
		const n = exportPageRows + 7 // more than one page
		for i := range n {
			fmt.Fprintf(&sb, "user%04d,\"Name, %d\"\n", i, i)
		}
		expect(t, f.send("POST", "/api/admin/surveys/s1/respondents/import", "admin", "text/csv", strings.NewReader(sb.String())), http.StatusOK, "")

		r := f.do("GET", "/api/admin/surveys/s1/respondents/export", "staff:s1", nil)
		expect(t, r, http.StatusOK, "")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("Content-Type %q", ct)
		}
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recs[0], ",") != "userId,username,authToken,authUrl,shortAuthUrl" {
			t.Fatalf("header %v", recs[0])
		}
		if len(recs) != n+1 {
			t.Fatalf("%d rows, want %d", len(recs)-1, n)
		}
		users := map[string]bool{}
		for _, rec := range recs[1:] {
			users[rec[1]] = true
			if rec[3] != testAppURL+"/s1?auth="+rec[2] || rec[4] != testAppURL+"/a/"+rec[2] || !strings.HasPrefix(rec[0], "res_") {
				t.Fatalf("row %v", rec)
			}
		}
		if len(users) != n {
			t.Fatalf("%d distinct users", len(users))
		}
		expect(t, f.do("GET", "/api/admin/surveys/nope/respondents/export", "admin", nil), http.StatusNotFound, "survey_not_found")
		expect(t, f.do("GET", "/api/admin/surveys/s1/respondents/export", "staff:s2", nil), http.StatusNotFound, "survey_not_found")
	})
}

func TestNewAuthToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	counts := map[rune]int{}
	for _, n := range []int{MinAuthURLTokenLength, 32, MaxAuthURLTokenLength} {
		for range 200 {
			tok, err := NewAuthToken(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) != n || !tokenRE.MatchString(tok) || seen[tok] {
				t.Fatalf("token %q", tok)
			}
			seen[tok] = true
			for _, c := range tok {
				counts[c]++
			}
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct symbols used", len(counts))
	}
}
