package survey

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestImport(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, func(c *Config) { c.ImportBodyLimit = 64 << 10 })
		f.createSurvey("s1", nil)
		const path = "/api/admin/surveys/s1/respondents/import"
		imp := func(body string) response {
			return f.send("POST", path, "staff:s1", "text/csv; charset=utf-8", strings.NewReader(body))
		}

		// A byte order mark (Excel), CRLF line ends, quoted cells and a custom column.
		r := imp("\uFEFFUsername,password,name,cohort\r\nalice,pw-alice,Alice,A\r\nbob,,\"Bob, Jr.\",\r\n\"carol\",pw-carol,,C\r\n")
		expect(t, r, http.StatusOK, "")
		if m := r.json(t); m["created"] != float64(3) || m["updated"] != float64(0) {
			t.Fatalf("result %v", m)
		}
		alice, err := f.svc.Store().Respondent(t.Context(), "s1", "alice")
		if err != nil {
			t.Fatal(err)
		}
		bob, _ := f.svc.Store().Respondent(t.Context(), "s1", "bob")
		if ok, _ := password.Verify(alice.PasswordHash, "pw-alice"); !ok || alice.Name != "Alice" || len(alice.CustomFields) != 1 || alice.CustomFields[0] != (CustomField{Name: "cohort", Value: "A"}) {
			t.Fatalf("alice %+v", alice)
		}
		if bob.PasswordHash != "" || bob.Name != "Bob, Jr." || len(bob.CustomFields) != 0 || len(bob.AuthToken) != 32 {
			t.Fatalf("bob %+v", bob)
		}

		// Existing usernames are updated: tokens kept, empty cells keep values, fields merged.
		r = imp("username,site,cohort,password\nalice,Leeds,,\nbob,York,B,pw-bob\ndave,Hull,D,\n")
		expect(t, r, http.StatusOK, "")
		if m := r.json(t); m["created"] != float64(1) || m["updated"] != float64(2) {
			t.Fatalf("result %v", m)
		}
		alice2, _ := f.svc.Store().Respondent(t.Context(), "s1", "alice")
		bob2, _ := f.svc.Store().Respondent(t.Context(), "s1", "bob")
		if alice2.AuthToken != alice.AuthToken || alice2.ID != alice.ID || alice2.Name != "Alice" || alice2.PasswordHash != alice.PasswordHash {
			t.Fatalf("alice changed: %+v", alice2)
		}
		if want := []CustomField{{Name: "cohort", Value: "A"}, {Name: "site", Value: "Leeds"}}; !sameFields(alice2.CustomFields, want) {
			t.Fatalf("alice fields %v", alice2.CustomFields)
		}
		if ok, _ := password.Verify(bob2.PasswordHash, "pw-bob"); !ok || bob2.AuthToken != bob.AuthToken || !sameFields(bob2.CustomFields, []CustomField{{Name: "site", Value: "York"}, {Name: "cohort", Value: "B"}}) {
			t.Fatalf("bob %+v", bob2)
		}

		t.Run("one bad line writes nothing", func(t *testing.T) {
			before := f.countRespondents("s1")
			var sb strings.Builder
			sb.WriteString("username,name\n")
			for i := range 40 {
				if i == 20 {
					sb.WriteString("\"bad\tname\",x\n") // line 22
					continue
				}
				fmt.Fprintf(&sb, "new%02d,N\n", i)
			}
			r := imp(sb.String())
			expect(t, r, http.StatusBadRequest, "validation_failed")
			errs := r.json(t)["errors"].([]any)
			if len(errs) != 1 {
				t.Fatalf("errors %s", r.body)
			}
			e := errs[0].(map[string]any)
			if e["line"] != float64(22) || e["field"] != "username" {
				t.Fatalf("error %v", e)
			}
			if n := f.countRespondents("s1"); n != before {
				t.Fatalf("%d respondents written from a rejected file", n-before)
			}
		})

		t.Run("every problem is listed", func(t *testing.T) {
			body := "username,password,name,note\n" +
				"ok1,,,\n" + // line 2
				",,,\n" + // 3: no username (a row of empty cells is still a row)
				"ok1,,,\n" + // 4: duplicate of line 2
				"toolong," + strings.Repeat("p", 257) + ",,\n" + // 5
				"x,,\"multi\nline name\",\n" + // 6-7: control characters in a name
				"short,row\n" + // 8: wrong column count
				"y,,," + strings.Repeat("v", MaxCustomFieldValueLength+1) + "\n" + // 9
				strings.Repeat("u", 257) + ",,,\n" // 10
			r := imp(body)
			expect(t, r, http.StatusBadRequest, "validation_failed")
			got := map[string]bool{}
			for _, e := range r.json(t)["errors"].([]any) {
				m := e.(map[string]any)
				got[fmt.Sprintf("%v:%v", m["line"], m["field"])] = true
			}
			for _, want := range []string{"3:username", "4:username", "5:password", "6:name", "8:(row)", "9:note", "10:username"} {
				if !got[want] {
					t.Errorf("missing error %s in %s", want, r.body)
				}
			}
		})

		t.Run("bad files", func(t *testing.T) {
			for name, body := range map[string]string{
				"empty":           "",
				"no username":     "name,password\nA,pw\n",
				"duplicate col":   "username,cohort,cohort\na,1,2\n",
				"blank column":    "username,,x\na,1,2\n",
				"bare quote":      "username\na\"b\n",
				"unclosed quote":  "username\n\"abc\n",
				"invalid utf8":    "username\n\xff\xfe\n",
				"control in name": "username,\"co\x01hort\"\na,1\n",
			} {
				r := imp(body)
				if r.status != http.StatusBadRequest || r.code(t) != "validation_failed" {
					t.Errorf("%s: %d %s", name, r.status, r.body)
				}
			}
			before := f.countRespondents("s1")
			r := imp("username\n")
			expect(t, r, http.StatusOK, "")
			if m := r.json(t); m["created"] != float64(0) || f.countRespondents("s1") != before {
				t.Fatalf("header only: %v", m)
			}
		})

		t.Run("transport", func(t *testing.T) {
			expect(t, f.send("POST", path, "admin", "application/json", strings.NewReader("username\na\n")), http.StatusUnsupportedMediaType, "")
			expect(t, f.send("POST", path, "admin", "", strings.NewReader("username\na\n")), http.StatusUnsupportedMediaType, "")
			big := "username\n" + strings.Repeat("someone-with-a-long-name\n", 3000)
			expect(t, imp(big), http.StatusRequestEntityTooLarge, "body_too_large")
			expect(t, f.send("POST", "/api/admin/surveys/nope/respondents/import", "admin", "text/csv", strings.NewReader("username\na\n")), http.StatusNotFound, "survey_not_found")
			expect(t, f.send("POST", path, "staff:s2", "text/csv", strings.NewReader("username\na\n")), http.StatusNotFound, "survey_not_found")
		})
	})
}

func TestParseImportLines(t *testing.T) {
	t.Parallel()
	rows, err := ParseImport(strings.NewReader("username,note\n\na,\"two\nlines\"\n\nb,B\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Line != 3 || rows[1].Line != 6 || rows[0].CustomFields[0].Value != "two\nlines" {
		t.Fatalf("rows %+v", rows)
	}
	_, err = ParseImport(strings.NewReader("username\n" + strings.Repeat("\n", 2000) + strings.Repeat("dup\n", MaxImportErrors+10)))
	var ie *ImportErrors
	if !errors.As(err, &ie) || len(ie.Errors) != MaxImportErrors || ie.Total != MaxImportErrors+9 {
		t.Fatalf("errors %v", err)
	}
}
