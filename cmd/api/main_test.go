package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"DATA_DIR": dir}
	p := runtest.Start(t, run, env)
	if code, body := getJSON(t, p.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
	if code, _ := getJSON(t, p.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, series := range []string{"dispatch24_outbox_backlog", "dispatch24_consumer_lag", "dispatch24_http_requests_total"} {
		if !strings.Contains(buf.String(), series) {
			t.Errorf("metrics lack %s", series)
		}
	}
	for _, f := range []string{"dispatch24.db", "token_secret", "secrets_key", "nats"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("embedded file: %v", err)
		}
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "token_secret"))
	secretsKey, _ := os.ReadFile(filepath.Join(dir, "secrets_key"))
	if fi, err := os.Stat(filepath.Join(dir, "secrets_key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secrets_key file: %v, %v; want mode 0600", fi, err)
	}

	stopped := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if strings.Contains(p.Stderr.String(), strings.TrimSpace(string(secret))) {
		t.Error("token secret logged")
	}
	if len(secretsKey) < 40 || strings.Contains(p.Stderr.String(), strings.TrimSpace(string(secretsKey))[:16]) {
		t.Errorf("secrets key %q missing or logged", secretsKey)
	}

	// A restart on the same DATA_DIR keeps everything.
	p2 := runtest.Start(t, run, env)
	if code, _ := getJSON(t, p2.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz after restart %d", code)
	}
	secret2, _ := os.ReadFile(filepath.Join(dir, "token_secret"))
	if string(secret) != string(secret2) {
		t.Error("token secret changed across restarts")
	}
	if key2, _ := os.ReadFile(filepath.Join(dir, "secrets_key")); string(key2) != string(secretsKey) {
		t.Error("secrets key changed across restarts")
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	p := runtest.Start(t, run, map[string]string{
		"DATA_DIR":     t.TempDir(),
		"DATABASE_URL": storetest.PostgresURL(t),
		"TOKEN_SECRET": strings.Repeat("k", 40),
		"SECRETS_KEY":  testSecretsKey,
	})
	code, body := getJSON(t, p.URL+"/readyz")
	if code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
	if checks, _ := body["checks"].(map[string]any); checks["store"] != "ok" {
		t.Fatalf("checks %v", body)
	}
	if strings.Contains(p.Stderr.String(), strings.Repeat("k", 40)) {
		t.Error("TOKEN_SECRET logged")
	}
	if strings.Contains(p.Stderr.String(), testSecretsKey[:12]) {
		t.Error("SECRETS_KEY logged")
	}
}

// testSecretsKey is a valid SECRETS_KEY for the tests that run with PostgreSQL.
const testSecretsKey = "nT2Q7vX9cR4kLm8pW1sY6bZ3hJ0gF5dA2eU7iO4tK9w="

func TestInvalidConfiguration(t *testing.T) {
	t.Parallel()
	var stderr runtest.Buffer
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://db/x"
		}
		return ""
	}
	err := run(context.Background(), nil, getenv, &stderr, &stderr)
	if code := app.ExitCode("dispatch24-api", err, &stderr); code != 2 {
		t.Fatalf("exit code %d (%v)", code, err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "TOKEN_SECRET") {
		t.Fatalf("want one line naming TOKEN_SECRET, got %q", stderr.String())
	}
}
