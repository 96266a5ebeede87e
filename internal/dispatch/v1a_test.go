package dispatch

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	endpoints "github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// TestV1aSignatureDeliveries: a v1a endpoint, created and rotated through its owner
// (internal/endpoint, which seals the signing keys), gets deliveries signed "v1a,<Ed25519>"
// that a receiver on 127.0.0.1 verifies with pkg/webhook's Verifier holding only the public
// key; during the rotation every delivery carries both keys' entries, the new one first, and
// each verifies with its public key alone (and with crypto/ed25519 by hand).
func TestV1aSignatureDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, db)
		rc := newReceiver(t, nil)
		survey := h.addSurvey(jwtSecret)
		owner := endpoints.NewStore(db, h.keys)
		key, firstPub := webhook.NewSigningKey()
		now := time.Now()
		e := &endpoints.Endpoint{ID: endpoints.NewID(), SurveyID: survey, URL: rc.url(), Events: []string{events.TypeSessionSubmitted},
			SignatureScheme: endpoints.SchemeV1a, Secret: key, CreatedAt: now, UpdatedAt: now}
		if err := owner.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		h.start(h.config("0s"))

		// deliver publishes an event and returns the request the receiver got for it.
		deliver := func() (events.Event, request) {
			t.Helper()
			ev := h.publish(ctx, survey, events.TypeSessionSubmitted)
			waitFor(t, "the delivery to succeed", func() bool {
				ds := h.deliveries("event_id = $1 AND webhook_id = $2", ev.ID, e.ID)
				return len(ds) == 1 && ds[0].Status == StatusSucceeded
			})
			for _, r := range rc.requests() {
				if r.Header.Get(webhook.HeaderID) == ev.ID {
					return ev, r
				}
			}
			t.Fatalf("the receiver did not get event %s", ev.ID)
			return ev, request{}
		}
		verifyWith := func(req request, ev events.Event, pub string) {
			t.Helper()
			v := newVerifier(t, webhook.VerifierConfig{PublicKeys: []string{pub}, JWTSecret: jwtSecret, Audience: e.URL})
			got, err := v.Verify(req.Header, req.Body)
			if err != nil {
				t.Fatalf("Verify with the public key alone: %v", err)
			}
			if got.ID != ev.ID || got.Claims.SurveyID != survey {
				t.Errorf("verified %+v, want event %s of %s", got, ev.ID, survey)
			}
		}
		// byHand checks each v1a entry with crypto/ed25519 against the public keys, in order.
		byHand := func(req request, pubs ...string) {
			t.Helper()
			sigs := strings.Fields(req.Header.Get(webhook.HeaderSignature))
			if len(sigs) != len(pubs) {
				t.Fatalf("webhook-signature %q: %d entries, want %d", req.Header.Get(webhook.HeaderSignature), len(sigs), len(pubs))
			}
			content := req.Header.Get(webhook.HeaderID) + "." + req.Header.Get(webhook.HeaderTimestamp) + "." + string(req.Body)
			for i, pub := range pubs {
				enc, ok := strings.CutPrefix(sigs[i], "v1a,")
				if !ok {
					t.Fatalf("entry %d %q is not v1a", i, sigs[i])
				}
				sig, err := base64.StdEncoding.DecodeString(enc)
				pk, perr := webhook.ParsePublicKey(pub)
				if err != nil || perr != nil || !ed25519.Verify(pk, []byte(content), sig) {
					t.Errorf("entry %d does not verify with public key %d (%v, %v)", i, i, err, perr)
				}
			}
		}

		ev, req := deliver()
		verifyWith(req, ev, firstPub)
		byHand(req, firstPub)
		// A receiver with only the v1 machinery (a whsec_ secret) cannot accept it.
		v1 := newVerifier(t, webhook.VerifierConfig{Secrets: []string{webhook.NewSecret()}})
		if _, err := v1.Verify(req.Header, req.Body); err == nil {
			t.Error("a v1a delivery verified with an unrelated whsec_ secret")
		}

		rotated, err := owner.RotateSecret(ctx, survey, e.ID, time.Now().Add(endpoints.DefaultRotationGrace), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		secondPub, err := rotated.PublicKey()
		if err != nil || secondPub == firstPub {
			t.Fatalf("rotated public key %q, %v", secondPub, err)
		}
		ev, req = deliver()
		byHand(req, secondPub, firstPub)
		verifyWith(req, ev, secondPub)
		verifyWith(req, ev, firstPub)

		// After the overlap only the new key signs.
		if _, err := db.Exec(ctx, "UPDATE webhooks SET previous_secret_until = $1 WHERE id = $2",
			store.Micros(time.Now().Add(-time.Second)), e.ID); err != nil {
			t.Fatal(err)
		}
		ev, req = deliver()
		byHand(req, secondPub)
		verifyWith(req, ev, secondPub)
		old := newVerifier(t, webhook.VerifierConfig{PublicKeys: []string{firstPub}})
		if _, err := old.Verify(req.Header, req.Body); err == nil {
			t.Error("after the overlap a delivery verified with the retired public key")
		}
	})
}
