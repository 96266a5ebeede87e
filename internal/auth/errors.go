package auth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
)

// Sentinel errors of sign-in and token checks. Handlers turn them into 401 problems with the
// codes below; callers outside HTTP (the ops console) branch on them with errors.Is.
var (
	// ErrInvalidCredentials: unknown account, wrong password, disabled account. One error for
	// all of them, so a failed sign-in does not reveal which accounts exist.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrInvalidToken: malformed, badly signed, of the wrong type, issuer or algorithm, or of an
	// account that no longer exists or is disabled.
	ErrInvalidToken = errors.New("invalid token")
	// ErrTokenExpired: a well-signed token past its expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenRevoked: a refresh token that was signed out or revoked.
	ErrTokenRevoked = errors.New("token revoked")
)

// RateLimitError is returned when an account key and client address have failed too often.
type RateLimitError struct {
	// RetryAfter is how long until the next attempt is allowed.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; retry after %s", e.RetryAfter.Round(time.Second))
}

// BusyError is returned when a password could not be checked or hashed because too many
// checks run at once (password.ErrBusy, which it wraps); the client retries later.
type BusyError struct {
	// RetryAfter is the suggested wait.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string { return password.ErrBusy.Error() }

// Unwrap makes errors.Is(err, password.ErrBusy) true.
func (e *BusyError) Unwrap() error { return password.ErrBusy }

// BusyProblem is the 503 answered when the hashing bound is full, with Retry-After.
func BusyProblem(retryAfter time.Duration) *httpapi.Problem {
	p := httpapi.NewProblem(http.StatusServiceUnavailable, "busy", "too many password checks at once; retry shortly")
	p.RetryAfter = retryAfter
	return p
}

// problem turns the errors of this package into the problems clients see; anything else is
// returned as it is (a 500 for the router).
func problem(err error) error {
	var (
		rl   *RateLimitError
		busy *BusyError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &busy):
		return BusyProblem(busy.RetryAfter)
	case errors.As(err, &rl):
		return httpapi.TooManyRequests("too_many_attempts", "too many failed sign-ins; wait before trying again", rl.RetryAfter)
	case errors.Is(err, ErrInvalidCredentials):
		return httpapi.Unauthorized("invalid_credentials", "the credentials were not recognised")
	case errors.Is(err, ErrTokenExpired):
		return httpapi.Unauthorized("token_expired", "the token has expired")
	case errors.Is(err, ErrTokenRevoked):
		return httpapi.Unauthorized("token_revoked", "the token has been revoked")
	case errors.Is(err, ErrInvalidToken):
		return httpapi.Unauthorized("invalid_token", "the token is not valid")
	}
	return err
}
