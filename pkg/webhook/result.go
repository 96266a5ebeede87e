package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrorCode classifies a failed attempt. It is the "error" of the attempt log.
type ErrorCode string

// The error codes of a failed attempt.
const (
	// CodeHTTPStatus: the receiver answered with a status other than 2xx or 3xx.
	CodeHTTPStatus ErrorCode = "http_error"
	// CodeRedirect: the receiver answered 3xx. Redirects are never followed.
	CodeRedirect ErrorCode = "redirect"
	// CodeTimeout: no complete answer within the attempt's timeout.
	CodeTimeout ErrorCode = "timeout"
	// CodeConnection: the connection was refused, reset or closed early.
	CodeConnection ErrorCode = "connection_error"
	// CodeDNS: the host name did not resolve.
	CodeDNS ErrorCode = "dns_error"
	// CodeTLS: the TLS handshake failed, such as on an untrusted or mismatched certificate.
	CodeTLS ErrorCode = "tls_error"
	// CodeBlockedAddress: the host resolved to an address that is not public and not allowed.
	CodeBlockedAddress ErrorCode = "blocked_address"
	// CodeInvalidRequest: the request could not be built (bad URL, bad secret, signing failed).
	// Retrying does not help.
	CodeInvalidRequest ErrorCode = "invalid_request"
	// CodeCanceled: the caller's context was canceled, such as on shutdown. The attempt says
	// nothing about the receiver.
	CodeCanceled ErrorCode = "canceled"
)

// Result is the outcome of one delivery attempt.
type Result struct {
	// Delivered is true for a 2xx answer.
	Delivered bool
	// StatusCode is the answer's status; 0 when there was none.
	StatusCode int
	// Code classifies a failure; empty when Delivered.
	Code ErrorCode
	// Err is the error behind Code when no answer arrived (nil otherwise). Its text holds no
	// secrets or bodies and is fit for the attempt log.
	Err error
	// Reason describes a failure in one line fit for the attempt log, which survey staff read:
	// "connection refused", "no complete answer within 15s", "TLS: certificate signed by an unknown
	// authority", "HTTP 503 Service Unavailable". It never names the address dialled or a DNS
	// server (Err does, for operators' logs). Empty when Delivered, and for blocked_address and
	// dns_error, whose code says it all (their message is HostRefusal's, as at registration).
	Reason string
	// ResponseBody is the start of the answer's body, at most MaxResponseBodyBytes.
	ResponseBody []byte
	// Gone is true for 410 Gone: the receiver wants no more deliveries; disable the endpoint.
	Gone bool
	// RetryAfter is the delay a 429 or 503 answer asked for with Retry-After, capped by
	// ClientConfig.MaxRetryAfter; 0 when none was asked for.
	RetryAfter time.Duration
	// StartedAt is when the attempt began; webhook-timestamp and the JWT's iat are taken from it.
	StartedAt time.Time
	// Duration is how long the attempt took, up to reading the kept part of the body.
	Duration time.Duration
}

// Detail describes a failed attempt in one line for the attempt log; empty when Delivered.
func (r *Result) Detail() string {
	switch {
	case r.Delivered:
		return ""
	case r.Err != nil:
		return r.Err.Error()
	case r.StatusCode != 0:
		return "HTTP " + strconv.Itoa(r.StatusCode) + " " + http.StatusText(r.StatusCode)
	default:
		return string(r.Code)
	}
}

// classify names the failure of a request that got no answer. parent is the caller's context,
// before the attempt's timeout was added.
func classify(parent context.Context, err error) ErrorCode {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return CodeBlockedAddress
	case errors.Is(parent.Err(), context.Canceled):
		return CodeCanceled
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		return CodeDNS
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return CodeTimeout
	case isTLSError(err):
		return CodeTLS
	default:
		return CodeConnection
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isTLSError(err error) bool {
	var (
		verifyErr   *tls.CertificateVerificationError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &unknownCA), errors.As(err, &hostnameErr), errors.As(err, &invalidErr):
		return true
	}
	// Alerts the server sends arrive as an unexported type: "remote error: tls: ...".
	return strings.Contains(err.Error(), "tls: ")
}

// reason is Result.Reason of an attempt that got no answer: a fixed description built from
// the error's type, never its text, so no dialled address, resolver or bytes of the
// receiver's reach the attempt log. timeout is the attempt's bound.
func reason(code ErrorCode, err error, timeout time.Duration) string {
	switch code {
	case CodeBlockedAddress, CodeDNS, CodeCanceled:
		return ""
	case CodeTimeout:
		var dnsErr *net.DNSError
		var opErr *net.OpError
		switch {
		case errors.As(err, &dnsErr):
			return "while looking the host up"
		case errors.As(err, &opErr) && opErr.Op == "dial":
			return "while connecting"
		case strings.Contains(err.Error(), "TLS handshake timeout"):
			return "in the TLS handshake"
		}
		return "no complete answer within " + timeout.String()
	case CodeTLS:
		return tlsReason(err)
	case CodeInvalidRequest:
		// Built here from the endpoint's own configuration: no network detail.
		return err.Error()
	}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		// "connection refused", "connection reset by peer", "no route to host", "broken pipe"…
		return errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF: the connection closed before a complete answer"
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "malformed HTTP answer"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "plain HTTP answer to an https URL"
	}
	return "connection failed"
}

// tlsReason names a TLS failure from a fixed vocabulary.
func tlsReason(err error) string {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
	)
	switch {
	case errors.As(err, &unknownCA):
		return "TLS: certificate signed by an unknown authority"
	case errors.As(err, &hostnameErr):
		return "TLS: certificate is not valid for the URL's host"
	case errors.As(err, &invalidErr) && invalidErr.Reason == x509.Expired:
		return "TLS: certificate has expired or is not yet valid"
	case errors.As(err, &invalidErr):
		return "TLS: certificate is not valid"
	case errors.As(err, &recordErr):
		return "TLS: the server did not answer in TLS"
	case errors.As(err, &alertErr):
		return "TLS: " + strings.TrimPrefix(alertErr.Error(), "tls: ")
	}
	// Alerts the server sends arrive as an unexported type, "remote error: tls: <alert>",
	// where <alert> is one of TLS's fixed alert names.
	if _, alert, ok := strings.Cut(err.Error(), "remote error: tls: "); ok && len(alert) <= 64 {
		return "TLS: the server refused the handshake (" + alert + ")"
	}
	return "TLS: handshake failed"
}
