package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		f.createSurvey("demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		const addr, other = "203.0.113.7:5000", "203.0.113.8:5000"
		signIn := func(remote, pw string) *httpTestResult {
			return result(doReq(t, f.rt, remote, "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": pw}))
		}

		for i := 1; i <= 5; i++ {
			if r := signIn(addr, "wrong "+strconv.Itoa(i)); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i, r.status)
			}
			f.clock.Advance(time.Minute)
		}
		r := signIn(addr, "wrong 6")
		if r.status != http.StatusTooManyRequests || r.code != "too_many_attempts" {
			t.Fatalf("6th failure: %d %s", r.status, r.code)
		}
		// The first failure leaves the window 15 minutes after it happened, 10 minutes from now.
		if r.retryAfter != "600" {
			t.Fatalf("Retry-After %q, want 600", r.retryAfter)
		}
		// The right password does not get through either, and is not even checked.
		if r := signIn(addr, "correct horse"); r.status != http.StatusTooManyRequests {
			t.Fatalf("right password while blocked: %d", r.status)
		}
		// Another address, and another account from the same address, are unaffected.
		if r := signIn(other, "correct horse"); r.status != http.StatusOK {
			t.Fatalf("other address: %d", r.status)
		}
		if r := result(doReq(t, f.rt, addr, "POST", "/api/signin", map[string]string{"email": "eve@example.org", "password": "x"})); r.status != http.StatusUnauthorized {
			t.Fatalf("other account: %d", r.status)
		}
		// Blocked attempts do not extend the block.
		f.clock.Advance(10*time.Minute - time.Second)
		if r := signIn(addr, "correct horse"); r.status != http.StatusTooManyRequests || r.retryAfter != "1" {
			t.Fatalf("a second before the window passes: %d %s", r.status, r.retryAfter)
		}
		f.clock.Advance(time.Second)
		if r := signIn(addr, "correct horse"); r.status != http.StatusOK {
			t.Fatalf("after the window: %d", r.status)
		}
		// Success resets the count: five more failures are allowed.
		for i := 1; i <= 5; i++ {
			if r := signIn(addr, "wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d after success: %d", i, r.status)
			}
		}
		if r := signIn(addr, "wrong"); r.status != http.StatusTooManyRequests {
			t.Fatalf("6th failure after success: %d", r.status)
		}

		t.Run("alias and token sign-in", func(t *testing.T) {
			for i := 0; i < 5; i++ {
				w := doReq(t, f.rt, addr, "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "wrong"})
				want(t, w, http.StatusUnauthorized, "invalid_credentials")
				w = doReq(t, f.rt, addr, "POST", "/api/signin/token/tok-guess-000000", nil)
				want(t, w, http.StatusUnauthorized, "invalid_credentials")
			}
			w := doReq(t, f.rt, addr, "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"})
			want(t, w, http.StatusTooManyRequests, "too_many_attempts")
			w = doReq(t, f.rt, addr, "POST", "/api/signin/token/tok-guess-000000", nil)
			want(t, w, http.StatusTooManyRequests, "too_many_attempts")
			w = doReq(t, f.rt, other, "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"})
			want(t, w, http.StatusOK, "")
		})

		t.Run("pruning", func(t *testing.T) {
			count := func() int {
				var n int
				if err := db.QueryRow(t.Context(), "SELECT count(*) FROM signin_failures").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if count() == 0 {
				t.Fatal("no failures recorded")
			}
			f.clock.Advance(auth.DefaultFailureWindow)
			if err := f.svc.Prune(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := count(); n != 0 {
				t.Fatalf("%d failures left after pruning", n)
			}
		})
	})
}

// TestRateLimitParallel: a burst of parallel guesses gets no more than the limit through.
func TestRateLimitParallel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			statuses = map[int]int{}
		)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := doReq(t, f.rt, "203.0.113.9:1", "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": "guess"})
				mu.Lock()
				statuses[w.Code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[http.StatusUnauthorized] > auth.DefaultMaxFailures || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 20 {
			t.Fatalf("statuses %v: more than %d guesses were checked", statuses, auth.DefaultMaxFailures)
		}
	})
}

// TestRateLimitSharedAcrossReplicas: two services (two API replicas) on one database share
// the count. On PostgreSQL each has its own connection pool.
func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, a, b *fixture) {
		a.createUser("ada@example.org", "correct horse", []string{"admin"})
		for i := 0; i < 5; i++ {
			f := []*fixture{a, b}[i%2]
			w := doReq(t, f.rt, "203.0.113.10:1", "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": "wrong"})
			want(t, w, http.StatusUnauthorized, "invalid_credentials")
		}
		for _, f := range []*fixture{a, b} {
			w := doReq(t, f.rt, "203.0.113.10:1", "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": "correct horse"})
			want(t, w, http.StatusTooManyRequests, "too_many_attempts")
		}
		_, err := b.svc.SignIn(context.Background(), "ada@example.org", "correct horse", "203.0.113.10")
		var rl *auth.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != auth.DefaultFailureWindow {
			t.Fatalf("SignIn: %v", err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		db := storetest.SQLite(t)
		check(t, setup(t, db), setup(t, db))
	})
	t.Run("postgres", func(t *testing.T) {
		u := storetest.PostgresURL(t)
		open := func() *store.DB {
			db, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			return db
		}
		check(t, setup(t, open()), setup(t, open()))
	})
}

type httpTestResult struct {
	status     int
	code       string
	retryAfter string
}

func result(w interface {
	Result() *http.Response
}) *httpTestResult {
	resp := w.Result()
	defer resp.Body.Close()
	var p struct {
		Code string `json:"code"`
	}
	_ = jsonDecode(resp, &p)
	return &httpTestResult{status: resp.StatusCode, code: p.Code, retryAfter: resp.Header.Get("Retry-After")}
}
