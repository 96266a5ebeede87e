package auth_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestSignInBusy: while the process's hashing bound is full, every path that checks or sets
// a password (sign-in by e-mail, for known and unknown accounts, by alias, creating and
// changing a global account) answers 503 busy with Retry-After after a short wait, and a
// sign-in refused that way is not counted as a failure. Regression for issue 11: nothing
// bounded how many argon2id hashes ran at once, and a flood of sign-ins with invented e-mails
// took the API to 3.7 GiB.
func TestSignInBusy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		hasher := password.NewHasher(password.HasherConfig{Slots: 1, SlotMemory: cheap.Memory,
			MaxWait: 20 * time.Millisecond, RetryAfter: 3 * time.Second})
		f := setup(t, db, func(c *auth.Config) { c.Hasher = hasher; c.MaxFailures = 1 })
		admin := f.createUser("ada@example.org", "correct horse", []string{"admin"})
		f.createSurvey("demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		_, access := f.login("ada@example.org", "correct horse")

		release, err := hasher.Acquire(t.Context(), cheap.Memory)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, method, path string
			body               any
			headers            []header
		}{
			{"sign-in", "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": "wrong"}, nil},
			{"unknown account", "POST", "/api/signin", map[string]string{"email": "nobody@example.org", "password": "x"}, nil},
			{"alias", "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "wrong"}, nil},
			{"unknown alias", "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "nobody", "password": "x"}, nil},
			{"create user", "POST", "/api/admin/users", map[string]any{"email": "bob@example.org", "password": "long enough", "roles": []string{"staff"}}, []header{token(access)}},
			{"change password", "PATCH", "/api/admin/users/" + admin.ID, map[string]any{"password": "another password"}, []header{token(access)}},
		} {
			// Twice each: with MaxFailures 1 a counted failure would make the second a 429.
			for range 2 {
				r := result(doReq(t, f.rt, "198.51.100.20:1", tc.method, tc.path, tc.body, tc.headers...))
				if r.status != http.StatusServiceUnavailable || r.code != "busy" || r.retryAfter != "3" {
					t.Fatalf("%s with the bound full: %d %s Retry-After %q, want 503 busy 3", tc.name, r.status, r.code, r.retryAfter)
				}
			}
		}
		var n int
		if err := db.QueryRow(t.Context(), "SELECT count(*) FROM signin_failures").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d failures recorded for sign-ins whose password was never checked", n)
		}
		release()
		f.signIn("ada@example.org", "correct horse")
		w := doReq(t, f.rt, "198.51.100.20:1", "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"})
		want(t, w, http.StatusOK, "")
	})
}

// TestSignInPendingLimit: beyond MaxPending sign-ins waiting to check a password, a sign-in
// is refused at once, before the rate limit or the account lookup touch the store.
func TestSignInPendingLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		hasher := password.NewHasher(password.HasherConfig{Slots: 1, SlotMemory: cheap.Memory, MaxPending: 1})
		f := setup(t, db, func(c *auth.Config) { c.Hasher = hasher })
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		leave, err := hasher.Admit()
		if err != nil {
			t.Fatal(err)
		}
		r := result(doReq(t, f.rt, "198.51.100.30:1", "POST", "/api/signin", map[string]string{"email": "ada@example.org", "password": "correct horse"}))
		if r.status != http.StatusServiceUnavailable || r.code != "busy" || r.retryAfter == "" {
			t.Fatalf("with no place left: %d %s %q", r.status, r.code, r.retryAfter)
		}
		var n int
		if err := db.QueryRow(t.Context(), "SELECT count(*) FROM signin_failures").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d rate-limit rows written by a refused sign-in", n)
		}
		leave()
		f.signIn("ada@example.org", "correct horse")
	})
}

// TestAddressLimitAcrossAccounts: failures from one client address are counted across all
// accounts, so guessing at many accounts (or invented ones) from one address is limited, and
// signing in to an account one holds does not reset that count. Regression for issue 11: the
// limit was keyed by account and address only, so every new e-mail passed.
func TestAddressLimitAcrossAccounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, func(c *auth.Config) { c.MaxAddressFailures = 4 })
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		f.createSurvey("demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		const addr, other = "203.0.113.50:1", "203.0.113.51:1"
		signIn := func(remote, email, pw string) *httpTestResult {
			return result(doReq(t, f.rt, remote, "POST", "/api/signin", map[string]string{"email": email, "password": pw}))
		}
		for i := range 3 {
			if r := signIn(addr, "invented"+strconv.Itoa(i)+"@example.org", "x"); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i, r.status)
			}
		}
		// A success in between clears its own account's count, not the address's.
		if r := signIn(addr, "ada@example.org", "correct horse"); r.status != http.StatusOK {
			t.Fatalf("right password: %d", r.status)
		}
		w := doReq(t, f.rt, addr, "POST", "/api/signin/token/tok-guess-000000", nil)
		want(t, w, http.StatusUnauthorized, "invalid_credentials")
		// Four failures on four accounts: the address is blocked for every account and every
		// sign-in method, the right password included.
		for _, r := range []*httpTestResult{
			signIn(addr, "invented9@example.org", "x"),
			signIn(addr, "ada@example.org", "correct horse"),
			result(doReq(t, f.rt, addr, "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"})),
			result(doReq(t, f.rt, addr, "POST", "/api/signin/token/tok-user1-0123456789", nil)),
		} {
			if r.status != http.StatusTooManyRequests || r.code != "too_many_attempts" || r.retryAfter == "" {
				t.Fatalf("after 4 failures from the address: %d %s %q", r.status, r.code, r.retryAfter)
			}
		}
		if r := signIn(other, "ada@example.org", "correct horse"); r.status != http.StatusOK {
			t.Fatalf("another address: %d", r.status)
		}
		f.clock.Advance(auth.DefaultFailureWindow)
		if r := signIn(addr, "ada@example.org", "correct horse"); r.status != http.StatusOK {
			t.Fatalf("after the window: %d", r.status)
		}
	})
}

// TestSignInUpgradedHash: a respondent whose imported hash the background pass wrapped
// (password.Upgrade) signs in with the original password, and its hash is not re-hashed.
func TestSignInUpgradedHash(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		full := password.Params{Memory: 128, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}
		f := setup(t, db, func(c *auth.Config) { c.PasswordParams = full })
		f.createSurvey("demo")
		id := f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		var imported string
		if err := db.QueryRow(t.Context(), "SELECT password_hash FROM respondents WHERE id = $1", id).Scan(&imported); err != nil {
			t.Fatal(err)
		}
		up, err := password.Upgrade(imported, full)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(t.Context(), "UPDATE respondents SET password_hash = $1 WHERE id = $2", up, id); err != nil {
			t.Fatal(err)
		}
		w := doReq(t, f.rt, "203.0.113.60:1", "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "wrong"})
		want(t, w, http.StatusUnauthorized, "invalid_credentials")
		w = doReq(t, f.rt, "203.0.113.60:1", "POST", "/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"})
		want(t, w, http.StatusOK, "")
		var after string
		if err := db.QueryRow(context.Background(), "SELECT password_hash FROM respondents WHERE id = $1", id).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after != up {
			t.Fatalf("the upgraded hash was replaced at sign-in: %q", after)
		}
	})
}
