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
//	traceparent: <W3C trace context>
//
// The webhook-* headers follow the Standard Webhooks specification: the signature is the
// HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" keyed with the base64-decoded part of
// the endpoint's "whsec_" secret, so any Standard Webhooks library verifies it too. The JWT is
// HS256-signed with the survey's jwtSecret; its aud is the webhook URL and its bodySha256 claim
// binds it to the exact body.
//
// # Receiving
//
// A receiver verifies the exact body bytes before parsing them, then deduplicates on the
// webhook-id, because delivery is at least once:
//
//	v, err := webhook.NewVerifier(webhook.VerifierConfig{
//		Secrets:   []string{os.Getenv("WEBHOOK_SECRET")},
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
// Verifier.Middleware does the reading and verifying for a handler. Errors wrap
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
