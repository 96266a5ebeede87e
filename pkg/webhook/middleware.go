package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
)

// verifiedKey is the context key of the *Verified that Middleware stores.
type verifiedKey struct{}

// Middleware returns a handler that reads the request body (at most MaxBodyBytes), verifies the
// delivery, and calls next with the body restored and the *Verified in the request context (see
// FromContext). A delivery that fails verification gets 400 (missing headers) or 401 (anything
// else), 413 for a body over the limit, and next is not called. Only the kind of failure is
// written back, never the detail.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, v.maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading request body failed", http.StatusBadRequest)
			return
		}
		res, err := v.Verify(r.Header, body)
		if err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, ErrMissingHeaders) {
				status = http.StatusBadRequest
			}
			http.Error(w, failureReason(err), status)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), verifiedKey{}, res))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// FromContext returns the *Verified that Middleware stored in ctx.
func FromContext(ctx context.Context) (*Verified, bool) {
	v, ok := ctx.Value(verifiedKey{}).(*Verified)
	return v, ok
}

// failureReason names the kind of a verification failure without its detail.
func failureReason(err error) string {
	for _, s := range []error{ErrMissingHeaders, ErrInvalidSignature, ErrTimestampOutOfRange, ErrInvalidToken, ErrBodyMismatch} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "webhook verification failed"
}
