package survey

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/runtest"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func keyringOf(t *testing.T, current []byte, previous ...[]byte) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storedJWTSecret reads surveys.jwt_secret as it is in the database.
func storedJWTSecret(t *testing.T, db *store.DB, id string) string {
	t.Helper()
	var s *string
	if err := db.QueryRow(t.Context(), `SELECT jwt_secret FROM surveys WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// TestJWTSecretSealedAtRest: the jwtSecret set at create and PATCH is stored sealed with
// SECRETS_KEY (never in clear), and create-user tokens signed with it still verify.
func TestJWTSecretSealedAtRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		keys := keyringOf(t, secret.GenerateKey())
		f := setup(t, db, func(c *Config) { c.Secrets = keys })
		f.createSurvey("s1", nil)
		stored := storedJWTSecret(t, db, "s1")
		if !strings.HasPrefix(stored, keys.SealedPrefix()) || strings.Contains(stored, testSecret) || strings.Contains(stored, testSecret[:12]) {
			t.Fatalf("surveys.jwt_secret = %q, want it sealed with the current key", stored)
		}
		tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "p-1", "exp": hourFromNow()})
		expect(t, f.createUser("s1", tok), http.StatusOK, "")

		const changed = "a-new-jwt-secret-of-at-least-32-characters"
		r := f.do("PATCH", "/api/admin/surveys/s1", "admin", map[string]any{"jwtSecret": changed, "name": "Renamed"})
		expect(t, r, http.StatusOK, "")
		if strings.Contains(string(r.body), changed) {
			t.Fatalf("PATCH answer shows the secret: %s", r.body)
		}
		if stored := storedJWTSecret(t, db, "s1"); !strings.HasPrefix(stored, keys.SealedPrefix()) || strings.Contains(stored, changed) {
			t.Fatalf("after PATCH surveys.jwt_secret = %q", stored)
		}
		// A PATCH of another field keeps the secret as stored.
		expect(t, f.do("PATCH", "/api/admin/surveys/s1", "admin", map[string]any{"name": "Again"}), http.StatusOK, "")
		tok = signToken(t, jwt.SigningMethodHS512, changed, jwt.MapClaims{"username": "p-2", "exp": hourFromNow()})
		expect(t, f.createUser("s1", tok), http.StatusOK, "")
		tok = signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "p-3", "exp": hourFromNow()})
		expect(t, f.createUser("s1", tok), http.StatusForbidden, "invalid_token")

		// Cleared: NULL, as before.
		expect(t, f.do("PATCH", "/api/admin/surveys/s1", "admin", map[string]any{"jwtSecret": nil}), http.StatusOK, "")
		if stored := storedJWTSecret(t, db, "s1"); stored != "" {
			t.Fatalf("cleared jwt_secret stored as %q", stored)
		}
	})
}

// TestJWTSecretSealAtStart: plain jwtSecrets from before this release keep working, and the
// start-up pass seals them; a rotated key re-seals; a ciphertext moved to another survey and an
// unknown key are refused with clear errors.
func TestJWTSecretSealAtStart(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		oldKey, newKey := secret.GenerateKey(), secret.GenerateKey()
		now := store.Micros(time.Now())
		for _, id := range []string{"plain-1", "plain-2", "none"} {
			var js any = "plain-jwt-secret-of-" + id + "-0123456789abcdef"
			if id == "none" {
				js = nil
			}
			if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, jwt_secret, created_at, updated_at) VALUES ($1, $1, $2, $3, $3)`,
				id, js, now); err != nil {
				t.Fatal(err)
			}
		}
		old := NewStore(db, keyringOf(t, oldKey))
		// Read as they are before the pass.
		if s, err := old.SurveyWithSecret(ctx, "plain-1"); err != nil || s.JWTSecret != "plain-jwt-secret-of-plain-1-0123456789abcdef" {
			t.Fatalf("plain value before sealing: %q, %v", s.JWTSecret, err)
		}
		n, err := old.SealSecrets(ctx, true)
		if err != nil || n != 2 {
			t.Fatalf("SealSecrets = %d, %v; want the 2 plain secrets sealed", n, err)
		}
		if n, err := old.SealSecrets(ctx, true); err != nil || n != 0 {
			t.Fatalf("second SealSecrets = %d, %v; want nothing left to do", n, err)
		}
		for _, id := range []string{"plain-1", "plain-2"} {
			if stored := storedJWTSecret(t, db, id); !strings.HasPrefix(stored, "enc:v1:"+secret.KeyID(oldKey)+":") || strings.Contains(stored, "plain-jwt") {
				t.Fatalf("%s: jwt_secret %q not sealed", id, stored)
			}
		}
		if stored := storedJWTSecret(t, db, "none"); stored != "" {
			t.Fatalf("a survey without a secret got %q", stored)
		}

		// Rotation: the new key with the old one as previous opens, and the pass re-seals.
		rotated := NewStore(db, keyringOf(t, newKey, oldKey))
		if s, err := rotated.SurveyWithSecret(ctx, "plain-2"); err != nil || s.JWTSecret != "plain-jwt-secret-of-plain-2-0123456789abcdef" {
			t.Fatalf("previous key: %q, %v", s.JWTSecret, err)
		}
		if n, err := rotated.SealSecrets(ctx, true); err != nil || n != 2 {
			t.Fatalf("re-seal = %d, %v", n, err)
		}
		only := NewStore(db, keyringOf(t, newKey))
		all, err := only.Surveys(ctx, true, nil)
		if err != nil || len(all) != 3 || !all[1].JWTSecretSet || all[1].JWTSecret != "" || all[0].JWTSecretSet {
			t.Fatalf("with the new key alone: %v, %v", all, err)
		}
		if s, err := only.SurveyWithSecret(ctx, "plain-1"); err != nil || s.JWTSecret != "plain-jwt-secret-of-plain-1-0123456789abcdef" {
			t.Fatalf("with the new key alone: %q, %v", s.JWTSecret, err)
		}

		// A wrong key: a clear error naming the key ids, from the pass and from reads.
		wrong := NewStore(db, keyringOf(t, secret.GenerateKey()))
		_, err = wrong.SealSecrets(ctx, true)
		var ke *secret.KeyError
		if !errors.As(err, &ke) || ke.KeyID != secret.KeyID(newKey) || !strings.Contains(err.Error(), "SECRETS_KEY") {
			t.Fatalf("wrong key: %v; want a KeyError naming the key the values are sealed with", err)
		}
		if _, err := wrong.SurveyWithSecret(ctx, "plain-1"); !errors.Is(err, secret.ErrUnknownKey) {
			t.Fatalf("read with a wrong key: %v", err)
		}

		// A ciphertext copied into another survey's row does not open there.
		if _, err := db.Exec(ctx, `UPDATE surveys SET jwt_secret = (SELECT jwt_secret FROM surveys WHERE id = 'plain-1') WHERE id = 'plain-2'`); err != nil {
			t.Fatal(err)
		}
		if s, err := only.SurveyWithSecret(ctx, "plain-2"); !errors.Is(err, secret.ErrNotOpened) {
			t.Fatalf("swapped ciphertext: %q, %v; want ErrNotOpened", s.JWTSecret, err)
		}
	})
}

