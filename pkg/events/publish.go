package events

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderEventType carries the event type on every message, so consumers can route without
// decoding the body.
const HeaderEventType = "Dispatch24-Event-Type"

// HeaderWebhooksVersion carries Message.WebhooksVersion (decimal) when it is set. It is for
// the dispatcher only: receivers get the envelope, never the message headers.
const HeaderWebhooksVersion = "Dispatch24-Webhooks-Version"

// Message is an event ready to publish: the subject, the id used for deduplication, the
// exact envelope bytes, and trace headers captured when the event was created.
type Message struct {
	ID      string
	Type    string
	Subject string
	Payload []byte
	// Trace holds W3C trace context headers (traceparent, tracestate) of the request that
	// created the event; the publish continues that trace.
	Trace map[string]string
	// WebhooksVersion is the store's webhooks version read by the transaction that accepted
	// the event: the dispatcher fans the event out with endpoints read at that version or
	// later, so no webhook change made before the event was accepted is missed. 0: unknown
	// (an event from before versions existed), dispatched with whatever endpoints are at hand.
	WebhooksVersion int64
}

// Publisher publishes events to JetStream and waits for the stream's ack.
type Publisher struct {
	JS jetstream.JetStream
	// Propagator injects trace context; nil uses the OpenTelemetry global.
	Propagator propagation.TextMapPropagator
}

// Publish sends m with Nats-Msg-Id = m.ID and returns once JetStream has stored it.
func (p *Publisher) Publish(ctx context.Context, m Message) error {
	msg := NewMsg(ctx, p.Propagator, m)
	if _, err := p.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(StreamName)); err != nil {
		return fmt.Errorf("publishing event %s: %w", m.ID, err)
	}
	return nil
}

// PublishAsync starts publishing m; the returned future resolves with the stream's ack.
func (p *Publisher) PublishAsync(ctx context.Context, m Message) (jetstream.PubAckFuture, error) {
	msg := NewMsg(ctx, p.Propagator, m)
	f, err := p.JS.PublishMsgAsync(msg, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(StreamName))
	if err != nil {
		return nil, fmt.Errorf("publishing event %s: %w", m.ID, err)
	}
	return f, nil
}

// NewMsg builds the NATS message of m: the stored trace headers first, then the context's
// own span (if any) on top, so the consumer continues the most specific trace.
func NewMsg(ctx context.Context, prop propagation.TextMapPropagator, m Message) *nats.Msg {
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	msg := &nats.Msg{Subject: m.Subject, Data: m.Payload, Header: nats.Header{}}
	for k, v := range m.Trace {
		msg.Header.Set(k, v)
	}
	prop.Inject(ctx, HeaderCarrier(msg.Header))
	msg.Header.Set(HeaderEventType, m.Type)
	if m.WebhooksVersion > 0 {
		msg.Header.Set(HeaderWebhooksVersion, strconv.FormatInt(m.WebhooksVersion, 10))
	}
	return msg
}

// Extract returns ctx carrying the trace context of a consumed message's headers.
func Extract(ctx context.Context, prop propagation.TextMapPropagator, h nats.Header) context.Context {
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	return prop.Extract(ctx, HeaderCarrier(h))
}

// HeaderCarrier adapts nats.Header to OpenTelemetry propagation.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// TraceHeaders captures the trace context of ctx as a map, for storing with an outbox event.
func TraceHeaders(ctx context.Context, prop propagation.TextMapPropagator) map[string]string {
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	carrier := propagation.MapCarrier{}
	prop.Inject(ctx, carrier)
	return carrier
}
