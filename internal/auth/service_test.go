package auth_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/survey"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t)
	rsp := survey.NewStore(db, nil)
	for name, cfg := range map[string]auth.Config{
		"no respondents":           {Secret: []byte(testSecret)},
		"short secret":             {Respondents: rsp, Secret: []byte("short")},
		"access outlives refresh":  {Respondents: rsp, Secret: []byte(testSecret), AccessTTL: time.Hour, RefreshTTL: time.Minute},
		"negative password length": {Respondents: rsp, Secret: []byte(testSecret), PasswordParams: cheap, MinPasswordLen: -1},
		"broken argon2":            {Respondents: rsp, Secret: []byte(testSecret), PasswordParams: password.Params{Memory: 1, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}},
	} {
		if _, err := auth.New(db, cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := auth.New(db, auth.Config{Respondents: rsp, Secret: []byte(testSecret)}, nil); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestRunPrunes: the pruning component deletes what left the window and stops with its
// context, leaving no goroutine behind.
func TestRunPrunes(t *testing.T) {
	db := storetest.SQLite(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := setup(t, db, func(c *auth.Config) { c.PruneInterval = 10 * time.Millisecond })
	old := store.Micros(f.clock.Now().Add(-auth.DefaultFailureWindow - time.Second))
	if _, err := db.Exec(t.Context(), "INSERT INTO signin_failures (key, failed_at) VALUES ('k', $1)", old); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var n int
		if err := db.QueryRow(t.Context(), "SELECT count(*) FROM signin_failures").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old failure was not pruned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
