// Package dispatch is the delivery engine: it consumes survey events from the shared JetStream
// consumer, fans each out to the survey's webhook endpoints, signs and POSTs every attempt with
// pkg/webhook, and records deliveries and their attempt log in the store.
//
// # Flow
//
// A message is decoded (envelope fields only, never the recall in data) and matched against
// the survey's endpoints subscribed to its type (see "Which endpoints"). The secrets, sealed in
// the store with SECRETS_KEY (internal/secret), are opened when the cache loads a survey, not
// per delivery. Each endpoint becomes a delivery with a deterministic id (DeliveryID), so a
// redelivered message upserts instead of duplicating. The first attempt is made straight from
// the message; its outcome goes to the result writer, which records deliveries and attempts in
// batches (one transaction every few milliseconds) and acks the messages only after the commit.
//
// # Which endpoints
//
// CONTRACT §8: an event goes to the endpoints as they were when it was accepted; a webhook
// change answered before a submission applies to its event, on every replica, whatever the
// clocks say. Time cannot decide that, so a version does. Precisely: a change whose answer
// came before the submission's request was sent always applies; one made while the request
// was being handled may or may not (the two were concurrent). The store keeps one webhooks version
// (migration 060), moved by triggers in the transaction of every change that decides who gets
// an event or how it is signed: a webhook created or deleted, its url, events, disabled flag or
// secrets changed (by the API, by this engine's disabling, by a survey's deletion), a survey's
// jwtSecret changed. The transaction that accepts an event reads the version and the event
// carries it (events.Message.WebhooksVersion, the Dispatch24-Webhooks-Version header).
//
// The engine keeps each survey's endpoints together with the version read in the same
// statement, hence the same snapshot, and fans an event out with that copy only when its
// version is at least the event's; otherwise it reads the survey again first, one query shared
// by every event waiting for it. A copy is therefore never older than any change that committed
// before the event's transaction read the version. The version is one counter for all surveys,
// so that a survey deleted and created again under the same id cannot meet a copy of its
// predecessor's endpoints with a higher number; a change to one survey makes the others read
// again once, which webhook changes, rare next to events, make cheap.
//
// Messages without the header (published before the version existed) use whatever copy is at
// hand, as before. The copy is still refreshed about every CacheTTL, for what versions do not
// cover: the failure counters that other dispatchers move. Stored deliveries (retries, replays)
// name their endpoint: when the copy lacks it or has it disabled, the survey is read again
// before the delivery is failed, since a replay may name an endpoint created or re-enabled a
// moment ago.
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
// statistics (store.Deliveries.ClaimDue, in the store's drivers); while a backlog lasts the scheduler claims again as soon as attempts
// free room, not at the next poll.
//
// # FIFO endpoints
//
// An endpoint with ordering "fifo" (CONTRACT §8) gets its events one at a time in the order
// they were accepted: the next is sent only once the previous one has succeeded, ended failed
// or been skipped. The hazard: with several dispatchers (or one handling messages
// concurrently), event A accepted before event B's request was sent may have its delivery
// recorded after B's, so "send the oldest pending delivery of the endpoint" would send B first.
// Hence (migration 140):
//
//   - Every event gets a number, events.seq, from a sequence (SQLite: a counter row moved by a
//     trigger) in the INSERT of the transaction that accepts it. If A's 201 was sent before
//     B's request, A's transaction committed before B's began: B's seq is greater.
//   - A FIFO endpoint's deliveries are never attempted from the message. They are stored
//     pending, as lane deliveries (deliveries.lane_seq = their event's seq, store.Delivery.Lane),
//     and the oldest-due claim leaves them out (its partial index excludes them).
//   - The claim takes a lane's head only: its lowest pending lane_seq, when it is due and not
//     leased (the lease is the one attempt in flight; a retry keeps the head pending with a
//     later due time, so the lane waits for it), and only when no event of the survey between
//     the lane's last position below the head and the head, of a type the endpoint subscribes
//     to and not erased, lacks its delivery to the endpoint. Events numbered before the
//     endpoint was created, or before its events or ordering last changed (webhooks.
//     lane_from_seq), are not waited for. Under READ COMMITTED the lease UPDATE rechecks the
//     lease, so of two dispatchers claiming one head only one gets it.
//   - A result that ends a lane delivery (succeeded, failed, skipped) wakes the scheduler at
//     once, so the next head does not wait for a poll.
//
// The guarantee, exactly: for two events A and B of a survey, both to be delivered to a FIFO
// endpoint, where A's 201 was sent before B's request was sent and after the endpoint's
// creation or last change of events or ordering had answered, B's first attempt is made only
// after A's delivery has succeeded, failed or been skipped, provided A's delivery is recorded
// within FIFOGapWait (default 5 minutes) of B's. Events accepted concurrently (neither 201
// before the other's request) may go in either order. Replays (and test sends) are not lane
// deliveries: they are claimed as usual, outside the order, while the lane goes on. This holds
// across restarts (everything is in the store) and with any number of dispatchers.
//
// FIFOGapWait bounds the wait for a missing delivery: an event whose message never reaches a
// dispatcher (the stream's max age passed, a message terminated), or one that does not get a
// delivery after all because the endpoint's subscription changed while it was in flight,
// would otherwise stop the lane for good. Deliveries already waiting in a lane drain in order
// even if the endpoint is switched back to "none"; a disabled endpoint's head ends failed like
// any retry, so the lane empties.
//
// The price: a lane moves at most one event per receiver round trip plus the store work
// around it (a claim, the read of the event, a result commit), whatever EndpointConcurrency
// says; see BenchmarkFIFO.
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
// # Rate limits
//
// An endpoint's rateLimit (CONTRACT section 8) holds across all dispatchers together, within
// 10% over any 10 seconds, and events above it wait: they are never dropped, never count as
// attempts and never move the failure counters. Decided design:
//
//   - One token bucket per limited endpoint in the store (webhook_rate_tokens, owned by
//     internal/endpoint), a GCRA kept as one time: a process takes a batch of tokens with one
//     atomic INSERT … ON CONFLICT DO UPDATE … RETURNING (store.Webhooks.TakeTokens, the same
//     statement on PostgreSQL and SQLite), so however many dispatchers take, the bucket grants
//     at most burst + s × limit tokens over any span s. It uses the takers' clocks, as leases
//     do; hosts must keep them in step (NTP).
//   - Burst: a quarter of a second's worth (at least one token); batch: at most a tenth of a
//     second's worth per take, spent locally. A token is taken as its attempt starts, on the
//     worker, and a batch's tokens not spent within rateTokenLife (100 ms) are dropped, so
//     tokens are spent at most about 100 ms plus an attempt's send time after the bucket
//     granted them. Over a 10 s window the receiver then sees at most 0.25 + 10 + ~0.1
//     seconds' worth of the limit: under 4% over, inside the contract's 10%. (A full second
//     of burst, with batches spent late, could reach 11 seconds' worth: exactly the bound.)
//     Dropped and unspent tokens make a process slower, never faster, than the limit.
//   - No worker blocks waiting for a token. A delivery without one is parked as pending,
//     due when the bucket will have its next token (store.TokenGrant.NextAt); a first attempt's
//     message is acked after that commit as usual. While this process knows the bucket to be
//     empty, deliveries to the endpoint are parked as they are dispatched, without a slot or
//     a query. A retry or parked delivery claimed without a token is parked again the same way.
//   - The retry scheduler's claim gives a limited endpoint no more room than its tokens: the
//     tokens this process holds, none while the bucket is known empty, a batch otherwise
//     (rateLimiter.rooms). Other endpoints' claims and attempts are not slowed.
//   - A change of rateLimit moves the webhooks version (migration 150), so events accepted
//     after it are fanned out with it; a bucket's tokens taken under the old limit are dropped.
//
// # Outcomes and error classes
//
// 2xx delivers. A failed attempt's class, decided from its result alone (classOf: the
// pkg/webhook error code, the HTTP status, Retry-After), says what follows:
//
//   - Retry on schedule: the next attempt follows WEBHOOK_RETRY_SCHEDULE (with jitter), at
//     least Retry-After away when a 429 or 503 asked for it; after the last one the delivery
//     fails. An answer with Retry-After is always retried.
//   - Fail now: the delivery fails after this attempt, and the attempt log's error says why
//     ("…; not retried: …"). invalid_request (the request cannot be built from the endpoint:
//     credentials in its URL, an unusable secret) and 413 Content Too Large and 415
//     Unsupported Media Type (the body and its type, identical on every attempt, are what the
//     receiver refuses). A replay sends the event again once someone has changed something.
//   - Disable: 410 Gone fails the delivery and disables the endpoint.
//
// Everything else is retried, deliberately: 400 (Standard Webhooks and Stripe-style
// receivers answer it for a signature they cannot verify, often a secret or clock being fixed
// on their side, and every attempt is signed afresh), 401 and 403 (the same), 404 and 405 (a
// deploy in progress, a route not live yet), 422 (receivers use it for state that may change,
// such as a survey they do not know yet), redirects (never followed, but the next attempt uses
// the endpoint's URL as it is then, so an admin's fix is picked up), 5xx, timeouts and
// connection, DNS, TLS and address failures. Failing these at once would lose deliveries
// that the schedule recovers without anyone's help, which is what it is for.
//
// Every failed attempt, whatever its class, counts towards the endpoint's failure counters:
// an endpoint failing DisableAfterFailures times in a row over at least DisableAfter is
// disabled; events that arrive for a disabled endpoint are recorded as skipped.
//
// # Operational events
//
// The result batch that disables an endpoint (410, the failure threshold) or records a
// delivery failed also writes a webhook.disabled or delivery.exhausted event to the outbox, in
// its transaction (internal/delivery's Store.RecordResults); the api's relay publishes them and
// the engine fans them out like any event, except to the endpoint their data.webhookId names.
// Loops are cut at the source: a failed delivery of an operational event reports nothing, so
// two failing endpoints subscribed to delivery.exhausted exchange one report each and stop;
// webhook.disabled needs no such rule, as an endpoint is disabled once until someone enables
// it again. They count in dispatch24_operational_events_total{type} and are logged
// ("operational event written") after the commit.
package dispatch
