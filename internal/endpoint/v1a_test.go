package endpoint_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// verifyV1a checks a received delivery with public keys alone (and the survey's JWT).
func verifyV1a(t *testing.T, got received, url string, publicKeys ...string) {
	t.Helper()
	v, err := webhook.NewVerifier(webhook.VerifierConfig{PublicKeys: publicKeys, JWTSecret: jwtSecretS1, Audience: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(got.header, got.body); err != nil {
		t.Fatalf("verifying with %d public key(s): %v", len(publicKeys), err)
	}
}

// schemes returns the scheme of each entry of a delivery's webhook-signature.
func schemes(got received) []string {
	var out []string
	for _, sig := range strings.Fields(got.header.Get(webhook.HeaderSignature)) {
		scheme, _, _ := strings.Cut(sig, ",")
		out = append(out, scheme)
	}
	return out
}

// TestV1aEndpoint: a v1a endpoint is created, shown, rotated and switched through the API with
// its public key only; its signing key is stored sealed, and never appears in an answer or the
// log; test sends carry v1a signatures (two during a rotation) that verify with the public keys
// alone.
func TestV1aEndpoint(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		logs := &syncBuffer{}
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true, logs: logs})
		rc := newReceiver(t, http.StatusOK)
		url := rc.URL + "/hook"
		var answers []string // every answer's body, searched for signing keys at the end
		do := func(who, method, path string, body any) (int, map[string]any, []byte) {
			t.Helper()
			code, out, raw := b.do(t, who, method, path, body)
			answers = append(answers, string(raw))
			return code, out, raw
		}

		code, out, raw := do(asStaff, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": url, "signatureScheme": "v1a"})
		if code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, raw)
		}
		id, firstPub := out["id"].(string), out["publicKey"].(string)
		if _, ok := out["secret"]; ok || out["signatureScheme"] != "v1a" || !strings.HasPrefix(firstPub, webhook.PublicKeyPrefix) {
			t.Fatalf("create answer %s: want a publicKey, the scheme, and no secret", raw)
		}
		if _, err := webhook.ParsePublicKey(firstPub); err != nil {
			t.Fatal(err)
		}
		one := "/api/admin/surveys/s1/webhooks/" + id

		// At rest: sealed with SECRETS_KEY; opened, the signing key of the public key shown.
		cur, prev := storedSecrets(t, db, id)
		if !strings.HasPrefix(cur, b.keys.SealedPrefix()) || strings.Contains(cur, webhook.SigningKeyPrefix) || prev != "" {
			t.Fatalf("stored %q (previous %q): want the signing key sealed", cur, prev)
		}
		var scheme string
		if err := db.QueryRow(ctx, "SELECT signature_scheme FROM webhooks WHERE id = $1", id).Scan(&scheme); err != nil || scheme != "v1a" {
			t.Fatalf("signature_scheme %q, %v", scheme, err)
		}
		e, err := b.svc.Store().Get(ctx, "s1", id)
		if err != nil {
			t.Fatal(err)
		}
		if pub, err := webhook.PublicKeyOf(e.Secret); err != nil || pub != firstPub {
			t.Fatalf("the stored key opens to one of public key %q (%v), want %q", pub, err, firstPub)
		}

		code, out, raw = do(asStaff, "GET", one, nil)
		if code != http.StatusOK || out["publicKey"] != firstPub || out["signatureScheme"] != "v1a" {
			t.Fatalf("get: %d %s", code, raw)
		}
		code, out, raw = do(asStaff, "GET", "/api/admin/surveys/s1/webhooks", nil)
		if items, _ := out["items"].([]any); code != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["publicKey"] != firstPub {
			t.Fatalf("list: %d %s", code, raw)
		}

		// A test send signs with v1a alone and verifies with the public key alone.
		if code, out, raw = do(asStaff, "POST", one+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test: %d %s", code, raw)
		}
		got := rc.last(t)
		if s := schemes(got); len(s) != 1 || s[0] != "v1a" {
			t.Fatalf("signatures %q, want one v1a", got.header.Get(webhook.HeaderSignature))
		}
		verifyV1a(t, got, url, firstPub)

		// Rotation: a new public key; both keys sign during the overlap.
		code, out, raw = do(asStaff, "POST", one+"/rotate-secret", nil)
		secondPub, _ := out["publicKey"].(string)
		if _, ok := out["secret"]; code != http.StatusOK || ok || !strings.HasPrefix(secondPub, webhook.PublicKeyPrefix) ||
			secondPub == firstPub || out["previousSecretExpiresAt"] == nil {
			t.Fatalf("rotate: %d %s", code, raw)
		}
		if _, prev = storedSecrets(t, db, id); !strings.HasPrefix(prev, b.keys.SealedPrefix()) {
			t.Fatalf("previous key stored as %q, want it sealed", prev)
		}
		if code, out, raw = do(asStaff, "GET", one, nil); out["publicKey"] != secondPub || out["secretRotating"] != true {
			t.Fatalf("get after rotation: %d %s", code, raw)
		}
		if code, out, raw = do(asStaff, "POST", one+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test while rotating: %d %s", code, raw)
		}
		got = rc.last(t)
		if s := schemes(got); len(s) != 2 || s[0] != "v1a" || s[1] != "v1a" {
			t.Fatalf("signatures while rotating %q, want two v1a", got.header.Get(webhook.HeaderSignature))
		}
		verifyV1a(t, got, url, secondPub)
		verifyV1a(t, got, url, firstPub)

		// A PATCH to the same scheme changes nothing of the keys.
		code, out, raw = do(asStaff, "PATCH", one, map[string]any{"signatureScheme": "v1a", "description": "same"})
		if _, ok := out["previousSecretExpiresAt"]; code != http.StatusOK || ok || out["publicKey"] != secondPub || out["description"] != "same" {
			t.Fatalf("patch to the same scheme: %d %s", code, raw)
		}

		// Switching to v1 rotates to a whsec_ secret, shown once; the v1a key still signs.
		code, out, raw = do(asStaff, "PATCH", one, map[string]any{"signatureScheme": "v1"})
		v1Secret, _ := out["secret"].(string)
		if _, ok := out["publicKey"]; code != http.StatusOK || ok || out["signatureScheme"] != "v1" ||
			!strings.HasPrefix(v1Secret, webhook.SecretPrefix) || out["previousSecretExpiresAt"] == nil || out["secretRotating"] != true {
			t.Fatalf("switch to v1: %d %s", code, raw)
		}
		if code, out, raw = do(asStaff, "POST", one+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test after the switch: %d %s", code, raw)
		}
		got = rc.last(t)
		if s := schemes(got); len(s) != 2 || s[0] != "v1" || s[1] != "v1a" {
			t.Fatalf("signatures after the switch %q, want v1 then v1a", got.header.Get(webhook.HeaderSignature))
		}
		verify(t, got, url, v1Secret)
		verifyV1a(t, got, url, secondPub)

		// And back to v1a: a fresh key pair, the v1 secret signing meanwhile.
		code, out, raw = do(asStaff, "PATCH", one, map[string]any{"signatureScheme": "v1a"})
		thirdPub, _ := out["publicKey"].(string)
		if _, ok := out["secret"]; code != http.StatusOK || ok || !strings.HasPrefix(thirdPub, webhook.PublicKeyPrefix) ||
			thirdPub == secondPub || out["previousSecretExpiresAt"] == nil {
			t.Fatalf("switch to v1a: %d %s", code, raw)
		}
		if code, out, raw = do(asStaff, "POST", one+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test after the switch back: %d %s", code, raw)
		}
		got = rc.last(t)
		verifyV1a(t, got, url, thirdPub)
		verify(t, got, url, v1Secret)

		// Bad schemes: a clear 400 on the field, nothing changed.
		for _, bad := range []any{"v2", "", "V1A", 1} {
			code, out, _ = do(asStaff, "POST", "/api/admin/surveys/s1/webhooks", map[string]any{"url": url, "signatureScheme": bad})
			if bad == "" {
				if code != http.StatusCreated || out["signatureScheme"] != "v1" {
					t.Fatalf("create with an empty scheme: %d %v; want the default v1", code, out)
				}
				continue
			}
			if bad == 1 {
				if code != http.StatusBadRequest {
					t.Fatalf("create with scheme 1: %d %v", code, out)
				}
				continue
			}
			expectValidation(t, code, out, "signatureScheme")
			code, out, _ = do(asStaff, "PATCH", one, map[string]any{"signatureScheme": bad})
			expectValidation(t, code, out, "signatureScheme")
		}
		if code, out, raw = do(asStaff, "PATCH", one, map[string]any{"signatureScheme": ""}); code != http.StatusBadRequest {
			t.Fatalf("patch with an empty scheme: %d %s", code, raw)
		}
		if _, out, _ = do(asStaff, "GET", one, nil); out["publicKey"] != thirdPub {
			t.Fatalf("a refused patch changed the key: %v", out)
		}

		// No answer and no log line ever held a signing key or a sealed value.
		for _, a := range append(answers, logs.String()) {
			if strings.Contains(a, webhook.SigningKeyPrefix) || strings.Contains(a, b.keys.SealedPrefix()) {
				t.Fatalf("a signing key or sealed value leaked: %s", a)
			}
		}
	})
}

