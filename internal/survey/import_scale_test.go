package survey

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// csvRows builds an import file of rows from to to-1, with a password in every pwEvery-th
// row (none when 0).
func csvRows(from, to, pwEvery int) []byte {
	var b bytes.Buffer
	b.WriteString("username,password,name,cohort,site\n")
	for i := from; i < to; i++ {
		pw := ""
		if pwEvery > 0 && i%pwEvery == 0 {
			pw = fmt.Sprintf("pw-%07d", i)
		}
		fmt.Fprintf(&b, "participant-%07d,%s,Participant %d,C%d,site-%d\n", i, pw, i, i%10, i%7)
	}
	return b.Bytes()
}

// TestImport100000Rows imports 100,000 rows through the HTTP route on PostgreSQL, then a file
// overlapping its end (updates and creations). Every tenth row has a password, hashed at test
// costs, which keeps the test quick under -race; BenchmarkImport100k measures whole files of
// passwords at the production costs.
func TestImport100000Rows(t *testing.T) {
	t.Parallel()
	const n = 100_000
	db := storetest.Postgres(t)
	f := setup(t, db)
	f.createSurvey("big", nil)
	body := csvRows(0, n, 10)

	start := time.Now()
	r := f.send("POST", "/api/admin/surveys/big/respondents/import", "admin", "text/csv", bytes.NewReader(body))
	expect(t, r, http.StatusOK, "")
	if m := r.json(t); m["created"] != float64(n) || m["updated"] != float64(0) {
		t.Fatalf("result %v", m)
	}
	t.Logf("imported %d new rows (%.1f MiB) in %s", n, float64(len(body))/(1<<20), time.Since(start).Round(time.Millisecond))
	if got := f.countRespondents("big"); got != n {
		t.Fatalf("%d rows stored", got)
	}
	before, err := f.svc.Store().Respondent(t.Context(), "big", "participant-0094320")
	if err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	r = f.send("POST", "/api/admin/surveys/big/respondents/import", "admin", "text/csv", bytes.NewReader(csvRows(n-10_000, n+10_000, 0)))
	expect(t, r, http.StatusOK, "")
	if m := r.json(t); m["created"] != float64(10_000) || m["updated"] != float64(10_000) {
		t.Fatalf("result %v", m)
	}
	t.Logf("imported 10,000 new and 10,000 existing rows in %s", time.Since(start).Round(time.Millisecond))
	after, _ := f.svc.Store().Respondent(t.Context(), "big", "participant-0094320")
	if before.PasswordHash == "" || after.AuthToken != before.AuthToken || after.ID != before.ID ||
		after.PasswordHash != before.PasswordHash || len(after.CustomFields) != 2 {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

// BenchmarkImport100k measures a 100,000-row import (parse, check, hash, write) on each
// database with the production hashing costs:
//
//	go test ./internal/survey -run '^$' -bench Import100k -benchtime 1x
func BenchmarkImport100k(b *testing.B) {
	const n = 100_000
	for _, withPasswords := range []bool{false, true} {
		for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
			name := fmt.Sprintf("%s/passwords=%v", dialect, withPasswords)
			b.Run(name, func(b *testing.B) {
				pwEvery := 0
				if withPasswords {
					pwEvery = 1
				}
				body := csvRows(0, n, pwEvery)
				b.SetBytes(int64(len(body)))
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					var db *store.DB
					if dialect == store.Postgres {
						db = storetest.Postgres(b)
					} else {
						db = storetest.SQLite(b)
					}
					svc, err := New(Config{DB: db, Secrets: testKeyring(b), SurveyAppURL: testAppURL})
					if err != nil {
						b.Fatal(err)
					}
					sv := Survey{ID: "big", Name: "big", AuthURLTokenLength: 32, CreatedAt: time.Now(), UpdatedAt: time.Now()}
					if err := svc.Store().CreateSurvey(b.Context(), sv); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					rows, err := ParseImport(bytes.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					res, err := svc.Import(b.Context(), &sv, rows)
					if err != nil || res.Created != n {
						b.Fatalf("%+v %v", res, err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkImportPasswordHash is the cost of one imported password's hash, against the
// default costs of passwords set one at a time.
func BenchmarkImportPasswordHash(b *testing.B) {
	for name, p := range map[string]password.Params{"import": DefaultImportPasswordParams, "default": password.DefaultParams} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := password.HashWith(p, "imported password"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
