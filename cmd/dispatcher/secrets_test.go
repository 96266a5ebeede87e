package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
)

// TestRunSealsSecrets: a webhook secret stored in clear before this release is sealed with
// SECRETS_KEY when the dispatcher starts, deliveries still verify with the secret the receiver
// was given, and a dispatcher started with another key stops with one clear line (exit 1)
// instead of signing with garbage.
func TestRunSealsSecrets(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	storedSecret := func() string {
		t.Helper()
		var s string
		if err := w.db.QueryRow(ctx, `SELECT secret FROM webhooks WHERE id = 'wh_kill'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := storedSecret(); got != w.secret {
		t.Fatalf("the world's webhook secret is stored as %q, want it in clear (as before this release)", got)
	}

	var logs syncBuffer
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, nil, getenvFrom(w.env()), io.Discard, &logs) }()
	waitListening(t, logs.String)
	key, err := secret.ParseKey(testSecretsKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := storedSecret(); !strings.HasPrefix(got, "enc:v1:"+secret.KeyID(key)+":") || strings.Contains(got, w.secret[len("whsec_"):]) {
		t.Fatalf("after start the webhook secret is stored as %q, want it sealed", got)
	}
	w.publish(t, 2)
	waitFor(t, 30*time.Second, "two verified deliveries", func() bool { return w.rc.distinct() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	other := secret.EncodeKey(secret.GenerateKey())
	var stderr strings.Builder
	err = run(ctx, nil, getenvFrom(w.env("SECRETS_KEY", other)), io.Discard, &stderr)
	var exit strings.Builder
	if code := exitCode(err, &exit); code != 1 {
		t.Fatalf("with another key: exit %d (%v), want 1", code, err)
	}
	for _, want := range []string{"SECRETS_KEY", secret.KeyID(key), "webhooks.secret of wh_kill"} {
		if !strings.Contains(exit.String(), want) {
			t.Errorf("start-up error %q does not mention %s", exit.String(), want)
		}
	}
	if out := exit.String() + stderr.String(); strings.Contains(out, w.secret) || strings.Contains(out, other[:16]) || strings.Contains(out, testSecretsKey[:16]) {
		t.Errorf("a secret is in the output: %s", out)
	}
}
