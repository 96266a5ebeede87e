package dispatch

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// Span attributes. Ids go on spans, never on metrics.
var (
	attrMessagingSystem = attribute.String("messaging.system", "nats")
	attrSubject         = attribute.Key("messaging.destination.name")
	attrEventID         = attribute.Key("dispatch24.event.id")
	attrEventType       = attribute.Key("dispatch24.event.type")
	attrSurveyID        = attribute.Key("dispatch24.survey.id")
	attrDeliveryID      = attribute.Key("dispatch24.delivery.id")
	attrWebhookID       = attribute.Key("dispatch24.webhook.id")
	attrAttempt         = attribute.Key("dispatch24.attempt")
	attrOutcome         = attribute.Key("dispatch24.attempt.outcome")
	attrStatusCode      = attribute.Key("http.response.status_code")
)

const eventTypeHeader = events.HeaderEventType

func headerCarrier(h map[string][]string) propagation.TextMapCarrier { return events.HeaderCarrier(h) }

// attempt makes one attempt of j and decides what follows it. ctx cancels the attempt (at the
// end of a shutdown's drain); a cancelled attempt is not counted and the delivery is parked.
func (d *Dispatcher) attempt(ctx context.Context, j *job) outcome {
	n := j.attempts + 1
	spanCtx, span := d.tracer.Start(j.ev.trace, "dispatch attempt", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrDeliveryID.String(j.id), attrWebhookID.String(j.ep.ID), attrAttempt.Int(n)))
	defer span.End()

	hdr := make(http.Header, 2)
	d.cfg.Propagator.Inject(spanCtx, propagation.HeaderCarrier(hdr))
	res := d.cfg.Client.Send(ctx, &webhook.Request{
		URL:          j.ep.URL,
		MessageID:    j.ev.ID,
		EventType:    j.ev.Type,
		Body:         j.ev.body,
		Secrets:      j.ep.secrets(d.cfg.NowFunc()),
		JWTKey:       j.jwtKey,
		Issuer:       d.cfg.Issuer,
		Username:     j.ev.Username,
		SurveyID:     j.ev.SurveyID,
		SessionID:    j.ev.SessionID,
		UserID:       j.ev.UserID,
		SubmissionID: j.ev.SubmissionID,
		Header:       hdr,
	})
	end := res.StartedAt.Add(res.Duration)
	if res.Code == webhook.CodeCanceled {
		span.SetStatus(codes.Error, "cancelled at shutdown")
		o := d.baseOutcome(j, end)
		o.d.Status = StatusPending
		o.d.NextAttemptAt = end
		return o
	}

	code := string(res.Code)
	label := code
	if res.Delivered {
		label = "delivered"
	}
	c, ok := d.attemptCounters[label]
	if !ok {
		c = d.cfg.Metrics.Attempts.WithLabelValues(label)
	}
	c.Inc()
	d.cfg.Metrics.AttemptDuration.Observe(res.Duration.Seconds())
	span.SetAttributes(attrOutcome.String(label))
	if res.StatusCode != 0 {
		span.SetAttributes(attrStatusCode.Int(res.StatusCode))
	}

	o := d.baseOutcome(j, end)
	o.hasAttempt = true
	o.at = end
	o.a = store.Attempt{
		DeliveryID:   j.id,
		N:            n,
		StartedAt:    res.StartedAt,
		Duration:     res.Duration,
		StatusCode:   res.StatusCode,
		Error:        AttemptError(&res),
		ResponseBody: delivery.ResponseBodyText(res.ResponseBody),
	}
	o.d.Attempts = n
	o.d.LastStatusCode = res.StatusCode
	o.d.LastError = code
	if res.Delivered {
		o.d.Status = StatusSucceeded
		o.effect = effectSuccess
		return o
	}
	class := classOf(&res)
	o.a.Error = notRetried(o.a.Error, &res, class)
	switch class {
	case classDisable:
		o.d.Status = StatusFailed
		o.effect = effectGone
	case classFailNow:
		o.d.Status = StatusFailed
		o.effect = effectFailure
	default:
		o.effect = effectFailure
		if next, ok := d.policy.next(n, end, res.RetryAfter); ok {
			o.d.Status = StatusPending
			o.d.NextAttemptAt = next
		} else {
			o.d.Status = StatusFailed
		}
	}
	span.SetStatus(codes.Error, res.Detail())
	d.failures.failed(spanCtx, j.ep.ID, j.id, n, code, res.Detail(), o.d.Status)
	return o
}

// AttemptError is the attempt log's error: the code, then after ": " the failure's detail
// without internal addresses (webhook.Result.Reason), such as "connection_error: connection
// refused". blocked_address and dns_error stay bare codes (CONTRACT: error "blocked_address");
// the delivery's lastError is always the bare code. Clients match the part before ":".
func AttemptError(res *webhook.Result) string {
	if res.Delivered {
		return ""
	}
	if res.Reason == "" {
		return string(res.Code)
	}
	return string(res.Code) + ": " + res.Reason
}
