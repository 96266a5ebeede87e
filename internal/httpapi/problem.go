package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Problem is an RFC 9457 problem document and the error type handlers return for every
// expected failure. Code is the stable machine-readable string clients branch on.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Code      string       `json:"code"`
	Errors    []FieldError `json:"errors,omitempty"`
	RequestID string       `json:"requestId,omitempty"`

	// RetryAfter, when set, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration `json:"-"`
}

// FieldError names one bad field of a request; Line is set for CSV rows.
type FieldError struct {
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Code)
}

// NewProblem builds a problem; the title is the status text.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   "https://dispatch24.dev/problems/" + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// BadRequest is a 400 with the given code.
func BadRequest(code, detail string) *Problem { return NewProblem(http.StatusBadRequest, code, detail) }

// Validation is a 400 validation_failed listing the bad fields.
func Validation(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusBadRequest, "validation_failed", "the request has invalid fields")
	p.Errors = errs
	return p
}

// Unauthorized is a 401: no or bad credentials; the client refreshes and retries.
func Unauthorized(code, detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, code, detail)
}

// Forbidden is a 403: authenticated but not allowed.
func Forbidden(code, detail string) *Problem { return NewProblem(http.StatusForbidden, code, detail) }

// NotFound is a 404, also used for objects outside the caller's reach.
func NotFound(code, detail string) *Problem { return NewProblem(http.StatusNotFound, code, detail) }

// Conflict is a 409.
func Conflict(code, detail string) *Problem { return NewProblem(http.StatusConflict, code, detail) }

// TooManyRequests is a 429 with Retry-After.
func TooManyRequests(code, detail string, retryAfter time.Duration) *Problem {
	p := NewProblem(http.StatusTooManyRequests, code, detail)
	p.RetryAfter = retryAfter
	return p
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// WriteError turns err into a problem response. A *Problem is written as it is;
// store.ErrNotFound becomes 404 not_found; anything else is logged and answered with a 500
// that reveals nothing but the request id.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var p *Problem
	switch {
	case errors.As(err, &p):
		cp := *p
		p = &cp
	case errors.Is(err, store.ErrNotFound):
		p = NotFound("not_found", "no such object")
	case errors.Is(err, errBodyTooLarge):
		p = NewProblem(http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
	default:
		// The route pattern, never the raw path: some paths carry tokens.
		logger.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "route", r.Pattern)
		p = NewProblem(http.StatusInternalServerError, "internal", "an internal error occurred; quote the request id when reporting it")
	}
	p.RequestID = RequestID(r.Context())
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
