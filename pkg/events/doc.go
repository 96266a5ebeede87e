// Package events defines the survey events Dispatch24 publishes and the JetStream topology
// they travel through. Receivers and the dispatcher share the envelope; only the API publishes.
//
// # Envelope
//
// Event is the JSON body every webhook receives (CONTRACT section 6), version 1. Its ID is
// unique per event and is the Standard Webhooks webhook-id on every attempt and replay.
//
// # Operational events
//
// Besides the survey's own events, Dispatch24 reports on its endpoints with two operational
// event types that endpoints subscribe to like any other: webhook.disabled (an endpoint was
// disabled) and delivery.exhausted (a delivery ended failed). Their fields are in data
// (WebhookDisabledData, DeliveryExhaustedData), beside the usual id, type, timestamp and
// surveyId, so the envelope keeps one shape for every type:
//
//	{"id":"evt_…","type":"webhook.disabled","timestamp":"…","surveyId":"demo-survey",
//	 "data":{"webhookId":"wh_…","reason":"the receiver answered 410 Gone"}}
//	{"id":"evt_…","type":"delivery.exhausted","timestamp":"…","surveyId":"demo-survey",
//	 "data":{"webhookId":"wh_…","deliveryId":"dlv_…","eventId":"evt_…","attempts":10,"lastError":"http_error"}}
//
// They are written to the outbox in the transaction that disables the endpoint or records
// the failed delivery, and they go to the survey's endpoints that list their type in events,
// never to the endpoint data.webhookId names. A delivery of an operational event that ends
// failed makes no delivery.exhausted (two failing endpoints would otherwise report each
// other's failures forever); an endpoint disabled while receiving one still makes a
// webhook.disabled, which happens once per disabling.
//
// # Topology
//
//   - Stream DISPATCH24_EVENTS, subjects "dispatch24.events.>"; one subject per survey and
//     type: dispatch24.events.<surveyId>.<type>, e.g.
//     dispatch24.events.demo-survey.survey.session.submitted.
//   - Retention: work queue. A message leaves the stream once a dispatcher has recorded its
//     deliveries in the store and acked it; the store is the archive that retries and
//     replays read from. MaxAge (the binaries: RETENTION; default 7 days) bounds what an
//     absent dispatcher fleet leaves behind, and MaxBytes/MaxMsgs its size. A full stream
//     discards new messages, not old ones: the publish fails and the event stays in the
//     outbox until dispatchers make room, instead of an event nobody took being dropped.
//   - File storage; replicas 1 on the embedded server, up to 3 on a cluster.
//   - Duplicate window 2 minutes: publishes carry Nats-Msg-Id = event id, so the outbox
//     relay re-publishing after a lost ack does not duplicate. Older duplicates are caught by
//     the dispatcher, whose deliveries are keyed by event and endpoint.
//   - Durable pull consumer "dispatcher", shared by every dispatcher process: explicit acks,
//     AckWait long enough for a whole delivery round (workers also send in-progress acks),
//     unlimited redeliveries (a failing endpoint never holds a message: its retries are
//     parked in the store), MaxAckPending bounding in-flight messages.
//
// Both are created idempotently at start by EnsureStream and EnsureConsumer; a server older
// than MinServerVersion is refused with a clear error.
//
// # Headers
//
// Every message carries its type (HeaderEventType) and, when known, the webhooks version the
// event was accepted at (HeaderWebhooksVersion), which tells the dispatcher how recent its
// copy of the survey's endpoints must be. Headers stay between the API and the dispatcher:
// receivers get the envelope only.
//
// # Trace context
//
// Publish injects the W3C trace context of its context into the message headers (traceparent,
// tracestate); Extract continues it on the consumer side.
package events
