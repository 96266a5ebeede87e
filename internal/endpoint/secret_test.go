package endpoint_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// storedSecrets reads webhooks.secret and previous_secret as they are in the database.
func storedSecrets(t *testing.T, db *store.DB, id string) (cur, prev string) {
	t.Helper()
	var p *string
	if err := db.QueryRow(context.Background(), `SELECT secret, previous_secret FROM webhooks WHERE id = $1`, id).Scan(&cur, &p); err != nil {
		t.Fatal(err)
	}
	if p != nil {
		prev = *p
	}
	return cur, prev
}

func mustKeyring(t *testing.T, current []byte, previous ...[]byte) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSecretsSealedAtRest: the secrets returned at create and rotate are stored sealed with
// SECRETS_KEY, never in clear, and test sends still verify with what was returned.
func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		rc := newReceiver(t, http.StatusOK)
		url := rc.URL + "/hook"
		created := b.create(t, url)
		id, first := created["id"].(string), created["secret"].(string)
		cur, prev := storedSecrets(t, db, id)
		if !strings.HasPrefix(cur, b.keys.SealedPrefix()) || strings.Contains(cur, first[len("whsec_"):]) || prev != "" {
			t.Fatalf("stored secret %q (previous %q), want it sealed with the current key", cur, prev)
		}

		code, out, raw := b.do(t, asStaff, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/rotate-secret", nil)
		second, _ := out["secret"].(string)
		if code != http.StatusOK || second == "" {
			t.Fatalf("rotate: %d %s", code, raw)
		}
		cur, prev = storedSecrets(t, db, id)
		for _, v := range []string{cur, prev} {
			if !strings.HasPrefix(v, b.keys.SealedPrefix()) || strings.Contains(v, first[len("whsec_"):]) || strings.Contains(v, second[len("whsec_"):]) {
				t.Fatalf("after rotation: secret %q, previous %q; want both sealed", cur, prev)
			}
		}
		var js string
		if err := db.QueryRow(context.Background(), `SELECT jwt_secret FROM surveys WHERE id = 's1'`).Scan(&js); err != nil || strings.Contains(js, jwtSecretS1) {
			t.Fatalf("surveys.jwt_secret %q, %v", js, err)
		}
		if code, out, raw = b.do(t, asStaff, "POST", "/api/admin/surveys/s1/webhooks/"+id+"/test", nil); code != http.StatusOK || out["delivered"] != true {
			t.Fatalf("test send: %d %s", code, raw)
		}
		got := rc.last(t)
		verify(t, got, url, second)
		verify(t, got, url, first)
	})
}

