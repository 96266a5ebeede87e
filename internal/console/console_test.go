package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
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
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Try again later") {
		t.Fatalf("sign-in page: %d\n%s", rec.Code, rec.Body.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 1 || peers[0] != "POST /api/signin from 198.51.100.7:41234" {
		t.Fatalf("API calls: %v", peers)
	}
}