// TestSealSecretsV1a: a v1a signing key stored in clear (by hand, or an older binary) is
// sealed by the start-up pass like a v1 secret, and still signs.
func TestSealSecretsV1a(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		key, pub := webhook.NewSigningKey()
		now := time.Now()
		if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, signature_scheme, secret, created_at, updated_at)
			VALUES ('wh_k', 's1', 'http://127.0.0.1:9/hook', 'survey.session.submitted', 'v1a', $1, $2, $2)`, key, store.Micros(now)); err != nil {
			t.Fatal(err)
		}
		if n, err := b.svc.Store().SealSecrets(ctx, true); err != nil || n != 1 {
			t.Fatalf("SealSecrets = %d, %v; want 1", n, err)
		}
		if cur, _ := storedSecrets(t, db, "wh_k"); !strings.HasPrefix(cur, b.keys.SealedPrefix()) || strings.Contains(cur, key[len(webhook.SigningKeyPrefix):]) {
			t.Fatalf("stored %q, want it sealed", cur)
		}
		e, err := b.svc.Store().Get(ctx, "s1", "wh_k")
		if err != nil || e.Secret != key || e.SignatureScheme != endpoint.SchemeV1a {
			t.Fatalf("after sealing: %v", err)
		}
		if got, err := e.PublicKey(); err != nil || got != pub {
			t.Fatalf("public key %q, %v; want %q", got, err, pub)
		}
	})
}