// TestSealSecretsAtStart: webhook secrets stored in clear before this release still sign, the
// start-up pass seals them (both columns), a new key re-seals them with the old one given as
// previous, and a wrong key or a ciphertext moved to another row gives a clear error.
func TestSealSecretsAtStart(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, options{allowNets: loopback(), clientAllowAll: true})
		ctx := context.Background()
		now := time.Now()
		const (
			plainA     = "whsec_cGxhaW4tc2VjcmV0LWEtMDEyMzQ1Njc4OWFiY2RlZg=="
			plainAPrev = "whsec_cGxhaW4tcHJldmlvdXMtYS0wMTIzNDU2Nzg5YWJjZA=="
			plainB     = "whsec_cGxhaW4tc2VjcmV0LWItMDEyMzQ1Njc4OWFiY2RlZg=="
		)
		for _, w := range []struct{ id, cur, prev string }{{"wh_a", plainA, plainAPrev}, {"wh_b", plainB, ""}} {
			var prev any
			var until any
			if w.prev != "" {
				prev, until = w.prev, store.Micros(now.Add(time.Hour))
			}
			if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, previous_secret, previous_secret_until,
				created_at, updated_at) VALUES ($1, 's1', 'http://127.0.0.1:9/hook', 'survey.session.submitted', $2, $3, $4, $5, $5)`,
				w.id, w.cur, prev, until, store.Micros(now)); err != nil {
				t.Fatal(err)
			}
		}
		oldKey, newKey := secret.GenerateKey(), secret.GenerateKey()
		old := endpoint.NewStore(db, mustKeyring(t, oldKey))
		if e, err := old.Get(ctx, "s1", "wh_a"); err != nil || e.Secret != plainA || e.PreviousSecret != plainAPrev {
			t.Fatalf("plain row before sealing: %+v, %v", e, err)
		}
		if n, err := old.SealSecrets(ctx, false); err != nil || n != 3 {
			t.Fatalf("SealSecrets check = %d, %v; want 3 values to seal", n, err)
		}
		if cur, _ := storedSecrets(t, db, "wh_b"); cur != plainB {
			t.Fatalf("the check wrote %q", cur)
		}
		if n, err := old.SealSecrets(ctx, true); err != nil || n != 3 {
			t.Fatalf("SealSecrets = %d, %v; want 3 values sealed", n, err)
		}
		if n, err := old.SealSecrets(ctx, true); err != nil || n != 0 {
			t.Fatalf("second SealSecrets = %d, %v; want nothing left", n, err)
		}
		for _, id := range []string{"wh_a", "wh_b"} {
			cur, prev := storedSecrets(t, db, id)
			if !strings.HasPrefix(cur, "enc:v1:"+secret.KeyID(oldKey)+":") || (id == "wh_a" && !strings.HasPrefix(prev, "enc:v1:"+secret.KeyID(oldKey)+":")) {
				t.Fatalf("%s: secret %q, previous %q; want both sealed", id, cur, prev)
			}
			if strings.Contains(cur+prev, "whsec_") || strings.Contains(cur+prev, plainA[6:20]) {
				t.Fatalf("%s: plain text left in %q %q", id, cur, prev)
			}
		}
		if e, err := old.Get(ctx, "s1", "wh_a"); err != nil || e.Secret != plainA || e.PreviousSecret != plainAPrev {
			t.Fatalf("sealed row: %+v, %v", e, err)
		}

		// Rotation of SECRETS_KEY: the new key with the old as previous re-seals everything.
		rotated := endpoint.NewStore(db, mustKeyring(t, newKey, oldKey))
		if n, err := rotated.SealSecrets(ctx, true); err != nil || n != 3 {
			t.Fatalf("re-seal = %d, %v", n, err)
		}
		only := endpoint.NewStore(db, mustKeyring(t, newKey))
		list, err := only.List(ctx, "s1")
		if err != nil || len(list) != 2 || list[0].Secret != plainA || list[0].PreviousSecret != plainAPrev || list[1].Secret != plainB {
			t.Fatalf("with the new key alone: %+v, %v", list, err)
		}
		// RotateSecret after the key rotation: previous_secret holds the value sealed for the
		// same webhook, so it still opens.
		if e, err := only.RotateSecret(ctx, "s1", "wh_b", now.Add(time.Hour), now); err != nil ||
			e.PreviousSecret != plainB {
			t.Fatalf("rotate: %+v, %v", e, err)
		}

		// A wrong key stops the pass with the key ids; reads fail the same way.
		wrong := endpoint.NewStore(db, mustKeyring(t, secret.GenerateKey()))
		_, err = wrong.SealSecrets(ctx, true)
		var ke *secret.KeyError
		if !errors.As(err, &ke) || ke.KeyID != secret.KeyID(newKey) || !strings.Contains(err.Error(), "SECRETS_KEY") {
			t.Fatalf("wrong key: %v", err)
		}
		if _, err := wrong.Get(ctx, "s1", "wh_a"); !errors.Is(err, secret.ErrUnknownKey) {
			t.Fatalf("read with a wrong key: %v", err)
		}

		// Ciphertexts swapped between two rows do not open.
		curA, _ := storedSecrets(t, db, "wh_a")
		curB, _ := storedSecrets(t, db, "wh_b")
		for id, v := range map[string]string{"wh_a": curB, "wh_b": curA} {
			if _, err := db.Exec(ctx, `UPDATE webhooks SET secret = $2 WHERE id = $1`, id, v); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"wh_a", "wh_b"} {
			if e, err := only.Get(ctx, "s1", id); !errors.Is(err, secret.ErrNotOpened) {
				t.Fatalf("%s after the swap: %+v, %v; want ErrNotOpened", id, e, err)
			}
		}
		// The API (with yet another key here) answers 500 without a secret or a stored value.
		code, _, raw := b.do(t, asAdmin, "GET", "/api/admin/surveys/s1/webhooks/wh_a", nil)
		if code != http.StatusInternalServerError || strings.Contains(string(raw), "enc:") || strings.Contains(string(raw), "whsec_") {
			t.Fatalf("GET of a swapped row: %d %s", code, raw)
		}
	})
}