// TestDamagedJWTSecretOnlyFailsItsUsers: a survey whose stored jwtSecret does not open (a
// damaged ciphertext) still lists, reads and takes PATCHes of other fields (which keep the
// stored value as it is), since those show only jwtSecretSet; create-user, which needs the
// secret, answers 500 without the stored value and logs an error naming the survey. The other
// surveys are untouched.
func TestDamagedJWTSecretOnlyFailsItsUsers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		logs := &runtest.Buffer{}
		f := setup(t, db, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
		f.createSurvey("bad", nil)
		f.createSurvey("good", nil)
		stored := storedJWTSecret(t, db, "bad")
		// Flip one character of the ciphertext: still well-formed, no longer authentic.
		i := len(stored) - 5
		c := byte('A')
		if stored[i] == 'A' {
			c = 'B'
		}
		damaged := stored[:i] + string(c) + stored[i+1:]
		if _, err := db.Exec(t.Context(), `UPDATE surveys SET jwt_secret = $1 WHERE id = 'bad'`, damaged); err != nil {
			t.Fatal(err)
		}

		r := f.do("GET", "/api/admin/surveys", "admin", nil)
		expect(t, r, http.StatusOK, "")
		var list struct {
			Items []struct {
				ID           string `json:"id"`
				JWTSecretSet bool   `json:"jwtSecretSet"`
			} `json:"items"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || len(list.Items) != 2 || list.Items[0].ID != "bad" || !list.Items[0].JWTSecretSet || !list.Items[1].JWTSecretSet {
			t.Fatalf("list: %s (%v)", r.body, err)
		}
		if r := f.do("GET", "/api/admin/surveys/bad", "admin", nil); r.status != http.StatusOK || r.json(t)["jwtSecretSet"] != true {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
		r = f.do("PATCH", "/api/admin/surveys/bad", "admin", map[string]any{"name": "Renamed"})
		if r.status != http.StatusOK || r.json(t)["jwtSecretSet"] != true || r.json(t)["name"] != "Renamed" {
			t.Fatalf("patch of the name: %d %s", r.status, r.body)
		}
		if got := storedJWTSecret(t, db, "bad"); got != damaged {
			t.Fatalf("a PATCH of the name rewrote jwt_secret: %q, want %q as stored", got, damaged)
		}

		// The operations that use the secret fail, and say why in the log.
		if _, err := f.svc.Store().SurveyWithSecret(t.Context(), "bad"); !errors.Is(err, secret.ErrNotOpened) || !strings.Contains(err.Error(), "survey bad") {
			t.Fatalf("SurveyWithSecret: %v; want ErrNotOpened naming the survey", err)
		}
		tok := signToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "p-1", "exp": hourFromNow()})
		r = f.createUser("bad", tok)
		expect(t, r, http.StatusInternalServerError, "")
		if strings.Contains(string(r.body), damaged) || strings.Contains(string(r.body), testSecret) {
			t.Fatalf("create-user answer shows the secret: %s", r.body)
		}
		if l := logs.String(); !strings.Contains(l, "opening the jwtSecret of survey bad") || strings.Contains(l, testSecret) {
			t.Fatalf("log: %s", l)
		}
		if n := f.countRespondents("bad"); n != 0 {
			t.Fatalf("%d respondents created with a secret that does not open", n)
		}
		expect(t, f.createUser("good", tok), http.StatusOK, "")

		// Setting a new secret replaces the damaged one; create-user works again.
		const fresh = "a-fresh-jwt-secret-of-at-least-32-characters"
		expect(t, f.do("PATCH", "/api/admin/surveys/bad", "admin", map[string]any{"jwtSecret": fresh}), http.StatusOK, "")
		tok = signToken(t, jwt.SigningMethodHS256, fresh, jwt.MapClaims{"username": "p-2", "exp": hourFromNow()})
		expect(t, f.createUser("bad", tok), http.StatusOK, "")
	})
}
