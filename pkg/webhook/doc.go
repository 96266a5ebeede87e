// Package webhook signs, sends and verifies Dispatch24 webhook deliveries.
//
// A delivery is a POST of a JSON event with these headers:
//
//	Content-Type: application/json
//	User-Agent: Dispatch24/<version>
//	Authorization: Bearer <JWT>        (when the survey has a jwtSecret)
//	webhook-id: <event id>             (the same on every attempt and replay)
//	webhook-timestamp: <unix seconds of this attempt>
//	webhook-signature: v1,<base64 HMAC-SHA256> [v1,<...> while a secret rotates]
//	               or: v1a,<base64 Ed25519>   [v1a,<...> while a key rotates]
//	traceparent: <W3C trace context>
//
// The webhook-* headers follow the Standard Webhooks specification. The JWT is HS256-signed with
// the survey's jwtSecret; its aud is the webhook URL and its bodySha256 claim binds it to the
// exact body.
//
// # Signature schemes
//
// Both schemes sign the same content, "<webhook-id>.<webhook-timestamp>.<body>", and an
// endpoint's signatureScheme picks one:
//
//   - v1 (the default) is symmetric: the signature is the HMAC-SHA256 of the content keyed with
//     the base64-decoded part of the endpoint's "whsec_" secret, which the sender and the
//     receiver share. Any Standard Webhooks library verifies it.
//   - v1a is asymmetric: the signature is the Ed25519 signature (RFC 8032) of the content by the
//     endpoint's signing key, which never leaves Dispatch24; the receiver holds only the public
//     key, which cannot sign. Use it when whoever runs the receiver should not be able to forge
//     deliveries, or when several parties verify the same endpoint.
//
// The keys are written as Standard Webhooks writes them: "whsec_" and the standard base64 of a
// 24- to 64-byte secret (v1); "whsk_" and the standard base64 of the 64-byte Ed25519 private key,
// seed then public key (v1a, sender only); "whpk_" and the standard base64 of the 32-byte public
// key (v1a, receivers). NewSecret and NewSigningKey make them, PublicKeyOf derives a whpk_ key
// from its whsk_ key, and DecodeSecret, ParseSigningKey and ParsePublicKey check them. Sign, and
// the Client through Request.Secrets, choose the scheme by each secret's prefix.
//
// Rotation works alike for both: while an endpoint's secret or key rotates (24 hours), every
// delivery carries one signature per key, the new one first, separated by spaces, such as
// "v1a,<new> v1a,<old>". A receiver accepts a delivery when any listed signature verifies with
// any secret or public key it is configured with, so it can switch to the new key at any time in
// the overlap. Moving an endpoint from v1 to v1a is a rotation too: during the overlap deliveries
// carry "v1,<...> v1a,<...>" and verify with either the old secret or the new public key.
//
// # Receiving
//
// A receiver verifies the exact body bytes before parsing them, then deduplicates on the
// webhook-id, because delivery is at least once:
//
//	v, err := webhook.NewVerifier(webhook.VerifierConfig{
//		Secrets:   []string{os.Getenv("WEBHOOK_SECRET")}, // v1: the endpoint's whsec_ secret
//		// or, for a v1a endpoint, its whpk_ public key instead:
//		// PublicKeys: []string{os.Getenv("WEBHOOK_PUBLIC_KEY")},
//		JWTSecret: os.Getenv("WEBHOOK_JWT_SECRET"), // optional
//		Audience:  "https://example.org/webhook",   // the URL you registered
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	http.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(io.LimitReader(r.Body, webhook.DefaultMaxBodyBytes))
//		if err != nil {
//			http.Error(w, "bad body", http.StatusBadRequest)
//			return
//		}
//		d, err := v.Verify(r.Header, body)
//		if err != nil {
//			http.Error(w, "unauthorized", http.StatusUnauthorized)
//			return
//		}
//		if alreadySeen(d.ID) {
//			w.WriteHeader(http.StatusOK) // a retry of something already handled
//			return
//		}
//		// d.Claims.SurveyID, d.Claims.Subject (the username), ... then json.Unmarshal(body, ...)
//		w.WriteHeader(http.StatusNoContent)
//	})
//
// # Event bodies
//
// The body is pkg/events' Event: id, type, timestamp, surveyId, then the type's own fields.
// Survey events carry sessionId, userId, username and submissionId, and
// survey.session.submitted the stored submission in data. The operational events, to which
// an endpoint subscribes like any type, carry their fields in data: webhook.disabled
// {"webhookId","reason"} (an endpoint of the survey was disabled) and delivery.exhausted
// {"webhookId","deliveryId","eventId","attempts","lastError"} (a delivery ended failed). They
// are never sent to the endpoint they are about.
//
// Verifier.Middleware does the reading and verifying for a handler. A delivery listing more than
// MaxAsymmetricSignatures v1a signatures is refused before it can cost more Ed25519
// verifications than that. Errors wrap
// ErrMissingHeaders, ErrInvalidSignature, ErrTimestampOutOfRange, ErrInvalidToken or
// ErrBodyMismatch. Answer 2xx only once the event is safely stored; any other status, a
// redirect, or a timeout makes Dispatch24 retry later, and 410 Gone disables the endpoint.
// examples/receiver is a complete receiver.
//
// # Sending
//
// Client.Send makes one attempt and classifies its outcome into a Result. Its dialer refuses
// loopback, private and other non-public addresses at connection time (see IsBlocked), and
// ValidateURL applies the same rule when a URL is registered.
package webhook
