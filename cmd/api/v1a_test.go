package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// v1aReceiver is a receiver on 127.0.0.1 that keeps what it got, by webhook-id.
type v1aReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]received
}

type received struct {
	header http.Header
	body   []byte
}

// TestWebhookV1aEndToEnd: a v1a webhook registered through the API, with its in-process
// dispatcher, gets each submission's event signed "v1a,<Ed25519>"; the receiver verifies it with
// pkg/webhook's Verifier holding only the public key from the API's answers. After a rotation
// every delivery carries both keys' entries, and each public key alone verifies it.
func TestWebhookV1aEndToEnd(t *testing.T) {
	t.Parallel()
	rc := &v1aReceiver{got: map[string]received{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got[r.Header.Get(webhook.HeaderID)] = received{header: r.Header.Clone(), body: body}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	p := runtest.Start(t, run, fanoutEnv(t, nil))
	const survey = "v1a"
	admin, respondent := fanoutSurvey(t, p.URL, survey)
	base := p.URL + "/api/admin/surveys/" + survey + "/webhooks"

	var created struct {
		ID, PublicKey, SignatureScheme string
		Secret                         *string
	}
	if code := apiCall(t, "POST", base, admin, map[string]any{"url": rc.URL + "/hook", "signatureScheme": "v1a"}, &created); code != 201 ||
		created.Secret != nil || created.SignatureScheme != "v1a" || !strings.HasPrefix(created.PublicKey, webhook.PublicKeyPrefix) {
		t.Fatalf("create: %d %+v", code, created)
	}

	// delivered submits and returns the delivery of the submission's event.
	delivered := func() received {
		t.Helper()
		sub := submit(t, p.URL, respondent, survey)
		var got received
		waitUntil(t, "the delivery of submission "+sub, func() bool {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			for _, r := range rc.got {
				if strings.Contains(string(r.body), sub) {
					got = r
					return true
				}
			}
			return false
		})
		return got
	}
	verifies := func(r received, publicKey string) error {
		v, err := webhook.NewVerifier(webhook.VerifierConfig{PublicKeys: []string{publicKey}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(r.header, r.body)
		return err
	}
	entries := func(r received) []string { return strings.Fields(r.header.Get(webhook.HeaderSignature)) }

	first := delivered()
	if e := entries(first); len(e) != 1 || !strings.HasPrefix(e[0], "v1a,") {
		t.Fatalf("webhook-signature %q, want one v1a entry", first.header.Get(webhook.HeaderSignature))
	}
	if err := verifies(first, created.PublicKey); err != nil {
		t.Fatalf("verifying with the public key: %v", err)
	}

	var rotated struct {
		PublicKey string
		Secret    *string
	}
	if code := apiCall(t, "POST", base+"/"+created.ID+"/rotate-secret", admin, nil, &rotated); code != 200 || rotated.Secret != nil ||
		!strings.HasPrefix(rotated.PublicKey, webhook.PublicKeyPrefix) || rotated.PublicKey == created.PublicKey {
		t.Fatalf("rotate: %d %+v", code, rotated)
	}
	var shown struct{ PublicKey string }
	if code := apiCall(t, "GET", base+"/"+created.ID, admin, nil, &shown); code != 200 || shown.PublicKey != rotated.PublicKey {
		t.Fatalf("get after rotation: %d %+v", code, shown)
	}
	during := delivered()
	if e := entries(during); len(e) != 2 || !strings.HasPrefix(e[0], "v1a,") || !strings.HasPrefix(e[1], "v1a,") {
		t.Fatalf("webhook-signature during the rotation %q, want two v1a entries", during.header.Get(webhook.HeaderSignature))
	}
	for _, k := range []string{rotated.PublicKey, created.PublicKey} {
		if err := verifies(during, k); err != nil {
			t.Fatalf("verifying during the rotation with one public key: %v", err)
		}
	}
	if err := verifies(during, "whpk_"+strings.Repeat("A", 43)+"="); err == nil {
		t.Fatal("a delivery verified with an unrelated public key")
	}

	// A PATCH back to v1 is a rotation too: a whsec_ secret, shown once, signs first, and the
	// current v1a key still signs during the overlap.
	var switched struct {
		Secret, SignatureScheme, PreviousSecretExpiresAt string
		PublicKey                                        *string
	}
	if code := apiCall(t, "PATCH", base+"/"+created.ID, admin, map[string]any{"signatureScheme": "v1"}, &switched); code != 200 ||
		!strings.HasPrefix(switched.Secret, webhook.SecretPrefix) || switched.SignatureScheme != "v1" || switched.PublicKey != nil ||
		switched.PreviousSecretExpiresAt == "" {
		t.Fatalf("switch to v1: %d %+v", code, switched)
	}
	after := delivered()
	if e := entries(after); len(e) != 2 || !strings.HasPrefix(e[0], "v1,") || !strings.HasPrefix(e[1], "v1a,") {
		t.Fatalf("webhook-signature after the switch %q, want v1 then v1a", after.header.Get(webhook.HeaderSignature))
	}
	if err := verifies(after, rotated.PublicKey); err != nil {
		t.Fatalf("verifying after the switch with the v1a public key: %v", err)
	}
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{switched.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(after.header, after.body); err != nil {
		t.Fatalf("verifying after the switch with the v1 secret: %v", err)
	}
}
