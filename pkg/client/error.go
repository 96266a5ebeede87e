package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an answer of the API that is not a success: the request it answers and the
// problem+json document (RFC 9457) the API sent. A redirect is an Error too (3xx, with
// Location): the client never follows one with a token.
type Error struct {
	// Method and Path name the request (the path without its query).
	Method string
	Path   string
	// StatusCode is the HTTP status.
	StatusCode int
	// The problem's fields. Code is the stable, machine-readable reason ("validation_failed",
	// "delivery_not_found", …); branch on it, not on Title or Detail.
	Type      string
	Title     string
	Code      string
	Detail    string
	RequestID string
	// Errors names the bad fields of a validation_failed answer.
	Errors []FieldError
	// RetryAfter is the Retry-After of a 429 or 503 answer; zero when absent.
	RetryAfter time.Duration
	// Location is where a redirect pointed.
	Location string
}

// FieldError is one bad field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Line is the CSV line of an import's error; zero otherwise.
	Line int `json:"line,omitempty"`
}

// problem is the problem+json document as sent.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Code      string       `json:"code"`
	Errors    []FieldError `json:"errors"`
	RequestID string       `json:"requestId"`
}

func newError(method, path string, resp *http.Response, raw []byte) *Error {
	var p problem
	_ = json.Unmarshal(raw, &p) // an answer that is not a problem still makes an Error
	e := &Error{
		Method: method, Path: path, StatusCode: resp.StatusCode,
		Type: p.Type, Title: p.Title, Code: p.Code, Detail: p.Detail, RequestID: p.RequestID, Errors: p.Errors,
		Location: resp.Header.Get("Location"),
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// Error returns one line: the request, the status and code, the detail and the bad fields.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.StatusCode), " ", "_"))
	}
	msg := fmt.Sprintf("%s %s: the API answered %d %s", e.Method, e.Path, e.StatusCode, code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	for _, fe := range e.Errors {
		msg += fmt.Sprintf("; %s: %s", fe.Field, fe.Message)
	}
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		msg += fmt.Sprintf(" (a redirect to %q, not followed)", e.Location)
	}
	return msg
}

// Field returns the message of the named field's error, and whether there is one.
func (e *Error) Field(name string) (string, bool) {
	for _, fe := range e.Errors {
		if fe.Field == name {
			return fe.Message, true
		}
	}
	return "", false
}

// IsNotFound reports whether err is an API answer 404 (no such thing, or not visible to the
// token's account).
func IsNotFound(err error) bool { return HasStatus(err, http.StatusNotFound) }

// HasStatus reports whether err is an API answer with the status code.
func HasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == status
}
