package dispatch

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// Delivery statuses (deliveries.status): the store's one status set.
const (
	StatusPending   = store.DeliveryPending
	StatusSucceeded = store.DeliverySucceeded
	StatusFailed    = store.DeliveryFailed
	StatusSkipped   = store.DeliverySkipped
)

// Error codes the engine writes itself, beside pkg/webhook's attempt codes.
const (
	// CodeEndpointDisabled: the endpoint was disabled; new events are skipped and due retries
	// fail with it.
	CodeEndpointDisabled = "endpoint_disabled"
	// CodeEndpointDeleted: the endpoint no longer exists.
	CodeEndpointDeleted = "endpoint_deleted"
	// CodeEventMissing: a stored delivery's event is not in the events archive.
	CodeEventMissing = "event_missing"
	// CodeAboutEndpoint: an operational event is about this endpoint, which never gets it; it
	// is recorded skipped only for a FIFO endpoint, whose lane would otherwise wait for it.
	CodeAboutEndpoint = "about_this_endpoint"
)

// errorClass is what a failed attempt decides for its delivery (see "Error classes" in the
// package doc). classOf decides it from the attempt's result alone; the attempt acts on it.
type errorClass uint8

const (
	// classRetry: the next attempt follows the schedule (at least Retry-After away); the
	// delivery fails once the schedule is used up.
	classRetry errorClass = iota
	// classFailNow: the same request would get the same answer; the delivery fails after this
	// attempt. A replay sends it again once someone has changed something.
	classFailNow
	// classDisable: the receiver wants no more deliveries; the delivery fails and the endpoint
	// is disabled.
	classDisable
)

// String names the class for logs and the attempt log.
func (c errorClass) String() string {
	switch c {
	case classFailNow:
		return "fail now"
	case classDisable:
		return "disable"
	default:
		return "retry"
	}
}

// classOf is the class of a failed attempt (res.Delivered false, not cancelled). An answer
// that says when to come back (Retry-After) is always retried; 410 disables; an invalid
// request (built the same way each time) and 413/415 (the body, identical on every attempt,
// is what is refused) fail now; everything else, 400, 401, 403, 404, 405, 422, redirects, 5xx,
// timeouts, connection, DNS, TLS and address failures, is retried: each can end without
// anyone touching the delivery (a deploy finishes, a secret or clock is fixed on the
// receiver's side, a certificate is renewed) and every attempt is signed afresh.
func classOf(res *webhook.Result) errorClass {
	switch {
	case res.RetryAfter > 0:
		return classRetry
	case res.Gone:
		return classDisable
	case res.Code == webhook.CodeInvalidRequest:
		return classFailNow
	case res.StatusCode == http.StatusRequestEntityTooLarge, res.StatusCode == http.StatusUnsupportedMediaType:
		return classFailNow
	default:
		return classRetry
	}
}

// notRetried adds to an attempt log error (AttemptError) why no retry follows when the
// attempt's class ends the delivery at once: "http_error: HTTP 413 Request Entity Too Large;
// not retried: …". The part before the first ":" stays the bare code.
func notRetried(attemptErr string, res *webhook.Result, c errorClass) string {
	var why string
	switch {
	case c == classDisable:
		why = "not retried: the receiver answered 410 Gone, the endpoint is disabled"
	case c != classFailNow:
		return attemptErr
	case res.Code == webhook.CodeInvalidRequest:
		why = "not retried: the request cannot be built until the endpoint is changed"
	default:
		why = "not retried: the receiver refuses this body, which is the same on every attempt"
	}
	if attemptErr == string(res.Code) {
		return attemptErr + ": " + why
	}
	return attemptErr + "; " + why
}

// event is what every delivery of one event shares.
type event struct {
	envelope
	body []byte
	// trace carries the span the attempts continue: the message's "dispatch process" span,
	// or for stored deliveries the trace context saved with the event.
	trace context.Context
}

// job is one delivery to attempt (or to park).
type job struct {
	ev     *event
	ep     *endpoint
	jwtKey []byte
	id     string

	// The stored delivery's state before this attempt; zero for a new delivery.
	attempts       int
	lastStatusCode int
	lastError      string
	createdAt      time.Time

	// msg is the message this delivery came from; nil for stored deliveries.
	msg *inbound
	// startBy is when a stored delivery's lease is too short for another attempt; the job
	// is handed back instead. Zero for new deliveries.
	startBy time.Time
	// slot is the endpoint slot the job holds while it runs.
	slot *endpointSlot
	// lane: the delivery is in its endpoint's FIFO lane (store.Delivery.Lane).
	lane bool
}

// stored reports whether the job came from the store (a retry, a parked delivery or a replay).
func (j *job) stored() bool { return j.msg == nil }

// webhookEffect is what an outcome means for its endpoint's failure counters.
type webhookEffect uint8

const (
	effectNone webhookEffect = iota
	effectSuccess
	effectFailure
	effectGone
)

// outcome is a result for the writer: the delivery's new state, the attempt made (if any), and
// what it means for the endpoint.
type outcome struct {
	d          store.Delivery
	a          store.Attempt
	hasAttempt bool
	effect     webhookEffect
	// at is when the attempt ended, for the endpoint's first_failure_at.
	at     time.Time
	msg    *inbound
	stored bool
	// failing is the endpoint's "counting failures" flag as the job saw it; failingSince its
	// FailingSince.
	failing      bool
	failingSince time.Time
	span         trace.SpanContext
}

// inbound tracks a message until every delivery it fanned out to is recorded; then it is acked.
type inbound struct {
	msg       jetstream.Msg
	received  time.Time
	span      trace.Span
	remaining atomic.Int32
	// progressAt is when the message was last known alive to the server (received or sent an
	// in-progress ack), in Unix nanoseconds.
	progressAt atomic.Int64
	// abandoned is set when a delivery of the message could not be recorded: the message is
	// handed back for redelivery instead of acked.
	abandoned atomic.Bool
}

// done counts one delivery of the message as recorded; the last one acks the message.
func (m *inbound) done(ack func(jetstream.Msg)) {
	if m.remaining.Add(-1) != 0 || m.abandoned.Load() {
		return
	}
	ack(m.msg)
	m.span.End()
}

// abandon hands the message back for redelivery: one of its deliveries could not be recorded.
func (m *inbound) abandon() {
	if m.abandoned.CompareAndSwap(false, true) {
		_ = m.msg.NakWithDelay(5 * time.Second)
		m.span.End()
	}
}

// touch sends an in-progress ack when the message has been held for more than a third of the
// consumer's AckWait, so the server does not redeliver it during a long round.
func (m *inbound) touch(now time.Time, ackWait time.Duration) {
	last := m.progressAt.Load()
	if ackWait <= 0 || now.UnixNano()-last < int64(ackWait/3) {
		return
	}
	if m.progressAt.CompareAndSwap(last, now.UnixNano()) {
		_ = m.msg.InProgress()
	}
}
