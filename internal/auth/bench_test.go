package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// benchStores runs fn on each database.
func benchStores(b *testing.B, fn func(b *testing.B, db func(testing.TB) *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, func(tb testing.TB) *store.DB { return storetest.SQLite(tb) }) })
	b.Run("postgres", func(b *testing.B) { fn(b, func(tb testing.TB) *store.DB { return storetest.Postgres(tb) }) })
}

func defaultHashes(c *auth.Config) { c.PasswordParams = password.DefaultParams }

// BenchmarkSignIn measures POST /api/signin with the default argon2id costs: a success, a
// wrong password and an unknown account, which must cost the same. Each iteration comes from
// another address so the rate limit stays out of the way (its queries are still counted).
func BenchmarkSignIn(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		f := setup(b, open(b), defaultHashes)
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		for _, tc := range []struct {
			name, email, pw string
			status          int
		}{
			{"success", "ada@example.org", "correct horse", http.StatusOK},
			{"wrong_password", "ada@example.org", "wrong horse", http.StatusUnauthorized},
			{"unknown_account", "nobody@example.org", "correct horse", http.StatusUnauthorized},
		} {
			b.Run(tc.name, func(b *testing.B) {
				body := fmt.Sprintf(`{"email":%q,"password":%q}`, tc.email, tc.pw)
				lat := make([]time.Duration, 0, b.N)
				i := 0
				for b.Loop() {
					i++
					remote := fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)
					start := time.Now()
					w := doReq(b, f.rt, remote, "POST", "/api/signin", body)
					lat = append(lat, time.Since(start))
					if w.Code != tc.status {
						b.Fatalf("status %d: %s", w.Code, w.Body.String())
					}
				}
				reportPercentiles(b, lat)
			})
		}
	})
}

// BenchmarkSignInUnknownVsWrong alternates a wrong password and an unknown account in one
// loop, so load on the machine hits both alike, and reports both medians and their ratio.
func BenchmarkSignInUnknownVsWrong(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		f := setup(b, open(b), defaultHashes)
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		bodies := []string{
			`{"email":"ada@example.org","password":"wrong horse"}`,
			`{"email":"nobody@example.org","password":"wrong horse"}`,
		}
		lat := [2][]time.Duration{}
		i := 0
		for b.Loop() {
			i++
			remote := fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)
			start := time.Now()
			w := doReq(b, f.rt, remote, "POST", "/api/signin", bodies[i%2])
			lat[i%2] = append(lat[i%2], time.Since(start))
			if w.Code != http.StatusUnauthorized {
				b.Fatalf("status %d", w.Code)
			}
		}
		if len(lat[0]) == 0 || len(lat[1]) == 0 {
			return
		}
		wrong, unknown := median(lat[0]), median(lat[1])
		b.ReportMetric(float64(wrong)/float64(time.Millisecond), "wrong-p50-ms")
		b.ReportMetric(float64(unknown)/float64(time.Millisecond), "unknown-p50-ms")
		b.ReportMetric(float64(unknown)/float64(wrong), "unknown/wrong")
	})
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkRefresh measures POST /api/refresh: token check, one store read, signing.
func BenchmarkRefresh(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		f := setup(b, open(b))
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		refresh := f.signIn("ada@example.org", "correct horse")
		b.Run("serial", func(b *testing.B) {
			for b.Loop() {
				if _, err := f.svc.Refresh(context.Background(), refresh); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run("parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := doReq(b, f.rt, "192.0.2.1:1", "POST", "/api/refresh", nil, token(refresh))
					if w.Code != http.StatusOK {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
			reportRate(b)
		})
	})
}

// BenchmarkAuthenticate measures the per-request check of each credential: a respondent's
// access token (signature only), a global account's access token (signature and one store
// read) and a personal access token (hash and one store read).
func BenchmarkAuthenticate(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		f := setup(b, open(b))
		f.createSurvey("demo")
		f.createUser("ada@example.org", "correct horse", []string{"staff"}, "demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		_, global := f.login("ada@example.org", "correct horse")
		w := f.do("POST", "/api/signin/token/tok-user1-0123456789", nil)
		respondent := f.access(decode(b, w)["refreshToken"].(string))
		w = f.do("POST", "/api/admin/user/personal-access-tokens",
			map[string]string{"name": "bench", "expiresAt": f.clock.Now().Add(time.Hour).Format(time.RFC3339)}, token(global))
		pat := decode(b, w)["token"].(string)
		for _, tc := range []struct{ name, tok string }{{"respondent", respondent}, {"global", global}, {"pat", pat}} {
			b.Run(tc.name, func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := f.svc.AuthenticateToken(context.Background(), tc.tok); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRate(b)
			})
		}
	})
}

func reportRate(b *testing.B) {
	if e := b.Elapsed(); e > 0 {
		b.ReportMetric(float64(b.N)/e.Seconds(), "ops/s")
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*95/100]), "p95-ms")
}
