package console

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// TestAPICallsCarryTheBrowsersAddress: the console's in-process API calls come from the
// browser's address, so the API's per-address sign-in limits count the browser, not the
// console; and the API's refusal reaches the page.
func TestAPICallsCarryTheBrowsersAddress(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		peers []string
	)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers = append(peers, r.Method+" "+r.URL.Path+" from "+r.RemoteAddr)
		mu.Unlock()
		httpapi.WriteError(w, r, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.TooManyRequests("too_many_attempts", "slow down", time.Minute))
	})
	c, err := New(Config{API: api, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.Register(rt)
	req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader(url.Values{"email": {"a@b.c"}, "password": {"pw"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "198.51.100.7:41234"
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "Too many failed sign-ins. Try again in 60 seconds.") {
		t.Fatalf("sign-in page: %d\n%s", rec.Code, rec.Body.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 1 || peers[0] != "POST /api/signin from 198.51.100.7:41234" {
		t.Fatalf("API calls: %v", peers)
	}
}

// TestSignInRefusalsSayWhy: with the real auth service behind it, the sign-in page tells a
// wrong password (401), a full password-hashing bound (the API's 503 busy: "try again in N
// seconds" from its Retry-After) and too many failed sign-ins (429) apart, and passes
// Retry-After on.
func TestSignInRefusalsSayWhy(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// One pending place: a sign-in holding it leaves none, so the next is refused at once.
	hasher := password.NewHasher(password.HasherConfig{Slots: 1, MaxPending: 1, RetryAfter: 7 * time.Second})
	db := storetest.SQLite(t)
	svc, err := auth.New(db, auth.Config{
		Respondents:    survey.NewStore(db, nil),
		Secret:         []byte(strings.Repeat("s", 40)),
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		MaxFailures:    1,
		Hasher:         hasher,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	apiRouter := httpapi.NewRouter(svc, logger)
	svc.Register(apiRouter)
	c, err := New(Config{API: apiRouter, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(nil, logger)
	c.Register(rt)
	signIn := func(addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/console/signin", strings.NewReader(url.Values{"email": {"nobody@example.org"}, "password": {"wrong password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		return rec
	}
	check := func(name string, rec *httptest.ResponseRecorder, status int, msg, retryAfter string) {
		t.Helper()
		if rec.Code != status || !strings.Contains(rec.Body.String(), msg) || rec.Header().Get("Retry-After") != retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q with %q\n%s", name, rec.Code, rec.Header().Get("Retry-After"), status, retryAfter, msg, rec.Body.String())
		}
	}

	leave, err := hasher.Admit() // another sign-in waiting for its check
	if err != nil {
		t.Fatal(err)
	}
	rec := signIn("198.51.100.7:41234")
	check("bound full", rec, http.StatusServiceUnavailable, "The server is busy checking other sign-ins. Try again in 7 seconds.", "7")
	if strings.Contains(rec.Body.String(), "Wrong e-mail or password") {
		t.Errorf("bound full: the page blames the credentials:\n%s", rec.Body.String())
	}
	leave()

	check("wrong password", signIn("198.51.100.8:41234"), http.StatusUnauthorized, "Wrong e-mail or password.", "")
	rec = signIn("198.51.100.8:41234") // past MaxFailures from this address
	ra := rec.Header().Get("Retry-After")
	check("rate limited", rec, http.StatusTooManyRequests, "Too many failed sign-ins. Try again in ", ra)
	if ra == "" || strings.Contains(rec.Body.String(), "busy") {
		t.Errorf("rate limited: Retry-After %q\n%s", ra, rec.Body.String())
	}
	if want := fmt.Sprintf("Try again %s.", retryInWords(t, ra)); !strings.Contains(rec.Body.String(), want) {
		t.Errorf("rate limited: want %q\n%s", want, rec.Body.String())
	}
}

// retryInWords is what the page should say for a Retry-After of ra seconds.
func retryInWords(t *testing.T, ra string) string {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(ra, &n); err != nil {
		t.Fatalf("Retry-After %q: %v", ra, err)
	}
	return retryIn(time.Duration(n) * time.Second)
}

func TestRetryIn(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "later", -time.Second: "later", time.Second: "in 1 second", 1500 * time.Millisecond: "in 2 seconds",
		7 * time.Second: "in 7 seconds", 119 * time.Second: "in 119 seconds", 2 * time.Minute: "in 2 minutes",
		15*time.Minute - time.Second: "in 15 minutes",
	} {
		if got := retryIn(d); got != want {
			t.Errorf("retryIn(%v) = %q, want %q", d, got, want)
		}
	}
}
