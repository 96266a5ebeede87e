package webhook_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// FuzzVerify feeds arbitrary headers and bodies to a Verifier with a JWT secret. It must never
// panic, must fail with one of the documented sentinel errors, and must accept only a delivery
// that carries the correct signature.
func FuzzVerify(f *testing.F) {
	f.Add(vectorMsgID, "1614265330", vectorSignature, "", []byte(vectorBody))
	f.Add(vectorMsgID, "1614265330", vectorSignature+" v1,xyz v2,abc", "Bearer a.b.c", []byte(vectorBody))
	f.Add("", "", "", "", []byte{})
	f.Add("id", "99999999999999999999", "v1,", "Bearer", []byte("x"))
	f.Add(vectorMsgID, "1614265330", "v1,"+strings.Repeat("A", 44), "Bearer eyJhbGciOiJub25lIn0.e30.", []byte(vectorBody))
	v, err := webhook.NewVerifier(webhook.VerifierConfig{
		Secrets: []string{vectorSecret}, JWTSecret: testJWTSecret, Audience: testAudience,
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
		want, serr := webhook.Sign(id, got.Timestamp, body, vectorSecret)
		if serr != nil || !slices.Contains(strings.Fields(sig), want) || got.Claims == nil {
			t.Fatalf("Verify accepted id %q ts %q sig %q", id, ts, sig)
		}
		if got.Timestamp.Sub(time.Unix(vectorTimestamp, 0)).Abs() > webhook.DefaultTolerance {
			t.Fatalf("Verify accepted timestamp %v", got.Timestamp)
		}
	})
}
