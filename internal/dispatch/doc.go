// Package dispatch is the delivery engine: it consumes survey events from the shared JetStream
// consumer, fans each out to the survey's webhook endpoints, signs and POSTs every attempt with
// pkg/webhook, and records deliveries and their attempt log in the store.
//
// # Flow
//
// A message is decoded (envelope fields only, never the recall in data) and matched against
// the survey's enabled endpoints subscribed to its type, read through a cache that lives about
// a second so that PATCH, secret rotation and disabling take effect quickly without a query per
// message. Each endpoint becomes a delivery with a deterministic id (DeliveryID), so a
// redelivered message upserts instead of duplicating. The first attempt is made straight from
// the message; its outcome goes to the result writer, which records deliveries and attempts in
// batches (one transaction every few milliseconds) and acks the messages only after the commit.
//
// # Retries live in the store, not in JetStream
//
// A failed first attempt is recorded as a pending delivery with next_attempt_at and its message
// is acked: a nak-delayed message would count against the consumer's MaxAckPending for hours.
// The retry scheduler polls the store for due pending deliveries (replays inserted by the API
// included), claims them with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so any number of
// dispatchers share the work) and attempts them. Retries therefore survive the restart of any
// process. A claim takes each endpoint's oldest due deliveries from a partial index, so it
// costs the same with a thousand due deliveries or a million, whatever the planner's
// statistics (claimDue); while a backlog lasts the scheduler claims again as soon as attempts
// free room, not at the next poll.
//
// # Isolation
//
// Concurrency bounds attempts in flight per process and EndpointConcurrency bounds them per
// endpoint. A delivery whose endpoint is full waits at most SlowAfter for a slot; after that
// the endpoint counts as congested and its deliveries are parked in the store (pending, no
// attempt counted) until it has room again, so a slow or dead endpoint never holds the
// workers that healthy endpoints need. The retry scheduler claims no more of an endpoint's
// due deliveries than the process has room for, so parked deliveries of a stuck endpoint stay
// in the store instead of churning.
//
// # Outcomes
//
// 2xx delivers; 410 Gone disables the endpoint and fails the delivery; 429 and 503 with
// Retry-After push the next attempt at least that far; anything else is retried per the
// schedule (with jitter) until it runs out and the delivery fails. An endpoint failing
// DisableAfterFailures times in a row over at least DisableAfter is disabled; events that
// arrive for a disabled endpoint are recorded as skipped.
package dispatch
