package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// TestSecretsKeyAtStart: the api started with a SECRETS_KEY that did not seal the stored
// secrets stops with one clear line naming the key ids (exit 1), instead of serving garbage;
// with the old key in SECRETS_KEY_PREVIOUS it starts and seals every value (plain ones from
// before this release included) with the new key, after which the new key alone suffices.
func TestSecretsKeyAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.PostgresURL(t)
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	oldKey, newKey := secret.GenerateKey(), secret.GenerateKey()
	oldRing, err := secret.NewKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	const jwtSecret = "survey-jwt-secret-sealed-with-the-old-key-0123"
	now := time.Now()
	if err := survey.NewStore(db, oldRing).CreateSurvey(ctx, survey.Survey{ID: "s1", Name: "s1", JWTSecret: jwtSecret, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const plainWebhookSecret = "whsec_cGxhaW4td2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ=="
	if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
		VALUES ('wh_1', 's1', 'http://127.0.0.1:9/hook', 'survey.session.submitted', $1, $2, $2)`, plainWebhookSecret, store.Micros(now)); err != nil {
		t.Fatal(err)
	}
	env := func(extra ...string) map[string]string {
		m := map[string]string{
			"HTTP_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "DATABASE_URL": dbURL,
			"TOKEN_SECRET": strings.Repeat("k", 40), "SECRETS_KEY": secret.EncodeKey(newKey),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}

	// The new key alone: refused at start.
	var stderr runtest.Buffer
	vars := env()
	err = run(ctx, nil, func(k string) string { return vars[k] }, &stderr, &stderr)
	var exit runtest.Buffer
	if code := app.ExitCode("dispatch24-api", err, &exit); code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	line := exit.String()
	t.Logf("start-up error: %s", line)
	for _, want := range []string{"SECRETS_KEY", secret.KeyID(oldKey), secret.KeyID(newKey), "surveys.jwt_secret of s1"} {
		if !strings.Contains(line, want) {
			t.Errorf("start-up error %q does not mention %s", line, want)
		}
	}
	for _, leak := range []string{jwtSecret, plainWebhookSecret, secret.EncodeKey(newKey)[:16], secret.EncodeKey(oldKey)[:16]} {
		if strings.Contains(line+stderr.String(), leak) {
			t.Errorf("output shows a secret (%s…)", leak[:8])
		}
	}

	// Nothing was written with the wrong key: the plain webhook secret is still plain.
	var still string
	if err := db.QueryRow(ctx, `SELECT secret FROM webhooks WHERE id = 'wh_1'`).Scan(&still); err != nil || still != plainWebhookSecret {
		t.Fatalf("after the refused start the webhook secret is %q (%v); want it untouched", still, err)
	}

	// With the old key as previous: starts, and every stored secret is sealed with the new key.
	p := runtest.Start(t, run, env("SECRETS_KEY_PREVIOUS", secret.EncodeKey(oldKey)))
	if code, body := getJSON(t, p.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	var js, ws string
	if err := db.QueryRow(ctx, `SELECT s.jwt_secret, w.secret FROM surveys s JOIN webhooks w ON w.survey_id = s.id`).Scan(&js, &ws); err != nil {
		t.Fatal(err)
	}
	newPrefix := "enc:v1:" + secret.KeyID(newKey) + ":"
	if !strings.HasPrefix(js, newPrefix) || !strings.HasPrefix(ws, newPrefix) {
		t.Fatalf("after the rotation start: jwt_secret %q, webhook secret %q; want both sealed with the new key", js, ws)
	}

	// The new key alone now starts, and reads the values.
	p = runtest.Start(t, run, env())
	if code, body := getJSON(t, p.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz with the new key alone %d %v", code, body)
	}
	newRing, _ := secret.NewKeyring(newKey)
	if sv, err := survey.NewStore(db, newRing).SurveyWithSecret(ctx, "s1"); err != nil || sv.JWTSecret != jwtSecret {
		t.Fatalf("survey after rotation: %q, %v", sv.JWTSecret, err)
	}
}
