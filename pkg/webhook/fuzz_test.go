package webhook_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// FuzzVerify feeds arbitrary headers and bodies to a Verifier with a JWT secret, a v1 secret and
// a v1a public key. It must never panic, must fail with one of the documented sentinel errors,
// and must accept only a delivery that carries a correct signature of either scheme (Ed25519
// signatures are deterministic, so the signing key's own is the only one to expect).
func FuzzVerify(f *testing.F) {
	f.Add(vectorMsgID, "1614265330", vectorSignature, "", []byte(vectorBody))
	f.Add(vectorMsgID, "1614265330", vectorV1aSignature, "Bearer a.b.c", []byte(vectorBody))
	f.Add(vectorMsgID, "1614265330", "v1a,"+strings.Repeat("A", 86)+"== "+vectorV1aSignature, "", []byte(vectorBody))
	f.Add(vectorMsgID, "1614265330", strings.Repeat("v1a,x ", 9)+vectorV1aSignature, "", []byte(vectorBody))
	f.Add(vectorMsgID, "1614265330", vectorSignature+" v1,xyz v2,abc", "Bearer a.b.c", []byte(vectorBody))
	f.Add("", "", "", "", []byte{})
	f.Add("id", "99999999999999999999", "v1,", "Bearer", []byte("x"))
	f.Add(vectorMsgID, "1614265330", "v1,"+strings.Repeat("A", 44), "Bearer eyJhbGciOiJub25lIn0.e30.", []byte(vectorBody))
	v, err := webhook.NewVerifier(webhook.VerifierConfig{
		Secrets: []string{vectorSecret}, PublicKeys: []string{vectorPublicKey}, JWTSecret: testJWTSecret, Audience: testAudience,
		NowFunc: fixedClock(vectorTimestamp),
	})
	if err != nil {
		f.Fatal(err)
	}
	sentinels := []error{webhook.ErrMissingHeaders, webhook.ErrInvalidSignature, webhook.ErrTimestampOutOfRange, webhook.ErrInvalidToken, webhook.ErrBodyMismatch}
	f.Fuzz(func(t *testing.T, id, ts, sig, auth string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		h.Set("Authorization", auth)
		got, err := v.Verify(h, body)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Verify error %v wraps no sentinel", err)
		}
		// Success needs a genuine signature among the listed ones.
		want, serr := webhook.Sign(id, got.Timestamp, body, vectorSecret, vectorSigningKey)
		wantV1, wantV1a, _ := strings.Cut(want, " ")
		fields := strings.Fields(sig)
		if serr != nil || !(slices.Contains(fields, wantV1) || slices.Contains(fields, wantV1a)) || got.Claims == nil {
			t.Fatalf("Verify accepted id %q ts %q sig %q", id, ts, sig)
		}
		if got.Timestamp.Sub(time.Unix(vectorTimestamp, 0)).Abs() > webhook.DefaultTolerance {
			t.Fatalf("Verify accepted timestamp %v", got.Timestamp)
		}
	})
}

// FuzzParseSigningKey: ParseSigningKey never panics, fails only with ErrInvalidKey and without
// repeating the key, and accepts only the one canonical text of a consistent key pair.
func FuzzParseSigningKey(f *testing.F) {
	f.Add(vectorSigningKey)
	f.Add(vectorSigningKey + "\n")
	f.Add(vectorPublicKey)
	f.Add(vectorSecret)
	f.Add("whsk_")
	f.Add("whsk_" + strings.Repeat("A", 86) + "==")
	f.Add("whsk_" + strings.Repeat("A", 86) + "AB")
	f.Fuzz(func(t *testing.T, key string) {
		priv, err := webhook.ParseSigningKey(key)
		if err != nil {
			checkKeyError(t, err, key)
			return
		}
		if want := "whsk_" + base64.StdEncoding.EncodeToString(priv); strings.TrimSpace(key) != want {
			t.Fatalf("ParseSigningKey accepted %q, whose canonical text is %q", key, want)
		}
		if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
			t.Fatalf("ParseSigningKey accepted %q, whose halves do not belong together", key)
		}
		pub, err := webhook.PublicKeyOf(key)
		if err != nil || pub != "whpk_"+base64.StdEncoding.EncodeToString(priv[32:]) {
			t.Fatalf("PublicKeyOf = %q, %v", pub, err)
		}
	})
}

// FuzzParsePublicKey: ParsePublicKey never panics, fails only with ErrInvalidKey and without
// repeating the key, and accepts only the canonical text of 32 bytes.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(vectorPublicKey)
	f.Add(" " + vectorPublicKey + "\r\n")
	f.Add(vectorSigningKey)
	f.Add(vectorSecret)
	f.Add("whpk_")
	f.Add("whpk_" + strings.Repeat("/", 43) + "=")
	f.Add("whpk_" + strings.Repeat("A", 43) + "B")
	f.Fuzz(func(t *testing.T, key string) {
		pub, err := webhook.ParsePublicKey(key)
		if err != nil {
			checkKeyError(t, err, key)
			return
		}
		if want := "whpk_" + base64.StdEncoding.EncodeToString(pub); len(pub) != 32 || strings.TrimSpace(key) != want {
			t.Fatalf("ParsePublicKey accepted %q, whose canonical text is %q", key, want)
		}
	})
}

// checkKeyError checks a key parser's error: ErrInvalidKey, and no run of the key's text.
func checkKeyError(t *testing.T, err error, key string) {
	t.Helper()
	if !errors.Is(err, webhook.ErrInvalidKey) {
		t.Fatalf("error %v does not wrap ErrInvalidKey", err)
	}
	// Every 12-character run of the key's base64 must be absent (a shorter run might be a word
	// of the message itself).
	body := strings.TrimSpace(key)
	if len(body) > 5 {
		body = body[5:]
	}
	for i := 0; i+12 <= len(body); i++ {
		if run := body[i : i+12]; !strings.ContainsAny(run, " ") && strings.Contains(err.Error(), run) {
			t.Fatalf("error %q repeats the key's %q", err, run)
		}
	}
}
